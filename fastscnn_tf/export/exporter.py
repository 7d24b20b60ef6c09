"""A trained Fast-SCNN -> a `.tflite` file with its labels: the steps of one export."""

import json
import os

from fastscnn_tf import labels as labels_lib
from fastscnn_tf import metadata as metadata_lib
from fastscnn_tf.export.converter import (
    convert,
    op_names,
    pipeline_images,
    representative_dataset,
)
from fastscnn_tf.export.graph import build_export_model
from fastscnn_tf.files import check_output_file, write_bytes_atomic
from fastscnn_tf.modelfile import load_keras_model

DEFAULT_DIR = "tflite"


def export_labels(num_classes, model_path=None, labels_path=""):
    """The label set an export ships: an explicit file, else the model's own
    (`labels.labels_for`), else generic names."""
    if labels_path:
        if not os.path.isfile(labels_path):
            raise FileNotFoundError(f"labels file {labels_path} does not exist.")
        labels = labels_lib.read_labels(labels_path)
        if labels.num_classes != num_classes:
            raise ValueError(
                f"{labels_path} lists {labels.num_classes} classes but the model predicts "
                f"{num_classes}."
            )
        return labels
    labels = labels_lib.labels_for(model_path, num_classes) if model_path else None
    return labels or labels_lib.generic(num_classes)


def default_output(model_path, spec):
    """`tflite/<model>_<HxW>_<precision>_<output kind>[_s<stride>][_m<mask stride>].tflite`."""
    stem = os.path.splitext(os.path.basename(str(model_path)))[0] if model_path else "model"
    suffix = "" if spec.output_stride == 1 else f"_s{spec.output_stride}"
    suffix += "" if spec.mask_stride == 1 else f"_m{spec.mask_stride}"
    h, w = spec.size
    return os.path.join(
        DEFAULT_DIR, f"{stem}_{h}x{w}_{spec.precision}_{spec.output_kind}{suffix}.tflite"
    )


def training_dataset(model_path):
    """The training data spec recorded in `config.json` beside a trained model, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("dataset")


class Exporter:
    """One export of `model` (a `keras.Model` or a `.keras` path) as `spec` describes.

    Args:
        representative: int8 calibration images: a data spec string for
            `fastscnn_tf.data.load_source` (e.g. "synthetic"), or an iterable of uint8 images.
        calibration_images: how many calibration images to use.
        calibration_split: the split (or split expression) of a data spec `representative`
            to calibrate on, e.g. `train[-0006R0]` to keep a held-out sequence unseen.
        labels: a `LabelSet`, a labels.txt path, or None (the model's own, else generic).
        metadata: embed MediaPipe ImageSegmenter metadata: True (needs the mediapipe
            package), False, or None for "if mediapipe is installed".
    """

    def __init__(
        self,
        model,
        spec,
        *,
        representative=None,
        calibration_images=100,
        calibration_split="train",
        labels=None,
        metadata=None,
    ):
        self.model_path = model if isinstance(model, (str, os.PathLike)) else None
        self.model, self.spec = model, spec
        self.representative, self.calibration_images = representative, calibration_images
        self.calibration_split = calibration_split
        self.labels, self.metadata = labels, metadata

    def export(self, output):
        """Write the `.tflite` to `output` and its labels to `NAME.labels.txt` beside it (its
        own file: another model's labels in the folder are never touched); returns the path."""
        # 1. Refuse an output that cannot be written, before the minutes of conversion.
        check_output_file(output, "output")
        # 2. The model and the classes it predicts.
        model = load_keras_model(self.model_path) if self.model_path else self.model
        num_classes = int(model.outputs[0].shape[-1])
        if self.spec.output_kind == "mask" and num_classes > 256:
            raise ValueError(
                f"a uint8 mask holds at most 256 classes, the model has {num_classes}."
            )
        labels = self._labels(num_classes)
        # 3. The metadata, if asked for (or available).
        metadata_bytes = self._metadata(labels)
        # 4. Calibration images for int8.
        generator = self._calibration()
        # 5. The graph, converted with builtin ops only.
        tflite_bytes = convert(build_export_model(model, self.spec), self.spec.precision, generator)
        unexpected = [name for name in op_names(tflite_bytes) if name.startswith("CUSTOM")]
        if unexpected:
            raise ValueError(f"the converted model holds non-builtin ops: {', '.join(unexpected)}.")
        # 6. Class names inside the file (even without metadata: a mask output has no class
        # axis, so they are how a reader learns the class count), then the file and its labels.
        files = {metadata_lib.LABELS_FILE: metadata_lib.class_names_file(labels.names)}
        tflite_bytes = metadata_lib.populate(
            tflite_bytes,
            metadata_bytes,
            files,
            input_name="image",
            output_name=self.spec.output_kind,
        )
        write_bytes_atomic(output, tflite_bytes)
        labels_lib.write_labels(labels_lib.own_labels_path(output), labels)
        return str(output)

    def _labels(self, num_classes):
        if isinstance(self.labels, labels_lib.LabelSet):
            if self.labels.num_classes != num_classes:
                raise ValueError(
                    f"the label set has {self.labels.num_classes} classes, the model {num_classes}."
                )
            return self.labels
        return export_labels(num_classes, self.model_path, self.labels or "")

    def _metadata(self, labels):
        metadata = self.metadata
        if metadata is None:
            metadata = metadata_lib.available()
            if not metadata:
                print(f"note: no MediaPipe metadata embedded ({metadata_lib.INSTALL_HINT} adds it)")
        elif metadata and not metadata_lib.available():
            raise ValueError(
                f"metadata=True needs the mediapipe package: {metadata_lib.INSTALL_HINT}, "
                "or pass metadata=False."
            )
        return (
            metadata_lib.build_metadata(self.spec.output_kind, labels.names) if metadata else None
        )

    def _calibration(self):
        if not self.spec.quantized:
            return None
        if self.representative is None:
            raise ValueError(
                "int8 needs calibration images: pass representative= (a data set or images)."
            )
        images = self.representative
        if isinstance(images, str):
            images = pipeline_images(images, self.spec.size, self.calibration_split)
        return representative_dataset(images, self.calibration_images, self.spec.size)
