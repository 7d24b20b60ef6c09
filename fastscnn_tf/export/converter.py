"""A `graph.build_export_model` function -> TFLite bytes: the converter, int8 calibration, and
the rewrites (`rewrite`) that let XNNPACK take the uint8 image and the first conv faster."""

import itertools
import re
import warnings

import numpy as np
import tensorflow as tf

from fastscnn_tf import data
from fastscnn_tf.export.rewrite import dequantize_uint8_input, pair_input_columns
from fastscnn_tf.export.spec import check_precision


def representative_dataset(images, count, size):
    """Generator factory for the converter: up to `count` float images [1, H, W, 3] in
    [0, 255] at `size`. Raises if `images` yields none."""
    if count < 1:
        raise ValueError(f"calibration_images={count}: int8 calibration needs at least 1 image.")
    iterator = iter(images)
    first = next(iterator, None)
    if first is None:
        raise ValueError(
            "the representative (calibration) dataset is empty: no images to calibrate."
        )
    chosen = itertools.islice(itertools.chain([first], iterator), count)

    def generate():
        for image in chosen:
            image = np.asarray(image, np.float32)
            if image.ndim == 3:
                image = image[None]
            if image.shape[1:3] != tuple(size):
                image = tf.image.resize(image, size, method="bilinear").numpy()
            yield [np.clip(image, 0.0, 255.0).astype(np.float32)]

    return generate


def pipeline_images(spec, size, split="train", seed=0):
    """Un-augmented images from the training pipeline (`fastscnn_tf.data`), resized to `size`.

    Shuffled with a fixed seed: data sets cut from videos (CamVid) list frames in order, and
    the first N frames of one sequence calibrate worse than N frames drawn across all of them.
    """
    source = data.load_source(spec, split)
    pipeline = data.make_pipeline(source, batch_size=1, resize=size, shuffle=True, seed=seed)
    for images, _ in pipeline.as_numpy_iterator():
        yield images


def _flex_ops(message):
    return sorted(set(re.findall(r"\btf\.([A-Z][A-Za-z0-9_]*)", message)))


def _as_input_dtype(representative, dtype):
    """The calibration generator with its images in the graph's input dtype (float images
    of integer pixels [0, 255] for a uint8 input)."""

    def cast(x):
        x = np.asarray(x)
        if dtype.is_integer and not np.issubdtype(x.dtype, np.integer):
            x = np.clip(np.round(x), dtype.min, dtype.max)  # resized pixels are fractional
        return x.astype(dtype.as_numpy_dtype)

    def generate():
        for sample in representative():
            yield [cast(x) for x in sample]

    return generate


def convert(serve, precision, representative=None, *, rewrite=True):
    """Convert a `build_export_model` function to TFLite bytes; builtin ops only.

    For int8, a uint8 graph input (what `build_export_model` makes) stays uint8 and enters
    through `dequantize_uint8_input`; a float input pinned to [0, 255] becomes the converter's
    uint8 input. `rewrite=False` skips the int8 rewrites (`rewrite`) and returns the
    converter's own graph, the same integers computed more slowly."""
    check_precision(precision)
    # No trackable object: the converter then freezes the weights into constants (with one it
    # keeps resource variables, which XNNPACK and int8 calibration cannot run).
    concrete = serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    input_dtype = concrete.inputs[0].dtype
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if representative is None:
            raise ValueError("int8 needs a representative (calibration) dataset.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _as_input_dtype(representative, input_dtype)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if input_dtype == tf.float32:
            converter.inference_input_type = tf.uint8
        if concrete.outputs[0].dtype == tf.float32:
            converter.inference_output_type = tf.uint8
    try:
        with warnings.catch_warnings():
            # The uint8 input's scale is pinned by the graph's fake quantization, not by
            # converter "statistics"; TF warns about the latter regardless.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs")
            tflite_bytes = converter.convert()
    except Exception as error:  # ConverterError's class moves between TF versions
        message = str(error)
        ops = _flex_ops(message)
        if ops or "Flex" in message or "not supported by the native TFLite runtime" in message:
            named = ", ".join(ops) or "see the converter log above"
            raise ValueError(
                f"TFLite conversion needs ops outside TFLITE_BUILTINS ({named}); "
                "Flex / SELECT_TF_OPS is not allowed in this project."
            ) from None
        raise
    if precision == "int8" and rewrite:
        if input_dtype == tf.uint8:
            tflite_bytes = dequantize_uint8_input(tflite_bytes)
        tflite_bytes = pair_input_columns(tflite_bytes)
    return tflite_bytes


def op_names(tflite_bytes):
    """Names of the operators a TFLite model uses (builtin names; custom ops by their code)."""
    from ai_edge_litert import schema_py_generated as tfl

    builtin = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    model = tfl.Model.GetRootAsModel(tflite_bytes, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if value == tfl.BuiltinOperator.CUSTOM:
            names.append("CUSTOM:" + code.CustomCode().decode())
        else:
            names.append(builtin[value])
    return names
