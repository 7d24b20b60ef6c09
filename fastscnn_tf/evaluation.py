"""Scores of a segmentation model on a data source: confusion matrix, per-class IoU, mIoU.

A `.keras` model and its int8 `.tflite` export are measured by the same code: they are opened
with `runtime.load_runtime`, images go in as uint8, class maps come out at the image size, and
the confusion matrix is accumulated in numpy (`metrics.confusion_matrix`).

    >>> runtime = load_runtime("camvid:int8")
    >>> source = data.load_source("folder:CamVid", "val")
    >>> report = evaluation.report(*evaluation.evaluate(runtime, source), source.labels.names)
    >>> report["miou"]
"""

import numpy as np


def batches(dataset, batch_size, max_examples=None):
    """Consecutive examples of one size grouped into batches of up to `batch_size`."""
    images, masks = [], []
    for count, example in enumerate(dataset.as_numpy_iterator()):
        if max_examples is not None and count >= max_examples:
            break
        if images and (len(images) == batch_size or example["image"].shape != images[0].shape):
            yield np.stack(images), np.stack(masks)
            images, masks = [], []
        images.append(example["image"])
        masks.append(example["mask"])
    if images:
        yield np.stack(images), np.stack(masks)


def evaluate(runtime, source, batch_size=4, max_examples=None, scales=(1.0,), flip=False):
    """Confusion matrix of `runtime.segment` over a source's examples, and the image count;
    `scales` and `flip`: test-time augmentation (`Runtime.probabilities`)."""
    from fastscnn_tf import metrics  # loads TensorFlow

    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}.")
    labels = source.labels
    confusion = np.zeros((labels.num_classes, labels.num_classes), np.int64)
    count = 0
    for images, masks in batches(source.dataset, batch_size, max_examples):
        predictions = runtime.segment(images, scales, flip)
        confusion += metrics.confusion_matrix(
            masks, predictions, labels.num_classes, labels.ignore_index
        )
        count += len(images)
    if count == 0:
        raise ValueError(f"{source.name} has no examples to evaluate.")
    return confusion, count


def report(confusion, count, names):
    """The scores of a confusion matrix as a JSON-ready dict: `miou`, `pixel_accuracy`,
    `classes` (name, IoU or None where the class never occurs, pixels), `images` and the
    matrix itself."""
    from fastscnn_tf import metrics

    result = metrics.scores(confusion)
    return {
        "images": count,
        "miou": result["miou"],
        "pixel_accuracy": result["pixel_accuracy"],
        "classes": [
            {"name": name, "iou": None if np.isnan(iou) else float(iou), "pixels": int(pixels)}
            for name, iou, pixels in zip(names, result["iou"], confusion.sum(1), strict=True)
        ],
        "confusion_matrix": confusion.tolist(),
    }


def format_table(report):
    """A report as a plain-text table: IoU and pixels per class, then mIoU and accuracy."""
    classes = report["classes"]
    width = max(12, *(len(c["name"]) for c in classes))
    lines = [f"{'class':<{width}} {'IoU':>7} {'pixels':>12}", "-" * (width + 21)]
    for c in classes:
        shown = "    n/a" if c["iou"] is None else f"{c['iou']:7.4f}"
        lines.append(f"{c['name']:<{width}} {shown} {c['pixels']:>12,}")
    lines.append("-" * (width + 21))
    lines.append(f"{'mIoU':<{width}} {report['miou']:7.4f}")
    lines.append(f"{'pixel acc.':<{width}} {report['pixel_accuracy']:7.4f}")
    return "\n".join(lines)
