"""Layers that Keras' built-ins cannot express for Fast-SCNN.

Both layers work on dynamic `(None, None)` maps for training and reduce to constants when the
spatial size is static, so that an exported TFLite graph holds only builtin ops with static
shapes (RESIZE_BILINEAR, TRANSPOSE, FULLY_CONNECTED / BATCH_MATMUL).
"""

import keras
import numpy as np
import tensorflow as tf


def adaptive_bin_edges(size, bins):
    """PyTorch `AdaptiveAvgPool` bin edges: bin i covers [⌊i·size/bins⌋, ⌈(i+1)·size/bins⌉)."""
    i = np.arange(bins)
    start = (i * size) // bins
    end = -((-(i + 1) * size) // bins)
    return start, end


def adaptive_pool_matrix(size, bins):
    """(bins, size) matrix whose row i averages the positions of bin i (numpy, static sizes)."""
    start, end = adaptive_bin_edges(size, bins)
    pos = np.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(np.float32)


def _pool_matrix_dynamic(size, bins, dtype):
    """Same as `adaptive_pool_matrix` for a size only known when the graph runs."""
    i = tf.range(bins)
    start = (i * size) // bins
    end = -((-(i + 1) * size) // bins)
    pos = tf.range(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return tf.cast(inside, dtype) / tf.cast(end - start, dtype)[:, None]


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class AdaptiveAveragePooling(keras.layers.Layer):
    """Average pooling to a fixed `bins x bins` grid with PyTorch's adaptive bin edges.

    Bins overlap where the map is not divisible by `bins` (a 16x32 map with bins 3 or 6); each
    output averages its own rectangle exactly. The average over a rectangle factorises into a
    row average and a column average, so the layer is two small matrix products instead of one
    slice-and-mean per bin.

    Args:
        bins: number of bins along each spatial axis.

    Reference: Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017 (the pyramid pooling
    module that Fast-SCNN reuses).

    Example:
        >>> AdaptiveAveragePooling(3)(np.ones((1, 16, 32, 8), "float32")).shape
        TensorShape([1, 3, 3, 8])
    """

    def __init__(self, bins, **kwargs):
        super().__init__(**kwargs)
        self.bins = int(bins)

    def _matrix(self, static, dynamic):
        if static is not None:
            return tf.constant(adaptive_pool_matrix(static, self.bins), dtype=self.compute_dtype)
        return _pool_matrix_dynamic(dynamic, self.bins, self.compute_dtype)

    def call(self, x):
        dyn = tf.shape(x)
        h, w, c = (x.shape[i] if x.shape[i] is not None else dyn[i] for i in (1, 2, 3))
        rows = self._matrix(x.shape[1], dyn[1])  # (bins, H)
        cols = self._matrix(x.shape[2], dyn[2])  # (bins, W)
        # Plain 2-D matmuls: TF 2.21's oneDNN BatchMatMul with a broadcast rank-2 operand
        # returns garbage for batch > 1 (seen with bins=1); 2-D products are exact and lower
        # to TFLite FULLY_CONNECTED.
        y = tf.reshape(tf.transpose(x, [0, 2, 3, 1]), [-1, h])  # (N*W*C, H)
        y = tf.reshape(tf.matmul(y, rows, transpose_b=True), [-1, w, c, self.bins])
        y = tf.reshape(tf.transpose(y, [0, 3, 2, 1]), [-1, w])  # (N*b*C, W)
        y = tf.reshape(tf.matmul(y, cols, transpose_b=True), [-1, self.bins, c, self.bins])
        return tf.transpose(y, [0, 1, 3, 2])  # (N, b, b, C)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins, self.bins, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of `inputs[0]` to the spatial size of `inputs[1]`.

    Fast-SCNN's reference upsamples its low-resolution stream by a fixed factor of 4, which
    breaks whenever the 1/32 map is not exactly a quarter of the 1/8 map (a 360x480 input).
    Resizing to the size of the map it is fused with works at any input size.

    Args:
        align_corners: corner-aligned sampling as in the PyTorch reference
            (`F.interpolate(..., align_corners=True)`); False uses half-pixel centres, which
            TFLite's XNNPACK and GPU delegates and tf.image all treat as the default.

    Example:
        >>> ResizeLike()([np.zeros((1, 4, 4, 2)), np.zeros((1, 9, 7, 1))]).shape
        TensorShape([1, 9, 7, 2])
    """

    def __init__(self, align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def call(self, inputs):
        x, like = inputs
        h, w = like.shape[1], like.shape[2]
        if h is None or w is None:
            size = tf.shape(like)[1:3]
        else:
            size = (h, w)
        y = tf.raw_ops.ResizeBilinear(
            images=x,
            size=size,
            align_corners=self.align_corners,
            half_pixel_centers=not self.align_corners,
        )
        # ResizeBilinear always returns float32; keep the layer's dtype under mixed precision.
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        x, like = input_shapes
        return (x[0], like[1], like[2], x[3])

    def get_config(self):
        return {**super().get_config(), "align_corners": self.align_corners}


def _static_or_dynamic(x, axis):
    return x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class PadToMultiple(keras.layers.Layer):
    """Zero-pad the bottom and right of an image up to a multiple of `multiple` pixels.

    Fast-SCNN's streams meet at 1/8 and 1/32 of the input; on a size that is not a multiple
    of 32 the 1/32 map is rounded up and upsampling it no longer lands on the 1/8 grid the
    network was trained with (crops are multiples of 32), which costs accuracy. Padding as
    the training crops are padded (zeros, bottom/right) and cropping the output back with
    `CropLike` gives every size the accuracy of an aligned one. A no-op on aligned static
    sizes.

    Example:
        >>> PadToMultiple(32)(np.zeros((1, 360, 480, 3), "float32")).shape
        TensorShape([1, 384, 480, 3])
    """

    def __init__(self, multiple=32, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        h, w = _static_or_dynamic(x, 1), _static_or_dynamic(x, 2)
        extra_h, extra_w = (-h) % self.multiple, (-w) % self.multiple
        if isinstance(extra_h, int) and isinstance(extra_w, int) and extra_h == extra_w == 0:
            return x
        return tf.pad(x, [[0, 0], [0, extra_h], [0, extra_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        def up(size):
            return None if size is None else -(-size // self.multiple) * self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class CropLike(keras.layers.Layer):
    """The top-left window of `inputs[0]` with the spatial size of `inputs[1]` (undoes
    `PadToMultiple`).

    Example:
        >>> CropLike()([np.zeros((1, 384, 480, 2)), np.zeros((1, 360, 480, 3))]).shape
        TensorShape([1, 360, 480, 2])
    """

    def call(self, inputs):
        x, like = inputs
        if x.shape[1:3] == like.shape[1:3] and None not in like.shape[1:3]:
            return x
        return x[:, : _static_or_dynamic(like, 1), : _static_or_dynamic(like, 2)]

    def compute_output_shape(self, input_shapes):
        x, like = input_shapes
        return (x[0], like[1], like[2], x[3])


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class BatchNorm(keras.layers.BatchNormalization):
    """Keras' `BatchNormalization` (same weights, same meaning), trained with TensorFlow's fused
    kernel.

    Keras 3 computes training-mode batch norm as a dozen elementwise ops (moments, then their
    gradients through Tile, Mean and Mul); on a 2-core CPU those took about a third of a Fast-SCNN
    training step. `FusedBatchNormV3` does the same math in one op each way, as PyTorch's BN
    does. Inference, frozen layers and other backends take Keras' own path, so exported graphs
    are unchanged.
    """

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.center
            and self.scale
            and not self.renorm
            and not getattr(self, "synchronized", False)
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        # Upcast as Keras does: BN statistics overflow in float16/bfloat16.
        x = tf.cast(inputs, "float32")
        outputs, mean, variance, *_ = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )
        # The fused op returns the Bessel-corrected variance; Keras keeps the biased one.
        count = tf.cast(tf.size(x) // tf.shape(x)[-1], "float32")
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.cast(outputs, self.compute_dtype)
