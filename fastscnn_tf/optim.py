"""The paper's optimiser: SGD with coupled L2 on convolution kernels, and the poly schedule.

Weight decay is *coupled* (L2 added to the gradient before momentum, as PyTorch's
`SGD(weight_decay=...)` and the TF-slim regularisers the paper's value comes from), not Keras'
decoupled `weight_decay` (`w -= lr * wd * w` after the step): with momentum 0.9 a coupled decay
acts about 10x stronger than a decoupled one of the same coefficient, so 4e-5 only means what
the paper means when it is coupled.

Both classes are registered under `fastscnn_tf>`, so a training checkpoint (`last.keras`) loads
after `import fastscnn_tf` (see the package's `__init__`).
"""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr = base * (1 - step / total) ** power`, times a linear warm-up `(step+1) / warmup`
    over the first `warmup_steps` steps."""

    def __init__(self, base_lr, total_steps, power=0.9, warmup_steps=0):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step / float(max(self.total_steps, 1)), 1.0)
        lr = self.base_lr * ops.power(1.0 - progress, self.power)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum((step + 1.0) / float(self.warmup_steps), 1.0)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class SGDWithL2(keras.optimizers.SGD):
    """SGD whose weight decay is coupled L2 (`grad += l2 * w` before momentum, as PyTorch's
    SGD) and limited to the variables named in `decay_paths`.

    Args:
        l2: L2 coefficient.
        decay_paths: `variable.path`s that decay (see `decayed_paths`).
        **kwargs: `keras.optimizers.SGD` arguments.
    """

    def __init__(self, learning_rate=0.045, momentum=0.9, l2=4e-5, decay_paths=(), **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.l2 = float(l2)
        self.decay_paths = tuple(decay_paths)

    def apply(self, grads, trainable_variables=None):
        variables = (
            self._trainable_variables if trainable_variables is None else trainable_variables
        )
        if self.l2 and self.decay_paths:
            paths = set(self.decay_paths)
            # Gradients are summed over replicas after this point; each adds its share.
            scale = self.l2 / tf.distribute.get_strategy().num_replicas_in_sync
            grads = [
                g + ops.cast(scale, g.dtype) * ops.cast(v, g.dtype)
                if g is not None and v.path in paths
                else g
                for g, v in zip(grads, variables, strict=True)
            ]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "decay_paths": list(self.decay_paths)}


def decayed_paths(model):
    """Paths of the kernels that weight decay applies to: ordinary convolutions only, not
    depthwise kernels, BN parameters or biases (the paper, following MobileNet)."""
    return [
        layer.kernel.path
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
