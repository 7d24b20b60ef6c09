"""`fastscnn export`: a trained `.keras` model (or preset) -> `.tflite` for phones.

The exported graph takes a uint8 RGB image `[1, H, W, 3]` exactly as a camera gives it (the
network normalises inside), runs Fast-SCNN at a static size and ends in a head that returns
either a uint8 class mask `[1, H, W]` (argmax in the graph: the app reads a ready mask) or
per-class logits / probabilities `[1, H, W, C]` (what MediaPipe's ImageSegmenter reads).
Only TFLite builtin ops are allowed, so the file runs on any LiteRT build without Flex.

int8 is full-integer post-training quantization, calibrated on un-augmented images from the
training pipeline. Metadata (input normalisation, class names) is embedded for MediaPipe and
`NAME.labels.txt` (names and colours) is written beside `NAME.tflite` for the Android app and
the browser page: each model its own, so exports that share a folder keep their labels.
"""

import dataclasses
import os

from fastscnn_tf import labels as labels_lib
from fastscnn_tf import presets
from fastscnn_tf.cli.config import field, parse_size
from fastscnn_tf.export import (
    MASK_STRIDES,
    OUTPUT_KINDS,
    OUTPUT_STRIDES,
    PRECISIONS,
    Exporter,
    ExportSpec,
    default_output,
    training_dataset,
)
from fastscnn_tf.files import check_output_file


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
    calibration_split: str = field(
        "train",
        "split of --calibration-dataset to calibrate on (an expression such as "
        "'train[-0006R0]' keeps a held-out sequence unseen)",
    )
    labels: str | None = field(
        None, "labels.txt to embed (default: the one beside the model, else generic)"
    )
    metadata: bool | None = field(
        None, "embed MediaPipe ImageSegmenter metadata (default: if mediapipe is installed)"
    )


def run(config):
    scale = presets.input_scale(config.model)
    if scale != 1.0:  # the int8 model's input size is where the scale lives
        print(
            f"note: preset {config.model} reads images at {scale:g}x their size: export it at "
            f"{scale:g}x the size of the frames it will see (--size {config.size[0]}x"
            f"{config.size[1]} suits {round(config.size[0] / scale)}x"
            f"{round(config.size[1] / scale)} frames)"
        )
    config = dataclasses.replace(config, model=presets.resolve_model(config.model))
    spec = ExportSpec(
        config.size, config.precision, config.output_kind, config.output_stride, config.mask_stride
    )
    calibration = config.calibration_dataset
    if config.precision == "int8" and not calibration:
        calibration = training_dataset(config.model)
        if not calibration:
            raise ValueError(
                f"int8 needs --calibration-dataset: no config.json with the training --dataset "
                f"beside {config.model}."
            )
        kind, _, where = calibration.partition(":")
        if kind in ("folder", "cityscapes") and not os.path.isdir(os.path.expanduser(where)):
            raise FileNotFoundError(
                f"int8 calibration reads the training data {calibration!r} that the config.json "
                f"beside {config.model} names, and {where} is not here (from {os.getcwd()}); "
                "pass --calibration-dataset folder:PATH with images like the training data."
            )
    output = config.output or default_output(config.model, spec)
    check_output_file(output, "output")
    if calibration:
        print(
            f"calibrating int8 on {config.calibration_images} images of {calibration} "
            f"({config.calibration_split})"
        )
    exporter = Exporter(
        config.model,
        spec,
        representative=calibration or None,
        calibration_images=config.calibration_images,
        calibration_split=config.calibration_split,
        labels=config.labels or None,
        metadata=config.metadata,
    )
    path = exporter.export(output)
    labels = labels_lib.own_labels_path(path)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB) and {labels}")
    return 0
