"""What a Keras model costs: parameter counts and multiply-accumulates (MACs) per layer, for
`fastscnn summary` and the benchmarks' tables."""

import keras
import numpy as np

from fastscnn_tf.layers import AdaptiveAveragePooling


def count_params(model, trainable=True):
    weights = model.trainable_weights if trainable else model.non_trainable_weights
    return int(sum(np.prod(w.shape) for w in weights))


def layer_macs(layer):
    """Multiply-accumulates of one layer for its (static) output shape; 0 for cheap layers."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, oh, ow, oc = layer.output.shape
        kh, kw = layer.kernel_size
        return oh * ow * oc * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        _, oh, ow, oc = layer.output.shape
        kh, kw = layer.kernel_size
        return oh * ow * oc * kh * kw * layer.input.shape[-1] // layer.groups
    if isinstance(layer, AdaptiveAveragePooling):
        _, h, w, c = layer.input.shape
        return c * layer.bins * (h * w + layer.bins * w)
    return 0


def count_macs(model):
    """Total multiply-accumulates of a model built with a static input size."""
    if any(d is None for d in model.input.shape[1:3]):
        raise ValueError("count_macs needs a model built with a static input_shape.")
    return int(sum(layer_macs(layer) for layer in model.layers))
