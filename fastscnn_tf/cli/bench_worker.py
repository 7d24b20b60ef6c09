"""The worker processes of `fastscnn benchmark`: one model each, timed on request.

Every model runs in its own process, so that its peak resident memory is its own (VmHWM of that
process; tracemalloc cannot see native buffers). `python -m fastscnn_tf.cli.bench_worker`
serves one model over stdin/stdout; importing the package does not start TensorFlow, so a
TFLite worker's memory is LiteRT's and the model's. `measure_group` runs workers side by side:
the parent asks each in turn for a few timed runs until every one has `runs`, so a noisy,
shared CPU slows all variants alike and their ratios stay meaningful.
"""

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from fastscnn_tf import tflog


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
    interpreter = tflog.interpreter(path, num_threads=threads)
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
    from fastscnn_tf.modelfile import load_keras_model

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


class Worker:
    """A model loaded and warmed up in a child process."""

    def __init__(self, variant, kind, path, threads, warmup, size=None, image=None):
        self.variant, self.kind, self.path, self.threads = variant, kind, path, threads
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        self.log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: logs cannot block it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastscnn_tf.cli.bench_worker"],
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


def summarize_times(times_ms):
    times = np.asarray(times_ms, np.float64)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
    }


@dataclasses.dataclass
class Variant:
    """One model to time: a `.keras` model ("keras", at `size`) or a `.tflite` file ("tflite",
    at its own static size), optionally on the uint8 image saved as `.npy` at `image`."""

    name: str
    kind: str
    path: str
    precision: str
    output: str
    size: tuple | None = None
    image: str | None = None


def measure_group(variants, threads, runs, warmup, chunk=5):
    """Time `variants` (`Variant`s) side by side at one thread count; one record each."""
    workers = []
    try:
        for v in variants:
            workers.append(Worker(v.name, v.kind, v.path, threads, warmup, v.size, v.image))
        done = 0
        while done < runs:
            step = min(chunk, runs - done)
            for worker_ in workers:
                worker_.time(step)
            done += step
        records = []
        for v, worker_ in zip(variants, workers, strict=True):
            peak = worker_.stop()
            records.append(
                {
                    "variant": v.name,
                    "kind": v.kind,
                    "path": v.path,
                    "precision": v.precision,
                    "output": v.output,
                    "size": list(worker_.size),
                    "threads": threads,
                    "runs": len(worker_.times_ms),
                    **summarize_times(worker_.times_ms),
                    "peak_rss_mb": round(peak, 1),
                    "model_rss_mb": round(peak - worker_.base_rss_mb, 1),
                    "file_mb": round(os.path.getsize(v.path) / 1e6, 3),
                }
            )
        return records
    finally:
        for worker_ in workers:
            worker_.kill()


if __name__ == "__main__":
    worker()
