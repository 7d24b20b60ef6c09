"""`fastscnn evaluate`: per-class IoU, mIoU, pixel accuracy and a confusion-matrix picture.

The model is opened with `runtime.load_runtime`, so a `.keras` model and its int8 `.tflite`
export are measured by the same code: images go in as uint8, class maps come out at the
image size, and the confusion matrix is accumulated in numpy (`metrics.confusion_matrix`).
The modules that load TensorFlow are imported where they are used, so that
`fastscnn evaluate --help` starts fast.
"""

import dataclasses
import json
import os
import time

import numpy as np

from fastscnn_tf import presets, viz
from fastscnn_tf.cli.config import field
from fastscnn_tf.files import check_output_dir, save_png_atomic, write_text_atomic


@dataclasses.dataclass
class EvaluateConfig:
    model: str = field(
        "runs/fastscnn/model.keras",
        "model file (.keras or .tflite) or preset (camvid, camvid:int8)",
    )
    dataset: str = field(
        "synthetic", "data: synthetic[:N[:HxW]] | folder:PATH | cityscapes:PATH | tfds:NAME"
    )
    split: str = field("val", "split to evaluate")
    out: str | None = field(None, "folder for the JSON and PNG results (default: the model's)")
    batch_size: int = field(4, "images per model call (same-size images only)")
    max_examples: int | None = field(None, "evaluate only the first N examples")
    num_classes: int | None = field(None, "number of classes (default: from the data)")
    ignore_index: int | None = field(None, "label value to ignore (default: from the data)")
    class_names: str | None = field(None, "labels.txt with class names and colours")
    seed: int = field(0, "seed of generated data (synthetic)")
    num_threads: int | None = field(None, "TFLite interpreter threads (default: LiteRT's)")


def _batches(dataset, batch_size, max_examples):
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


def evaluate(runtime, source, batch_size=4, max_examples=None):
    """Confusion matrix of `runtime.segment` over a source's examples, and the image count."""
    from fastscnn_tf import metrics  # loads TensorFlow

    labels = source.labels
    confusion = np.zeros((labels.num_classes, labels.num_classes), np.int64)
    count = 0
    for images, masks in _batches(source.dataset, batch_size, max_examples):
        predictions = runtime.segment(images)
        confusion += metrics.confusion_matrix(
            masks, predictions, labels.num_classes, labels.ignore_index
        )
        count += len(images)
    if count == 0:
        raise ValueError(f"{source.name} has no examples to evaluate.")
    return confusion, count


def format_table(names, result, confusion):
    pixels = confusion.sum(1)
    width = max(12, *(len(n) for n in names))
    lines = [f"{'class':<{width}} {'IoU':>7} {'pixels':>12}", "-" * (width + 21)]
    for name, iou, count in zip(names, result["iou"], pixels, strict=True):
        shown = "    n/a" if np.isnan(iou) else f"{iou:7.4f}"
        lines.append(f"{name:<{width}} {shown} {int(count):>12,}")
    lines.append("-" * (width + 21))
    lines.append(f"{'mIoU':<{width}} {result['miou']:7.4f}")
    lines.append(f"{'pixel acc.':<{width}} {result['pixel_accuracy']:7.4f}")
    return "\n".join(lines)


def run_evaluation(config):
    """Evaluate and write `<model stem>.<split>.eval.json` and `.confusion.png`; returns the
    results dict."""
    from fastscnn_tf import data as data_lib
    from fastscnn_tf import metrics
    from fastscnn_tf.runtime import load_runtime

    if config.batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {config.batch_size}.")
    # Checked before the work, not after it (the default: the model's folder, or the current
    # one for a preset, whose folder is inside the installed package).
    preset = presets.split_name(config.model)
    out = config.out or ("." if preset else os.path.dirname(os.path.abspath(config.model)))
    check_output_dir(out, "--out")
    runtime = load_runtime(config.model, num_threads=config.num_threads)
    num_classes = config.num_classes or runtime.num_classes
    source = data_lib.load_source(
        config.dataset,
        config.split,
        num_classes=num_classes,
        ignore_index=config.ignore_index,
        class_names=config.class_names,
        seed=config.seed,
    )
    if source.labels.num_classes != runtime.num_classes:
        raise ValueError(
            f"--model {config.model} predicts {runtime.num_classes} classes but --dataset "
            f"{source.name} has {source.labels.num_classes}."
        )
    names = list((runtime.labels or source.labels).names)
    start = time.perf_counter()
    confusion, count = evaluate(runtime, source, config.batch_size, config.max_examples)
    seconds = time.perf_counter() - start
    result = metrics.scores(confusion)
    print(f"{config.model} on {source.name}: {count} images in {seconds:.1f} s")
    print(format_table(names, result, confusion))

    os.makedirs(out, exist_ok=True)
    stem = (
        config.model.replace(":", "_")
        if preset
        else (os.path.splitext(os.path.basename(config.model))[0])
    )
    json_path = os.path.join(out, f"{stem}.{config.split}.eval.json")
    png_path = os.path.join(out, f"{stem}.{config.split}.confusion.png")
    report = {
        "model": config.model,
        "dataset": source.name,
        "split": config.split,
        "images": count,
        "seconds": round(seconds, 2),
        "miou": result["miou"],
        "pixel_accuracy": result["pixel_accuracy"],
        "classes": [
            {"name": name, "iou": None if np.isnan(iou) else float(iou), "pixels": int(pixels)}
            for name, iou, pixels in zip(names, result["iou"], confusion.sum(1), strict=True)
        ],
        "ignore_index": source.labels.ignore_index,
        "confusion_matrix": confusion.tolist(),
    }
    write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    save_png_atomic(viz.confusion_image(confusion, names), png_path)
    print(f"wrote {json_path} and {png_path}")
    return report


def run(config):
    run_evaluation(config)
    return 0
