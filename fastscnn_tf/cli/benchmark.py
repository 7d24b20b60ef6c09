"""`fastscnn benchmark`: latency, peak memory and file size of Keras and TFLite models.

Every model runs in its own worker process (`bench_worker`), side by side with the others
of its input size and thread count, so a noisy, shared CPU slows all variants alike and their
ratios stay meaningful.

A `.keras` model is measured itself (TensorFlow, `intra_op` threads) and, for each of
`--precisions`, exported at each of `--sizes` through `fastscnn_tf.export` into a temporary
folder (or `--keep-models` in the output folder) and measured in LiteRT with XNNPACK. A
`.tflite` file has a static input size and is measured at that size only.

    fastscnn benchmark model.keras --precisions float32 int8 --threads 1 2 4
    fastscnn benchmark a.tflite b.tflite --threads 2 --runs 50
    fastscnn benchmark model.keras --images data/val --sizes 360x480 512x1024

A mask export's exact head resolves class boundaries pixel by pixel, so its latency depends on
the scene: `--images` times every variant on a real image instead of random pixels.

Writes `benchmark.json`, `benchmark.md` (tables) and `benchmark.png` (median latency against
input size, one line per variant) into `--output-dir`.
"""

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np

from fastscnn_tf import presets, tflog, viz
from fastscnn_tf.cli.bench_report import machine_info, markdown, ratios, size_text
from fastscnn_tf.cli.bench_worker import Variant, measure_group
from fastscnn_tf.cli.config import field, parse_size, to_json
from fastscnn_tf.files import write_text_atomic
from fastscnn_tf.geometry import check_size

DEFAULT_SIZES = ["256x512", "512x1024", "1024x2048"]


@dataclasses.dataclass
class BenchmarkConfig:
    models: list[str] = field([], ".keras and/or .tflite files, or presets", positional=True)
    sizes: list[str] = field(DEFAULT_SIZES, "input sizes HxW for .keras models")
    precisions: list[str] = field(
        ["float32", "int8"], "TFLite variants exported from each .keras model ('none': Keras only)"
    )
    output_kind: str = field("mask", "exported output", choices=("mask", "logits", "probabilities"))
    output_stride: int = field(
        1, "exported output at the input size (1) or the 1/8 map (8)", choices=(1, 8)
    )
    mask_stride: int = field(
        1,
        "mask output: ARG_MAX at 1/N of the input, then nearest copy (1: exact)",
        choices=(1, 2, 4, 8),
    )
    threads: list[int] = field([1, 2, 4], "thread counts (LiteRT num_threads, TF intra-op)")
    runs: int = field(20, "timed runs per model, size and thread count, after warm-up")
    warmup: int = field(3, "untimed runs first")
    keras: bool = field(True, "measure the .keras models themselves too")
    calibration_dataset: str = field(
        "synthetic", "int8 calibration images (a data spec; latency does not depend on them)"
    )
    calibration_images: int = field(8, "number of int8 calibration images")
    images: str | None = field(
        None,
        "folder of images: every variant of a size runs on the first one, resized (default: "
        "random pixels; the exact mask head costs more where classes change, so use scenes)",
    )
    output_dir: str = field("runs/benchmark", "folder for benchmark.json, .md and .png")
    keep_models: bool = field(False, "keep the exported .tflite files in OUTPUT_DIR/models")


def _check_models(models):
    if not models:
        raise ValueError("give at least one .keras or .tflite model to benchmark.")
    for path in models:
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".keras", ".tflite"):
            raise ValueError(f"{path}: expected a .keras or .tflite file.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file {path} does not exist.")


def _parse_sizes(sizes):
    parsed = []
    for text in sizes:
        try:
            parsed.append(parse_size(text))
        except Exception as error:
            raise ValueError(f"--sizes: {error}") from None
    return parsed


def input_image(folder, size):
    """The first .jpg/.png of `folder` (sorted by name) as uint8 RGB resized to `size` (H, W)."""
    from PIL import Image

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    if not names:
        raise ValueError(f"--images {folder}: no .jpg or .png images there.")
    with Image.open(os.path.join(folder, names[0])) as image:
        image = image.convert("RGB").resize(size[::-1], Image.BILINEAR)
        return np.asarray(image, np.uint8)


def _interpreter(path):
    try:
        return tflog.interpreter(path)
    except (ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise ValueError(f"{path}: not a loadable TFLite model ({reason}).") from None


def tflite_size(path):
    """Static input (H, W) of a .tflite file, read without running it."""
    shape = _interpreter(path).get_input_details()[0]["shape"]
    return (int(shape[1]), int(shape[2]))


def tflite_precision(path):
    """ "int8", "dynamic", "float16" or "float32", read from the first CONV_2D of a .tflite."""
    interpreter = _interpreter(path)
    ops = interpreter._get_ops_details()  # no public API lists operators
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    conv = next((op for op in ops if op["op_name"] == "CONV_2D"), None)
    if conv is None:
        return ""
    if dtypes.get(conv["outputs"][0]) == np.int8:
        return "int8"
    if dtypes.get(conv["inputs"][1]) == np.int8:
        return "dynamic"
    if any(dtypes.get(t) == np.float16 for op in ops for t in op["inputs"]):
        return "float16"
    return "float32"


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def plan(config, model_dir):
    """Export what `config` asks for; returns {size: [Variant]} in measuring order."""
    from fastscnn_tf import export
    from fastscnn_tf.modelfile import load_keras_model

    precisions = [p for p in config.precisions if p != "none"]
    sizes = _parse_sizes(config.sizes)
    for size in sizes:
        check_size(size, "--sizes")
    specs = {  # every export checked before the first one starts
        (size, precision): export.ExportSpec(
            size, precision, config.output_kind, config.output_stride, config.mask_stride
        )
        for size in sizes
        for precision in precisions
    }
    groups = {}
    keras_paths = [p for p in config.models if p.lower().endswith(".keras")]
    for path in keras_paths:
        model = load_keras_model(path)
        name = _stem(path) if len(keras_paths) > 1 else ""
        for size in sizes:
            if config.keras:
                groups.setdefault(size, []).append(
                    Variant(
                        f"{name} keras float32".strip(), "keras", path, "float32", "logits", size
                    )
                )
            for precision in precisions:
                out = os.path.join(
                    model_dir,
                    f"{_stem(path)}_{size[0]}x{size[1]}_{precision}_"
                    f"{config.output_kind}_s{config.output_stride}_m{config.mask_stride}.tflite",
                )
                print(f"exporting {out}", flush=True)
                export.Exporter(
                    model,
                    specs[size, precision],
                    representative=config.calibration_dataset if precision == "int8" else None,
                    calibration_images=config.calibration_images,
                    metadata=False,
                ).export(out)
                output = config.output_kind + ("" if config.output_stride == 1 else " 1/8")
                if (
                    config.output_kind == "mask"
                    and config.output_stride == 1
                    and (config.mask_stride > 1)
                ):
                    output += f" (argmax 1/{config.mask_stride})"
                name_ = f"{name} tflite {precision} {output}".strip()
                groups.setdefault(size, []).append(Variant(name_, "tflite", out, precision, output))
    for path in config.models:
        if path.lower().endswith(".tflite"):
            variant = Variant(_stem(path), "tflite", path, tflite_precision(path), "")
            groups.setdefault(tflite_size(path), []).append(variant)
    return dict(sorted(groups.items(), key=lambda item: item[0][0] * item[0][1]))


def benchmark(config):
    """Run the whole benchmark; returns the JSON-ready result (also written to disk)."""
    config = dataclasses.replace(config, models=[presets.resolve_model(m) for m in config.models])
    _check_models(config.models)
    if config.runs < 1 or config.warmup < 0:
        raise ValueError(
            f"--runs {config.runs} / --warmup {config.warmup}: need runs >= 1, warmup >= 0."
        )
    if not config.threads or min(config.threads) < 1:
        raise ValueError(f"--threads {config.threads}: each thread count must be >= 1.")
    created = not os.path.exists(config.output_dir)
    os.makedirs(config.output_dir, exist_ok=True)
    try:
        return _measure_and_report(config)
    except BaseException:
        if created:  # a folder this run made holds only what it wrote: leave nothing behind
            shutil.rmtree(config.output_dir, ignore_errors=True)
        raise


def _measure_and_report(config):
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = os.path.join(config.output_dir, "models") if config.keep_models else scratch
        groups = plan(config, model_dir)
        if config.images:
            for size, variants in groups.items():
                image = os.path.join(scratch, f"input_{size_text(size)}.npy")
                np.save(image, input_image(config.images, size))
                groups[size] = [dataclasses.replace(v, image=image) for v in variants]
        records = []
        for size, variants in groups.items():
            for threads in config.threads:
                print(
                    f"measuring {len(variants)} variant(s) at {size_text(size)}, "
                    f"{threads} thread(s)",
                    flush=True,
                )
                records += measure_group(variants, threads, config.runs, config.warmup)
    info = machine_info()
    ratio_rows = ratios(records)
    result = {
        "config": json.loads(to_json(config)),
        "machine": info,
        "results": records,
        "int8_vs_float32": ratio_rows,
    }
    write_text_atomic(
        os.path.join(config.output_dir, "benchmark.json"), json.dumps(result, indent=2) + "\n"
    )
    table = markdown(records, info, ratio_rows)
    write_text_atomic(os.path.join(config.output_dir, "benchmark.md"), table)
    viz.latency_chart(records, os.path.join(config.output_dir, "benchmark.png"))
    return result, table


def run(config):
    _, table = benchmark(config)
    print(table)
    print(f"wrote benchmark.json, benchmark.md and benchmark.png to {config.output_dir}")
    return 0
