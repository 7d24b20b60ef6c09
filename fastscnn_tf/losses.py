"""Segmentation loss: softmax cross-entropy from logits that ignores the ignore label.

The loss of a batch is the mean over its non-ignored pixels (a weighted mean when classes are
weighted), as PyTorch's `CrossEntropyLoss(ignore_index=...)`, not the mean over all pixels: a
crop that is mostly padding must not shrink the gradient. Two optional variants from the
segmentation literature, both off by default:

- OHEM (online hard example mining, as in the PSPNet/OCNet code bases): keep the pixels whose
  true-class probability is below `ohem_threshold`, but at least `ohem_min_kept` of the
  hardest ones.
- Median-frequency class weights (Eigen & Fergus 2015): `median_frequency_weights` turns
  per-image class histograms into weights `median(f) / f_c`; `log_frequency_weights` gives
  ENet's gentler `1 / ln(c + p_c)`.
"""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Sparse softmax cross-entropy from logits, averaged over non-ignored pixels.

    Args:
        ignore_index: label value that contributes no loss.
        class_weights: optional per-class weights; the mean becomes `sum(w*l) / sum(w)`.
        ohem_threshold: enable OHEM, keeping pixels whose true-class probability is below it.
        ohem_min_kept: OHEM keeps at least this many of the hardest pixels per batch.
        name: loss name.

    Example:
        >>> loss = SegmentationCrossEntropy(ignore_index=255)
        >>> loss(masks, logits)  # masks (B, H, W) int, logits (B, H, W, C)
    """

    def __init__(
        self,
        ignore_index=255,
        class_weights=None,
        ohem_threshold=None,
        ohem_min_kept=100_000,
        name="segmentation_cross_entropy",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = ignore_index
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ohem_threshold = ohem_threshold
        self.ohem_min_kept = ohem_min_kept

    def call(self, y_true, y_pred):
        num_classes = y_pred.shape[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        logits = ops.reshape(ops.cast(y_pred, "float32"), (-1, num_classes))
        valid = ops.logical_and(labels >= 0, labels < num_classes)
        valid = ops.logical_and(valid, labels != self.ignore_index)
        safe_labels = ops.where(valid, labels, 0)
        pixel_loss = ops.sparse_categorical_crossentropy(safe_labels, logits, from_logits=True)
        weight = ops.cast(valid, "float32")
        if self.class_weights is not None:
            table = ops.convert_to_tensor(self.class_weights, dtype="float32")
            weight = weight * ops.take(table, safe_labels)
        if self.ohem_threshold is not None:
            weight = weight * self._hard_pixels(pixel_loss, valid)
        # The mean over the batch's valid pixels, returned as a scalar so the Keras reduction
        # ("sum_over_batch_size" of one value) leaves it unchanged.
        return ops.sum(pixel_loss * weight) / ops.maximum(ops.sum(weight), 1e-6)

    def _hard_pixels(self, pixel_loss, valid):
        # Keep pixels with loss above -log(threshold); if fewer than min_kept, lower the bar to
        # the min_kept-th largest loss (ignored pixels sort last with a loss of -1).
        pixel_loss = ops.stop_gradient(pixel_loss)
        ranked = ops.where(valid, pixel_loss, -1.0)
        ordered = -ops.sort(-ranked)
        num_valid = ops.sum(ops.cast(valid, "int32"))
        kth = ops.minimum(self.ohem_min_kept, num_valid) - 1
        bar = ops.take(ordered, ops.maximum(kth, 0))
        bar = ops.minimum(bar, -math.log(self.ohem_threshold))
        return ops.cast(ops.logical_and(valid, ranked >= bar), "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "ignore_index": self.ignore_index,
            "class_weights": self.class_weights,
            "ohem_threshold": self.ohem_threshold,
            "ohem_min_kept": self.ohem_min_kept,
        }


def class_histogram(mask, num_classes, ignore_index=255):
    """Pixel count per class of one label map (the ignore label and out-of-range values
    are not counted)."""
    mask = np.asarray(mask).reshape(-1).astype(np.int64)
    mask = mask[(mask >= 0) & (mask < num_classes) & (mask != ignore_index)]
    return np.bincount(mask, minlength=num_classes)


def median_frequency_weights(histograms):
    """Median-frequency balancing weights from per-image class histograms `(N, C)`.

    `f_c` = pixels of class c / pixels of the images where c appears; the weight is
    `median(f) / f_c`. A class that never appears gets weight 0 (it has no pixels to weigh).
    """
    histograms = np.asarray(histograms, dtype=np.float64)
    if histograms.ndim != 2 or histograms.shape[0] == 0:
        raise ValueError("median_frequency_weights needs a non-empty (images, classes) array.")
    class_pixels = histograms.sum(0)
    image_pixels = histograms.sum(1, keepdims=True)
    pixels_where_present = np.where(histograms > 0, image_pixels, 0.0).sum(0)
    present = class_pixels > 0
    if not present.any():
        raise ValueError("median_frequency_weights: the label maps contain no labelled pixel.")
    frequency = np.zeros_like(class_pixels)
    frequency[present] = class_pixels[present] / pixels_where_present[present]
    median = np.median(frequency[present])
    weights = np.zeros_like(frequency)
    weights[present] = median / frequency[present]
    return weights


def log_frequency_weights(histograms, c=1.02):
    """ENet's class weights (Paszke et al. 2016) from per-image class histograms `(N, C)`:
    `1 / ln(c + p_c)`, `p_c` the class's share of all labelled pixels. Bounded by `1 / ln(c)`
    (rare classes) and gentler than median frequency; CGNet and DABNet use `c = 1.10`. A class
    that never appears gets weight 0."""
    if not c > 1:
        raise ValueError(f"log_frequency_weights: c must be above 1 (ln(c) > 0), got {c}.")
    histograms = np.asarray(histograms, dtype=np.float64)
    if histograms.ndim != 2 or histograms.shape[0] == 0:
        raise ValueError("log_frequency_weights needs a non-empty (images, classes) array.")
    class_pixels = histograms.sum(0)
    if not class_pixels.sum() > 0:
        raise ValueError("log_frequency_weights: the label maps contain no labelled pixel.")
    share = class_pixels / class_pixels.sum()
    return np.where(class_pixels > 0, 1.0 / np.log(c + share), 0.0)
