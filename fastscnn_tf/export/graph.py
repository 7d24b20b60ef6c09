"""The exported inference graph: Fast-SCNN at a static size with uint8 image in and the head the
spec asks for (a class mask, logits or probabilities). Builtin TFLite ops only."""

import keras
import numpy as np
import tensorflow as tf

from fastscnn_tf.export.exact_mask import exact_mask, supports, upsamples_half_pixel
from fastscnn_tf.geometry import aligned_size

# The classifier's last conv: its output is the 1/8 score map before the final upsampling.
STRIDE8_LAYER = "cls_conv"


def fold_input_normalization(model):
    """The same network with its ImageNet mean/std normalisation folded into `ltd_conv`.

    `conv(x * s + o) = conv_{k * s}(x) + sum(k * o)` is exact because `ltd_conv` has no padding
    (the reference's padding 0), and the constant shift moves into `ltd_conv_bn`'s moving mean.
    The folded copy has `preprocess` set to the identity, which the TFLite converter drops, so
    an exported graph loses two full-resolution elementwise ops (costly in int8, where they
    run as requantizing MUL and ADD). Same outputs up to float rounding; `model` is unchanged.
    Returns `model` itself if it has no `preprocess` layer.
    """
    names = {layer.name for layer in model.layers}
    if "preprocess" not in names:
        return model
    pre, conv = model.get_layer("preprocess"), model.get_layer("ltd_conv")
    if conv.padding != "valid" or conv.use_bias:
        raise ValueError("fold_input_normalization needs ltd_conv with padding 'valid', no bias.")
    scale = np.broadcast_to(np.asarray(pre.scale, np.float64), (3,))
    offset = np.broadcast_to(np.asarray(pre.offset, np.float64), (3,))
    config = model.get_config()
    for layer in config["layers"]:
        if layer["config"].get("name") == "preprocess":
            layer["config"].update(scale=1.0, offset=0.0)
    folded = keras.Model.from_config(config)
    folded.set_weights(model.get_weights())
    (kernel,) = conv.get_weights()
    kernel = kernel.astype(np.float64)
    folded.get_layer("ltd_conv").set_weights([kernel * scale[None, None, :, None]])
    shift = np.einsum("ijco,c->o", kernel, offset)
    bn = folded.get_layer("ltd_conv_bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma, beta, mean - shift, variance])
    return folded


def with_input_size(model, size):
    """The model with a static input `(H, W)`; rebuilt from its config only if it was built at
    another static size (a dynamic model takes the static shape when traced)."""
    h, w = model.inputs[0].shape[1:3]
    if (h is None and w is None) or (h, w) == tuple(size):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, size[0], size[1], 3]
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def score_model(model, output_stride=1):
    """The main head's scores: at the input size, or the 1/8 map before the final resize."""
    if output_stride == 1:
        if len(model.outputs) == 1:
            return model
        outputs = model.outputs[0]  # aux heads (training aids) are dropped
    elif output_stride == 8:
        outputs = model.get_layer(STRIDE8_LAYER).output
    else:
        raise ValueError(f"output_stride={output_stride}: choose 1 or 8.")
    return keras.Model(model.inputs, outputs, name=model.name)


def export_head(scores, output_kind):
    """Float scores (N, h, w, C) -> what the exported model returns."""
    if output_kind == "logits":
        return scores
    if output_kind == "probabilities":
        return tf.nn.softmax(scores, axis=-1)
    if output_kind == "mask":
        # ARG_MAX then CAST: a ready uint8 class map (classes < 256).
        return tf.cast(tf.argmax(scores, axis=-1, output_type=tf.int32), tf.uint8)
    raise ValueError(f"output kind {output_kind!r}: choose mask, logits or probabilities.")


def upsample_mask(mask, size):
    """Nearest-neighbour upsampling of a uint8 class map (N, h, w) to `size`, builtins only.

    An integer factor is a TILE of a (N, h, 1, w, 1) view (about 0.2 ms for 512x1024 here);
    BROADCAST_TO is 25x slower and ResizeNearestNeighbor on integers needs Flex. Other sizes
    GATHER rows and columns at the half-pixel-centre nearest source.
    """
    n, h, w = mask.shape
    height, width = size
    if height % h == 0 and width % w == 0:
        tiled = tf.tile(tf.reshape(mask, [n, h, 1, w, 1]), [1, 1, height // h, 1, width // w])
        return tf.reshape(tiled, [n, height, width])
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.int32)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.int32)
    return tf.gather(tf.gather(mask, rows, axis=1), cols, axis=2)


def mask_head(scores8, size, mask_stride, quantized=False):
    """uint8 class map at `size` from the 1/8 scores, with the ARG_MAX at 1/`mask_stride`.

    ARG_MAX runs outside XNNPACK, single-threaded, over every class of every pixel: at the
    input size it costs more than the whole bilinear upsampling. Stride 1 gives the exact mask
    without it (`exact_mask`: the 1/8 argmax, resolved per pixel on class boundaries only;
    `quantized` says the graph will be int8). Strides 2-8 take ARG_MAX on scores upsampled
    only to 1/`mask_stride` and copy the classes to the input size; the pixels that change lie
    on class boundaries (see benchmarks/tflite_ops.py for how many).
    """
    h, w = size
    aligned = scores8.shape[1] * 8, scores8.shape[2] * 8
    if aligned != (h, w) and aligned == aligned_size(size):
        # The model padded its input (see `model.PadToMultiple`): map the scores to the padded
        # size and crop, so the classes sit where the exact mask puts them. A 2-D SLICE: the
        # STRIDED_SLICE of `[:, :h, :w]` copies uint8 element by element (5 ms at 384x480).
        mask = tf.reshape(mask_head(scores8, aligned, mask_stride, quantized), aligned)
        return tf.reshape(tf.slice(mask, [0, 0], [h, w]), [1, h, w])
    if mask_stride == 1 and supports(scores8.shape, size):
        return exact_mask(scores8, size, quantized)
    if mask_stride != 8:
        target = (max(1, h // mask_stride), max(1, w // mask_stride))
        scores8 = tf.raw_ops.ResizeBilinear(
            images=scores8, size=target, align_corners=False, half_pixel_centers=True
        )
    mask = tf.cast(tf.argmax(scores8, axis=-1, output_type=tf.int32), tf.uint8)
    return upsample_mask(mask, size)


def build_export_model(model, spec):
    """The inference graph of `spec` (an `ExportSpec`) as a `tf.function` of one static-shape
    uint8 image.

    `model` is a Fast-SCNN `keras.Model` taking RGB in [0, 255] (normalisation inside; it is
    folded into the first conv, see `fold_input_normalization`). For int8 the uint8 image
    is cast to float and pinned to [0, 255] by a fake quantization (scale 1), so the converter
    quantizes it exactly (q - 128) with XNNPACK's multi-threaded QUANTIZE (after
    `rewrite.dequantize_uint8_input`); a uint8 model input made by the converter instead
    requantizes uint8 -> int8 outside XNNPACK, single-threaded (1.1 ms of ~11 at 512x1024
    here). Raw camera bytes go in either way.
    """
    model = fold_input_normalization(with_input_size(model, spec.size))
    # The mask head upsamples the 1/8 scores itself; at stride 1 only where that reproduces the
    # model's own upsampling (half-pixel centres, not the reference's align_corners).
    cheap_mask = spec.full_size_mask and spec.mask_stride > 1
    exact_head = spec.full_size_mask and upsamples_half_pixel(model)
    scores = score_model(model, 8 if cheap_mask or exact_head else spec.output_stride)
    h, w = spec.size
    image_spec = tf.TensorSpec([1, h, w, 3], tf.uint8, name="image")

    @tf.function(input_signature=[image_spec])
    def serve(image):
        x = tf.cast(image, tf.float32)
        if spec.quantized:
            x = tf.quantization.fake_quant_with_min_max_args(x, min=0.0, max=255.0)
        if cheap_mask or exact_head:
            return mask_head(scores(x, training=False), spec.size, spec.mask_stride, spec.quantized)
        return export_head(scores(x, training=False), spec.output_kind)

    return serve
