"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU and pixel accuracy.

Pixels labelled `ignore_index` (and any label outside `[0, num_classes)`) count nowhere. A class
that appears neither in the labels nor in the predictions has no IoU (NaN) and is left out of
the mean, as in the Cityscapes and mmsegmentation evaluations.

`MeanIoU` and `PixelAccuracy` stream over batches inside `model.fit`/`evaluate` (their state is
the confusion matrix, summed across replicas); `confusion_matrix` and `scores` are the same
computation in numpy for evaluating a `Runtime` (`.keras` or `.tflite`) outside Keras.
"""

import keras
import numpy as np
from keras import ops


def confusion_matrix(labels, predictions, num_classes, ignore_index=255):
    """`(C, C)` int64 counts, rows = true class, columns = predicted class."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions.")
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    index = labels[valid] * num_classes + np.clip(predictions[valid], 0, num_classes - 1)
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores(confusion):
    """Per-class IoU (NaN where a class is absent from labels and predictions), mIoU over the
    classes that have an IoU, and pixel accuracy, from a confusion matrix."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
    total = confusion.sum()
    return {
        "iou": iou,
        "miou": float(np.nanmean(iou)) if np.any(union > 0) else 0.0,
        "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
    }


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates a confusion matrix from integer labels `(B, H, W)` and logits `(B, H, W, C)`
    (or class maps `(B, H, W)`)."""

    def __init__(self, num_classes, ignore_index=255, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # float64 counts stay exact far beyond 2**31 pixels (int64 is awkward on accelerators).
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        if len(y_pred.shape) == len(y_true.shape) + 1:
            y_pred = ops.argmax(y_pred, axis=-1)
        predictions = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        valid = ops.logical_and(labels >= 0, labels < self.num_classes)
        valid = ops.logical_and(valid, labels != self.ignore_index)
        # Invalid pixels go to an extra bin past the matrix, which is dropped.
        index = ops.where(
            valid, labels * self.num_classes + predictions, self.num_classes * self.num_classes
        )
        counts = ops.segment_sum(
            ops.ones_like(index, dtype="float64"),
            index,
            num_segments=self.num_classes * self.num_classes + 1,
        )
        counts = ops.reshape(counts[:-1], (self.num_classes, self.num_classes))
        self.confusion.assign_add(counts)

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
        }


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class MeanIoU(_ConfusionMatrixMetric):
    """Streaming mean intersection-over-union; the ignore label counts nowhere.

    Args:
        num_classes: number of classes.
        ignore_index: label value excluded from the metric.
        name: metric name (`miou`, so Keras logs `val_miou`).

    Example:
        >>> metric = MeanIoU(3, ignore_index=255)
        >>> metric.update_state(labels, logits)
        >>> float(metric.result())
    """

    def __init__(self, num_classes, ignore_index=255, name="miou", dtype=None):
        super().__init__(num_classes, ignore_index, name=name, dtype=dtype)

    def result(self):
        true_positive = ops.diagonal(self.confusion)
        union = ops.sum(self.confusion, 0) + ops.sum(self.confusion, 1) - true_positive
        present = ops.cast(union > 0, "float64")
        iou = true_positive / ops.maximum(union, 1.0)
        miou = ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)
        return ops.cast(miou, "float32")


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class PixelAccuracy(_ConfusionMatrixMetric):
    """Streaming fraction of non-ignored pixels classified correctly."""

    def __init__(self, num_classes, ignore_index=255, name="pixel_accuracy", dtype=None):
        super().__init__(num_classes, ignore_index, name=name, dtype=dtype)

    def result(self):
        total = ops.sum(self.confusion)
        correct = ops.sum(ops.diagonal(self.confusion))
        return ops.cast(correct / ops.maximum(total, 1.0), "float32")
