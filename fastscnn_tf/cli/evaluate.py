"""`fastscnn evaluate`: per-class IoU, mIoU, pixel accuracy and a confusion-matrix picture.

The scores are `fastscnn_tf.evaluation`'s; this job checks the arguments, prints the table and
writes the JSON report and the confusion picture. The modules that load TensorFlow are imported
where they are used, so that `fastscnn evaluate --help` starts fast.
"""

import dataclasses
import json
import os
import time

from fastscnn_tf import evaluation, presets, viz
from fastscnn_tf.cli.config import check_augmentation, field, flip_field, scales_field
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
    scales: tuple = scales_field("the images")
    flip: bool = flip_field("the images")


def run_evaluation(config):
    """Evaluate and write `<model stem>.<split>.eval.json` and `.confusion.png`; returns the
    results dict."""
    from fastscnn_tf import data as data_lib
    from fastscnn_tf.runtime import load_runtime

    if config.batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {config.batch_size}.")
    # Checked before the work, not after it (the default: the model's folder, or the current
    # one for a preset, whose folder is inside the installed package).
    preset = presets.split_name(config.model)
    out = config.out or ("." if preset else os.path.dirname(os.path.abspath(config.model)))
    check_output_dir(out, "out")
    runtime = load_runtime(config.model, num_threads=config.num_threads)
    scales = check_augmentation(runtime, config.scales, config.flip)
    augmented = scales != (1.0,) or config.flip
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
    confusion, count = evaluation.evaluate(
        runtime, source, config.batch_size, config.max_examples, scales, config.flip
    )
    seconds = time.perf_counter() - start
    scores = evaluation.report(confusion, count, names)
    augmentation = f", scales {','.join(f'{v:g}' for v in scales)}" if scales != (1.0,) else ""
    augmentation += ", with flips" if config.flip else ""
    if runtime.input_scale != 1.0:  # a preset trained at 2x its data's size
        augmentation += f", images read at {runtime.input_scale:g}x"
    print(f"{config.model} on {source.name}{augmentation}: {count} images in {seconds:.1f} s")
    print(evaluation.format_table(scores))

    os.makedirs(out, exist_ok=True)
    stem = (
        config.model.replace(":", "_")
        if preset
        else (os.path.splitext(os.path.basename(config.model))[0])
    )
    # An augmented evaluation is a different measurement: it gets its own files.
    stem += ".aug" if augmented else ""
    json_path = os.path.join(out, f"{stem}.{config.split}.eval.json")
    png_path = os.path.join(out, f"{stem}.{config.split}.confusion.png")
    report = {
        "model": config.model,
        "dataset": source.name,
        "split": config.split,
        "images": count,
        "scales": list(scales),
        "input_scale": runtime.input_scale,
        "flip": config.flip,
        "seconds": round(seconds, 2),
        "miou": scores["miou"],
        "pixel_accuracy": scores["pixel_accuracy"],
        "classes": scores["classes"],
        "ignore_index": source.labels.ignore_index,
        "confusion_matrix": scores["confusion_matrix"],
    }
    write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    save_png_atomic(viz.confusion_image(confusion, names), png_path)
    print(f"wrote {json_path} and {png_path}")
    return report


def run(config):
    run_evaluation(config)
    return 0
