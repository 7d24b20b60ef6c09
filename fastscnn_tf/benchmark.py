"""`fastscnn benchmark`: latency, peak memory and file size of Keras and TFLite models.

Every model runs in its own worker process, so that its peak resident memory is its own
(VmHWM of that process; tracemalloc cannot see native buffers). Workers that share an
input size and a thread count run side by side: the parent asks each in turn for a few timed
runs until every one has `runs`, so a noisy, shared CPU slows all variants alike and their
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
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from fastscnn_tf import presets
from fastscnn_tf.config import field, parse_size, to_json
from fastscnn_tf.files import atomic_path, write_text_atomic

DEFAULT_SIZES = ["256x512", "512x1024", "1024x2048"]
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
PLOT_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


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


# --- worker: one process per model and thread count --------------------------------------------


def _peak_rss_mb():
    # VmHWM is the peak of this address space. ru_maxrss is not: Linux carries the parent's
    # resident size into a child across fork and exec, so every worker would report the parent's.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _tflite_runner(path, threads, image=None):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    shape = tuple(int(v) for v in detail["shape"])
    rng = np.random.default_rng(0)
    if image is not None:
        image = np.load(image)[None].astype(detail["dtype"])
    elif np.issubdtype(detail["dtype"], np.integer):
        info = np.iinfo(detail["dtype"])
        image = rng.integers(info.min, int(info.max) + 1, shape).astype(detail["dtype"])
    else:
        image = rng.uniform(0, 255, shape).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], image)
    return interpreter.invoke, shape[1:3]


def _keras_runner(path, threads, size, image=None):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)  # no extra threads beside intra-op
    from fastscnn_tf.export import load_keras_model

    model = load_keras_model(path)
    spec = tf.TensorSpec([1, *size, 3], tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    if image is None:
        image = np.random.default_rng(0).uniform(0, 255, (1, *size, 3))
    else:
        image = np.load(image)[None]
    image = tf.constant(image, tf.float32)

    def run():
        output = forward(image)
        (output[0] if isinstance(output, (list, tuple)) else output).numpy()

    return run, tuple(size)


def worker():
    """Serve one model over stdin/stdout, one JSON object per line.

    First line: {"kind", "path", "threads", "warmup", "size", "image"}; answers {"size",
    "base_rss_mb"}.
    Then {"runs": n} answers {"times_ms": [...]}, and {"stop": true} answers {"peak_rss_mb"}.
    """
    spec = json.loads(sys.stdin.readline())
    if spec["kind"] == "keras":
        import tensorflow  # noqa: F401  (the base line includes TensorFlow for a Keras model)
    base = _peak_rss_mb()
    if spec["kind"] == "tflite":
        run, size = _tflite_runner(spec["path"], spec["threads"], spec.get("image"))
    else:
        run, size = _keras_runner(spec["path"], spec["threads"], spec["size"], spec.get("image"))
    for _ in range(spec["warmup"]):
        run()
    _reply({"size": list(size), "base_rss_mb": base})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("stop"):
            _reply({"peak_rss_mb": _peak_rss_mb()})
            return
        times = []
        for _ in range(request["runs"]):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        _reply({"times_ms": times})


def _reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# The worker imports the package without running fastscnn_tf/__init__.py (which loads Keras and
# TensorFlow), so a TFLite worker's memory is LiteRT's and the model's, not TensorFlow's.
_WORKER_MAIN = (
    "import sys, types; package = types.ModuleType('fastscnn_tf'); package.__path__ = [{path!r}]; "
    "sys.modules['fastscnn_tf'] = package; from fastscnn_tf.benchmark import worker; worker()"
)


class Worker:
    """A model loaded and warmed up in a child process."""

    def __init__(self, variant, kind, path, threads, warmup, size=None, image=None):
        self.variant, self.kind, self.path, self.threads = variant, kind, path, threads
        code = _WORKER_MAIN.format(path=os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self.log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: logs cannot block it
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        spec = {"kind": kind, "path": path, "threads": threads, "warmup": warmup, "size": size}
        spec["image"] = image  # a .npy uint8 (H, W, 3), or None for random pixels
        ready = self._ask(spec)
        self.size = tuple(ready["size"])
        self.base_rss_mb = ready["base_rss_mb"]
        self.times_ms = []

    def _ask(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=60)
            self.log.seek(0)
            error = self.log.read().strip().splitlines()
            raise ValueError(
                f"{self.path}: the benchmark worker failed: {error[-1] if error else 'no output'}"
            )
        return json.loads(line)

    def time(self, runs):
        self.times_ms += self._ask({"runs": runs})["times_ms"]

    def stop(self):
        peak = self._ask({"stop": True})["peak_rss_mb"]
        self.process.wait(timeout=60)
        return peak

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- parent ------------------------------------------------------------------------------------


def summarize_times(times_ms):
    times = np.asarray(times_ms, np.float64)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
    }


def measure_group(entries, threads, runs, warmup, chunk=5):
    """Time `entries` (dicts: variant, kind, path, size) side by side at one thread count."""
    workers = []
    try:
        for entry in entries:
            workers.append(
                Worker(
                    entry["variant"],
                    entry["kind"],
                    entry["path"],
                    threads,
                    warmup,
                    entry.get("size"),
                    entry.get("image"),
                )
            )
        done = 0
        while done < runs:
            step = min(chunk, runs - done)
            for worker_ in workers:
                worker_.time(step)
            done += step
        records = []
        for entry, worker_ in zip(entries, workers, strict=True):
            peak = worker_.stop()
            records.append(
                {
                    **{k: entry[k] for k in ("variant", "kind", "path", "precision", "output")},
                    "size": list(worker_.size),
                    "threads": threads,
                    "runs": len(worker_.times_ms),
                    **summarize_times(worker_.times_ms),
                    "peak_rss_mb": round(peak, 1),
                    "model_rss_mb": round(peak - worker_.base_rss_mb, 1),
                    "file_mb": round(os.path.getsize(entry["path"]) / 1e6, 3),
                }
            )
        return records
    finally:
        for worker_ in workers:
            worker_.kill()


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


def tflite_size(path):
    """Static input (H, W) of a .tflite file, read without running it."""
    from ai_edge_litert.interpreter import Interpreter

    shape = Interpreter(model_path=path).get_input_details()[0]["shape"]
    return (int(shape[1]), int(shape[2]))


def tflite_precision(path):
    """ "int8", "dynamic", "float16" or "float32", read from the first CONV_2D of a .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
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
    """Export what `config` asks for; returns {size: [entries]} in measuring order."""
    from fastscnn_tf import export

    precisions = [p for p in config.precisions if p != "none"]
    for p in precisions:
        if p not in export.PRECISIONS:
            raise ValueError(
                f"--precisions {p!r}: choose from {', '.join(export.PRECISIONS)} or none."
            )
    sizes = _parse_sizes(config.sizes)
    for size in sizes:
        export.check_size(size, "--sizes")
    groups = {}
    keras_paths = [p for p in config.models if p.lower().endswith(".keras")]
    for path in keras_paths:
        model = export.load_keras_model(path)
        name = _stem(path) if len(keras_paths) > 1 else ""
        for size in sizes:
            if config.keras:
                groups.setdefault(size, []).append(
                    {
                        "variant": f"{name} keras float32".strip(),
                        "kind": "keras",
                        "path": path,
                        "size": list(size),
                        "precision": "float32",
                        "output": "logits",
                    }
                )
            for precision in precisions:
                out = os.path.join(
                    model_dir,
                    f"{_stem(path)}_{size[0]}x{size[1]}_{precision}_"
                    f"{config.output_kind}_s{config.output_stride}_m{config.mask_stride}.tflite",
                )
                print(f"exporting {out}", flush=True)
                export.export_tflite(
                    model,
                    out,
                    size=size,
                    precision=precision,
                    output_kind=config.output_kind,
                    output_stride=config.output_stride,
                    mask_stride=config.mask_stride,
                    representative=config.calibration_dataset if precision == "int8" else None,
                    calibration_images=config.calibration_images,
                    metadata=False,
                )
                output = config.output_kind + ("" if config.output_stride == 1 else " 1/8")
                if (
                    config.output_kind == "mask"
                    and config.output_stride == 1
                    and (config.mask_stride > 1)
                ):
                    output += f" (argmax 1/{config.mask_stride})"
                groups.setdefault(size, []).append(
                    {
                        "variant": f"{name} tflite {precision} {output}".strip(),
                        "kind": "tflite",
                        "path": out,
                        "precision": precision,
                        "output": output,
                    }
                )
    for path in config.models:
        if path.lower().endswith(".tflite"):
            groups.setdefault(tflite_size(path), []).append(
                {
                    "variant": _stem(path),
                    "kind": "tflite",
                    "path": path,
                    "precision": tflite_precision(path),
                    "output": "",
                }
            )
    return dict(sorted(groups.items(), key=lambda item: item[0][0] * item[0][1]))


def machine_info():
    flags, name = set(), platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name in ("", "x86_64"):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info = {
        "cpu": name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
    }
    try:
        from importlib.metadata import version

        info.update(tensorflow=version("tensorflow"), litert=version("ai-edge-litert"))
    except Exception:  # a missing distribution only leaves the version out
        pass
    return info


def ratios(records, numerator="int8", denominator="float32"):
    """Median-latency ratio of exported `numerator` over `denominator` per size and threads."""
    table = {}
    for r in records:
        if r["kind"] == "tflite" and r["precision"] in (numerator, denominator):
            key = (r["variant"].replace(r["precision"], "*"), tuple(r["size"]), r["threads"])
            table.setdefault(key, {})[r["precision"]] = r["median_ms"]
    out = []
    for (variant, size, threads), values in sorted(table.items()):
        if numerator in values and denominator in values:
            out.append(
                {
                    "variant": variant,
                    "size": list(size),
                    "threads": threads,
                    f"{numerator}_ms": values[numerator],
                    f"{denominator}_ms": values[denominator],
                    "ratio": round(values[numerator] / values[denominator], 3),
                }
            )
    return out


def _size_text(size):
    return f"{size[0]}x{size[1]}"


def markdown(records, info, ratio_rows):
    """Tables: latency per variant and size (one column per thread count), then memory/size."""
    threads = sorted({r["threads"] for r in records})
    variants = list(dict.fromkeys(r["variant"] for r in records))
    sizes = sorted({tuple(r["size"]) for r in records}, key=lambda s: s[0] * s[1])
    by_key = {(r["variant"], tuple(r["size"]), r["threads"]): r for r in records}
    flags = ", ".join(f for f, on in info.get("cpu_flags", {}).items() if on)
    lines = [
        f"CPU: {info.get('cpu', '?')} ({info.get('cpus', '?')} cores; {flags}); "
        f"TensorFlow {info.get('tensorflow', '?')}, LiteRT {info.get('litert', '?')} (XNNPACK).",
        "",
        "Latency, median / p90 in ms:",
        "",
        "| variant | size | "
        + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
        + " | file MB | peak RSS MB |",
        "|---|---|" + "---:|" * len(threads) + "---:|---:|",
    ]
    for size in sizes:
        for variant in variants:
            cells = [by_key.get((variant, size, t)) for t in threads]
            present = [c for c in cells if c]
            if not present:
                continue
            timing = [f"{c['median_ms']:.1f} / {c['p90_ms']:.1f}" if c else "" for c in cells]
            peak = max(c["peak_rss_mb"] for c in present)
            lines.append(
                f"| {variant} | {_size_text(size)} | "
                + " | ".join(timing)
                + f" | {present[0]['file_mb']:.2f} | {peak:.0f} |"
            )
    if ratio_rows:
        lines += [
            "",
            "int8 / float32 median latency (below 1: int8 is faster):",
            "",
            "| variant | size | threads | float32 ms | int8 ms | ratio |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in ratio_rows:
            lines.append(
                f"| {row['variant']} | {_size_text(row['size'])} | {row['threads']} | "
                f"{row['float32_ms']:.1f} | {row['int8_ms']:.1f} | {row['ratio']:.2f} |"
            )
    lines += [
        "",
        "Peak RSS is the worker process's maximum resident memory (Python and the "
        "runtime included); `benchmark.json` also has `model_rss_mb`, the growth after "
        "imports.",
    ]
    return "\n".join(lines) + "\n"


def plot(records, path, threads=None, width=900, height=560):
    """PNG line chart of median latency against input size, one line per variant (PIL only)."""
    from PIL import Image, ImageDraw, ImageFont

    available = sorted({r["threads"] for r in records})
    threads = threads if threads in available else (2 if 2 in available else available[0])
    chosen = [r for r in records if r["threads"] == threads]
    sizes = sorted({tuple(r["size"]) for r in chosen}, key=lambda s: s[0] * s[1])
    variants = list(dict.fromkeys(r["variant"] for r in chosen))
    # Log scale: latency grows ~4x per size step and Keras sits far above LiteRT.
    low = math.log10(min(r["median_ms"] for r in chosen) / 1.5)
    high = math.log10(max(r["median_ms"] for r in chosen) * 1.5)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, upper, lower = 70, width - 20, 40, height - 60
    title = f"Fast-SCNN median latency (log scale), {threads} thread(s)"
    draw.text((left, 12), title, fill="black", font=font)
    draw.line([(left, upper), (left, lower), (right, lower)], fill="black")

    def x_of(i):
        return left + (right - left) * (i + 0.5) / max(len(sizes), 1)

    def y_of(ms):
        return lower - (lower - upper) * (math.log10(ms) - low) / (high - low)

    ticks = [m * 10.0**e for e in range(math.floor(low), math.ceil(high) + 1) for m in (1, 2, 5)]
    for ms in ticks:
        if low <= math.log10(ms) <= high:
            draw.line([(left - 4, y_of(ms)), (right, y_of(ms))], fill=(225, 225, 225))
            draw.text((8, y_of(ms) - 6), f"{ms:g} ms", fill="black", font=font)
    for i, size in enumerate(sizes):
        draw.text((x_of(i) - 28, lower + 10), _size_text(size), fill="black", font=font)
    for n, variant in enumerate(variants):
        color = PLOT_COLORS[n % len(PLOT_COLORS)]
        points = [
            (x_of(i), y_of(r["median_ms"]))
            for i, size in enumerate(sizes)
            for r in chosen
            if r["variant"] == variant and tuple(r["size"]) == size
        ]
        if len(points) > 1:
            draw.line(points, fill=color, width=3)
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)
        draw.rectangle([left + 12, upper + 8 + 16 * n, left + 24, upper + 18 + 16 * n], fill=color)
        draw.text((left + 30, upper + 6 + 16 * n), variant, fill="black", font=font)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


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
    os.makedirs(config.output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = os.path.join(config.output_dir, "models") if config.keep_models else scratch
        groups = plan(config, model_dir)
        if config.images:
            for size, entries in groups.items():
                image = os.path.join(scratch, f"input_{_size_text(size)}.npy")
                np.save(image, input_image(config.images, size))
                for entry in entries:
                    entry["image"] = image
        records = []
        for size, entries in groups.items():
            for threads in config.threads:
                print(
                    f"measuring {len(entries)} variant(s) at {_size_text(size)}, "
                    f"{threads} thread(s)",
                    flush=True,
                )
                records += measure_group(entries, threads, config.runs, config.warmup)
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
    plot(records, os.path.join(config.output_dir, "benchmark.png"))
    return result, table


def run(config):
    _, table = benchmark(config)
    print(table)
    print(f"wrote benchmark.json, benchmark.md and benchmark.png to {config.output_dir}")
    return 0
