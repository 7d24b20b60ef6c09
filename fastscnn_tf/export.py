"""Trained `.keras` model -> `.tflite` file for phones: float32, float16, dynamic-range or int8.

The exported graph takes a uint8 RGB image `[1, H, W, 3]` exactly as a camera gives it (the
network normalises inside), runs Fast-SCNN at a static size and ends in a head that returns
either a uint8 class mask `[1, H, W]` (argmax in the graph: the app reads a ready mask) or
per-class logits / probabilities `[1, H, W, C]` (what MediaPipe's ImageSegmenter reads).
Only TFLite builtin ops are allowed, so the file runs on any LiteRT build without Flex.

int8 is full-integer post-training quantization, calibrated on un-augmented images from the
training pipeline. Metadata (input normalisation, class names) is embedded for MediaPipe and
`labels.txt` (names and colours) is written beside the model for the Android app.
"""

import dataclasses
import itertools
import json
import os
import re
import warnings

import numpy as np
import tensorflow as tf

from fastscnn_tf import labels as labels_lib
from fastscnn_tf import metadata as metadata_lib
from fastscnn_tf import presets
from fastscnn_tf.config import field, parse_size
from fastscnn_tf.files import check_output_file, write_bytes_atomic
from fastscnn_tf.model import MIN_INPUT_SIZE, aligned_size
from fastscnn_tf.modelfile import load_keras_model

PRECISIONS = ("float32", "float16", "dynamic", "int8")
OUTPUT_KINDS = ("mask", "logits", "probabilities")
OUTPUT_STRIDES = (1, 8)
MASK_STRIDES = (1, 2, 4, 8)  # where a full-size mask's ARG_MAX runs (build_export_model)
DEFAULT_DIR = "tflite"
# The classifier's last conv: its output is the 1/8 score map before the final upsampling.
STRIDE8_LAYER = "cls_conv"


@dataclasses.dataclass
class ExportConfig:
    model: str = field("", "trained .keras model or preset name", positional=True)
    output: str | None = field(
        None, "output .tflite file (default: tflite/<model>_<HxW>_<precision>_<output-kind>.tflite)"
    )
    size: tuple = field((512, 1024), "static input size HxW", parse=parse_size)
    precision: str = field("int8", "weights and activations", choices=PRECISIONS)
    output_kind: str = field(
        "mask", "uint8 class mask [1,H,W], or float [1,H,W,C] scores", choices=OUTPUT_KINDS
    )
    output_stride: int = field(
        1, "1: output at the input size; 8: the 1/8 map, the app upsamples", choices=OUTPUT_STRIDES
    )
    mask_stride: int = field(
        1,
        "a full-size mask takes its argmax at 1/N of the input and copies classes up "
        "(1: exact, 2/4/8: cheaper)",
        choices=MASK_STRIDES,
    )
    calibration_dataset: str | None = field(
        None,
        "int8 calibration images: a data spec (synthetic, folder:PATH, ...); default: the "
        "--dataset in the config.json that training wrote beside the model",
    )
    calibration_images: int = field(100, "number of int8 calibration images")
    labels: str | None = field(
        None, "labels.txt to embed (default: the one beside the model, else generic)"
    )
    metadata: bool | None = field(
        None, "embed MediaPipe ImageSegmenter metadata (default: if mediapipe is installed)"
    )


def check_size(size, option="--size"):
    h, w = size
    if h < MIN_INPUT_SIZE or w < MIN_INPUT_SIZE:
        raise ValueError(
            f"{option} {h}x{w}: Fast-SCNN needs at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} "
            "pixels (its pyramid pooling works on the 1/32 map)."
        )


def _with_input_size(model, size):
    """The model with a static input `(H, W)`; rebuilt from its config only if it was built at
    another static size (a dynamic model takes the static shape when traced)."""
    import keras

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
    import keras

    if output_stride == 1:
        if len(model.outputs) == 1:
            return model
        outputs = model.outputs[0]  # aux heads (training aids) are dropped
    elif output_stride == 8:
        outputs = model.get_layer(STRIDE8_LAYER).output
    else:
        raise ValueError(f"output_stride={output_stride}: choose one of {OUTPUT_STRIDES}.")
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
    raise ValueError(f"output kind {output_kind!r}: choose one of {OUTPUT_KINDS}.")


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
    from fastscnn_tf.exact_mask import exact_mask, supports

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


def build_export_model(
    model, size, output="mask", output_stride=1, quantized_input=False, mask_stride=1
):
    """The inference graph as a `tf.function` of one static-shape image.

    Args:
        model: a Fast-SCNN `keras.Model` taking RGB in [0, 255] (normalisation inside; it is
            folded into the first conv for export, see `model.fold_input_normalization`).
        size: `(H, W)` of the exported input.
        output: "mask", "logits" or "probabilities" (see `export_head`).
        output_stride: 1 for output at the input size, 8 for the 1/8 map.
        quantized_input: for int8. The uint8 image is cast to float and pinned to [0, 255] by
            a fake quantization (scale 1), so the converter quantizes it exactly (q - 128) with
            XNNPACK's multi-threaded QUANTIZE (after `dequantize_uint8_input`); a uint8 model
            input made by the converter instead requantizes uint8 -> int8 outside XNNPACK,
            single-threaded (1.1 ms of ~11 at 512x1024 here). Raw camera bytes go in either way.
        mask_stride: for a mask at the input size: 1 gives the ARG_MAX of the scores bilinearly
            upsampled to the input size (exact, see `exact_mask`); 2, 4 or 8 take it at that
            fraction of the input size and upsample the class map (nearest), see `mask_head`.
    """
    from fastscnn_tf.exact_mask import upsamples_half_pixel
    from fastscnn_tf.model import fold_input_normalization

    check_size(size)
    if mask_stride not in MASK_STRIDES:
        raise ValueError(f"mask_stride={mask_stride}: choose one of {MASK_STRIDES}.")
    model = fold_input_normalization(_with_input_size(model, size))
    # The mask head upsamples the 1/8 scores itself; at stride 1 only where that reproduces the
    # model's own upsampling (half-pixel centres, not the reference's align_corners).
    cheap_mask = output == "mask" and output_stride == 1 and mask_stride > 1
    exact_head = output == "mask" and output_stride == 1 and upsamples_half_pixel(model)
    scores = score_model(model, 8 if cheap_mask or exact_head else output_stride)
    h, w = size
    spec = tf.TensorSpec([1, h, w, 3], tf.uint8, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        x = tf.cast(image, tf.float32)
        if quantized_input:
            x = tf.quantization.fake_quant_with_min_max_args(x, min=0.0, max=255.0)
        if cheap_mask or exact_head:
            return mask_head(scores(x, training=False), size, mask_stride, quantized_input)
        return export_head(scores(x, training=False), output)

    return serve


def representative_dataset(images, count, size):
    """Generator factory for the converter: up to `count` float images [1, H, W, 3] in
    [0, 255] at `size`. Raises if `images` yields none."""
    if count < 1:
        raise ValueError(f"--calibration-images {count}: int8 calibration needs at least 1 image.")
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
    from fastscnn_tf import data

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


def convert(serve, precision, representative=None):
    """Convert a `build_export_model` function to TFLite bytes; builtin ops only.

    For int8, a uint8 graph input (what `build_export_model` makes) stays uint8 and enters
    through `dequantize_uint8_input`; a float input pinned to [0, 255] becomes the converter's
    uint8 input."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {PRECISIONS}.")
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
    if precision == "int8" and input_dtype == tf.uint8:
        tflite_bytes = dequantize_uint8_input(tflite_bytes)
    return tflite_bytes


def dequantize_uint8_input(tflite_bytes):
    """The int8 graph's `CAST` of its uint8 image to float as a `DEQUANTIZE` with scale 1.

    Same values (the bytes as floats, then quantized exactly by the fake quantization's scale
    1), but XNNPACK runs a DEQUANTIZE, multi-threaded, where it leaves CAST to LiteRT's
    single-threaded kernel (0.4 ms of ~10 at 512x1024 here). The image input then carries
    quantization (1.0, 0): raw camera bytes, as a converter-made uint8 input does.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(tflite_bytes, 0))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    image = graph.tensors[graph.inputs[0]]
    casts = [
        op
        for op in graph.operators
        if codes[op.opcodeIndex] == tfl.BuiltinOperator.CAST
        and list(op.inputs) == [graph.inputs[0]]
    ]
    if image.type != tfl.TensorType.UINT8 or len(casts) != 1:
        return tflite_bytes
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.DEQUANTIZE
    code.version = 1
    users = sum(
        op.opcodeIndex == casts[0].opcodeIndex for g in model.subgraphs for op in g.operators
    )
    if users == 1:  # the CAST code goes, so the file lists only the ops it runs
        model.operatorCodes[casts[0].opcodeIndex] = code
    else:
        model.operatorCodes.append(code)
        casts[0].opcodeIndex = len(model.operatorCodes) - 1
    casts[0].builtinOptionsType, casts[0].builtinOptions = 0, None
    image.quantization = tfl.QuantizationParametersT()
    image.quantization.scale, image.quantization.zeroPoint = [1.0], [0]
    builder = flatbuffers.Builder(len(tflite_bytes) + 1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


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


def resolve_labels(num_classes, model_path=None, labels_path=""):
    """The label set to ship: an explicit file, else labels.txt beside the model, else generic."""
    source = labels_path or None
    if source is None and model_path is not None:
        beside = labels_lib.labels_path_beside(model_path)
        source = beside if os.path.exists(beside) else None
    if source is None:
        return labels_lib.generic(num_classes)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"labels file {source} does not exist.")
    labels = labels_lib.read_labels(source)
    if labels.num_classes != num_classes:
        raise ValueError(
            f"{source} lists {labels.num_classes} classes but the model predicts {num_classes}."
        )
    return labels


def default_output(model_path, size, precision, output_kind, output_stride=1, mask_stride=1):
    stem = os.path.splitext(os.path.basename(str(model_path)))[0] if model_path else "model"
    suffix = "" if output_stride == 1 else f"_s{output_stride}"
    suffix += "" if mask_stride == 1 else f"_m{mask_stride}"
    name = f"{stem}_{size[0]}x{size[1]}_{precision}_{output_kind}{suffix}.tflite"
    return os.path.join(DEFAULT_DIR, name)


def export_tflite(
    model,
    output,
    *,
    size=(512, 1024),
    precision="float32",
    output_kind="mask",
    output_stride=1,
    representative=None,
    calibration_images=100,
    labels=None,
    metadata=None,
    mask_stride=1,
):
    """Convert a Fast-SCNN model to a `.tflite` file and write `labels.txt` beside it.

    Args:
        model: a `keras.Model` or the path of a `.keras` file.
        output: the `.tflite` path to write.
        size: static input `(H, W)`.
        precision: "float32", "float16", "dynamic" (int8 weights, float activations) or
            "int8" (full integer, uint8 input).
        output_kind: "mask" (uint8 `[1, H, W]`), "logits" or "probabilities" (`[1, H, W, C]`;
            uint8 with quantization parameters for int8).
        output_stride: 1 (output at the input size) or 8 (the 1/8 map).
        representative: int8 calibration images: a data spec string for
            `fastscnn_tf.data.load_source` (e.g. "synthetic"), or an iterable of uint8 images.
        calibration_images: how many calibration images to use.
        labels: a `LabelSet`, a labels.txt path, or None (beside the model, else generic).
        metadata: embed MediaPipe ImageSegmenter metadata: True (needs the mediapipe
            package), False, or None for "if mediapipe is installed".
        mask_stride: where a full-size mask takes its ARG_MAX (see `build_export_model`).

    Returns:
        The path written.
    """
    model_path = model if isinstance(model, (str, os.PathLike)) else None
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}.")
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(f"--output-kind {output_kind!r}: choose one of {', '.join(OUTPUT_KINDS)}.")
    size = tuple(int(v) for v in size)
    check_size(size)
    check_output_file(output, "--output")  # before the conversion, not after it
    if model_path is not None:
        model = load_keras_model(model_path)
    num_classes = int(model.outputs[0].shape[-1])
    if output_kind == "mask" and num_classes > 256:
        raise ValueError(f"a uint8 mask holds at most 256 classes, the model has {num_classes}.")
    if isinstance(labels, labels_lib.LabelSet):
        if labels.num_classes != num_classes:
            raise ValueError(
                f"the label set has {labels.num_classes} classes, the model {num_classes}."
            )
    else:
        labels = resolve_labels(num_classes, model_path, labels or "")
    if metadata is None:
        metadata = metadata_lib.available()
        if not metadata:
            print(f"note: no MediaPipe metadata embedded ({metadata_lib.INSTALL_HINT} adds it)")
    elif metadata and not metadata_lib.available():
        raise ValueError(
            f"--metadata needs the mediapipe package: {metadata_lib.INSTALL_HINT}, "
            "or pass --no-metadata."
        )
    metadata_bytes = None
    if metadata:
        metadata_bytes = metadata_lib.build_metadata(output_kind, labels.names)

    quantized = precision == "int8"
    generator = None
    if quantized:
        if representative is None:
            raise ValueError("int8 needs --calibration-dataset (the representative dataset).")
        images = (
            pipeline_images(representative, size)
            if isinstance(representative, str)
            else representative
        )
        generator = representative_dataset(images, calibration_images, size)
    serve = build_export_model(
        model, size, output_kind, output_stride, quantized_input=quantized, mask_stride=mask_stride
    )
    tflite_bytes = convert(serve, precision, generator)
    unexpected = [name for name in op_names(tflite_bytes) if name.startswith("CUSTOM")]
    if unexpected:
        raise ValueError(f"the converted model holds non-builtin ops: {', '.join(unexpected)}.")
    # The class names ride along even without metadata: a mask output has no class axis, so
    # they are how a reader learns the class count.
    files = {metadata_lib.LABELS_FILE: metadata_lib.class_names_file(labels.names)}
    tflite_bytes = metadata_lib.populate(
        tflite_bytes,
        metadata_bytes,
        files,
        input_name="image",
        output_name=output_kind,
    )
    write_bytes_atomic(output, tflite_bytes)
    labels_lib.write_labels(labels_lib.labels_path_beside(output), labels)
    return str(output)


def training_dataset(model_path):
    """The training data spec recorded in `config.json` beside a trained model, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("dataset")


def run(config):
    config = dataclasses.replace(config, model=presets.resolve_model(config.model))
    calibration = config.calibration_dataset
    if config.precision == "int8" and not calibration:
        calibration = training_dataset(config.model)
        if not calibration:
            raise ValueError(
                f"int8 needs --calibration-dataset: no config.json with the training --dataset "
                f"beside {config.model}."
            )
        print(f"calibrating int8 on {config.calibration_images} images of {calibration} (train)")
    output = config.output or default_output(
        config.model, config.size, config.precision, config.output_kind, config.output_stride,
        config.mask_stride,
    )  # fmt: skip
    path = export_tflite(
        config.model,
        output,
        size=config.size,
        precision=config.precision,
        output_kind=config.output_kind,
        output_stride=config.output_stride,
        mask_stride=config.mask_stride,
        representative=calibration or None,
        calibration_images=config.calibration_images,
        labels=config.labels or None,
        metadata=config.metadata,
    )
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB) and labels.txt beside it")
    return 0
