"""Trained `.keras` model -> `.tflite` file for phones: float32, float16, dynamic-range or int8.

`export_tflite(model, output, ...)` is the whole export; `ExportSpec` says what the graph
is (checked once), `graph` builds it, `converter` turns it into TFLite bytes, and `exact_mask` is
the full-size class mask head that int8 ships with.
"""

from fastscnn_tf.export.converter import convert, op_names, representative_dataset
from fastscnn_tf.export.exporter import (
    DEFAULT_DIR,
    Exporter,
    default_output,
    export_labels,
    training_dataset,
)
from fastscnn_tf.export.graph import (
    STRIDE8_LAYER,
    build_export_model,
    fold_input_normalization,
    mask_head,
    score_model,
    upsample_mask,
    with_input_size,
)
from fastscnn_tf.export.rewrite import dequantize_uint8_input, pair_input_columns
from fastscnn_tf.export.spec import (
    MASK_STRIDES,
    OUTPUT_KINDS,
    OUTPUT_STRIDES,
    PRECISIONS,
    ExportSpec,
)


def export_tflite(
    model,
    output,
    *,
    size=(512, 1024),
    precision="float32",
    output_kind="mask",
    output_stride=1,
    mask_stride=1,
    representative=None,
    calibration_images=100,
    calibration_split="train",
    labels=None,
    metadata=None,
):
    """Convert a Fast-SCNN model (a `keras.Model` or a `.keras` path) to a `.tflite` file at
    `output` and write `labels.txt` beside it; returns the path. The keyword arguments are
    those of `ExportSpec` and `Exporter`."""
    spec = ExportSpec(size, precision, output_kind, output_stride, mask_stride)
    exporter = Exporter(
        model,
        spec,
        representative=representative,
        calibration_images=calibration_images,
        calibration_split=calibration_split,
        labels=labels,
        metadata=metadata,
    )
    return exporter.export(output)


__all__ = [
    "DEFAULT_DIR",
    "MASK_STRIDES",
    "OUTPUT_KINDS",
    "OUTPUT_STRIDES",
    "PRECISIONS",
    "STRIDE8_LAYER",
    "ExportSpec",
    "Exporter",
    "build_export_model",
    "convert",
    "default_output",
    "dequantize_uint8_input",
    "export_labels",
    "export_tflite",
    "fold_input_normalization",
    "mask_head",
    "op_names",
    "pair_input_columns",
    "representative_dataset",
    "score_model",
    "training_dataset",
    "upsample_mask",
    "with_input_size",
]
