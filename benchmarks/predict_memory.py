"""Peak memory of `fastscnn predict` on a large photo with a `.keras` model (issue 12).

Writes a synthetic 6000x4000 JPEG and a Fast-SCNN `.keras` model (random weights: memory does
not depend on them), then runs `fastscnn predict` once per `--max-sizes` value, each in a fresh
process that reports its own peak resident memory (VmHWM: the high-water mark of that address
space; `ru_maxrss` of a child would carry over this parent's size). Prints one row per run.

    python benchmarks/predict_memory.py                        # --max-size 2048 (the default)
    python benchmarks/predict_memory.py --max-sizes 2048 1024
    python benchmarks/predict_memory.py --max-sizes 0          # full resolution: ~21 GB

`--max-sizes 0` is the behaviour before `--max-size` existed (the network at the photo's full
resolution); only run it on a machine with the memory for it.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

# The measured process: `fastscnn predict ARGS`, then its own peak resident memory.
CHILD = """
import sys
from fastscnn_tf import cli
code = cli.main(sys.argv[1:])
with open("/proc/self/status", encoding="ascii") as f:
    peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(f"PEAK_RSS_KB {peak_kb}", file=sys.stderr)
sys.exit(code)
"""


def write_photo(path, size=(4000, 6000), seed=0):
    """A JPEG of `size` (H, W): a synthetic scene, enlarged, with noise (so it compresses like
    a photo, not like a flat picture)."""
    from fastscnn_tf.data import synthetic

    h, w = size
    scene = synthetic.example(seed, size=(h // 10, w // 10))[0]
    big = np.asarray(Image.fromarray(scene).resize((w, h), Image.Resampling.BICUBIC))
    noise = np.random.default_rng(seed).integers(-8, 9, big.shape, dtype=np.int16)
    Image.fromarray(np.clip(big + noise, 0, 255).astype(np.uint8)).save(path, quality=90)


def write_model(path, num_classes):
    """Saved in a child process, so this one never holds TensorFlow."""
    code = (
        "import sys\n"
        "from fastscnn_tf import tflog\n"
        "tflog.import_tensorflow()\n"
        "from fastscnn_tf.model import FastSCNN\n"
        "FastSCNN(int(sys.argv[2])).save(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, path, str(num_classes)], check=True)


def measure(photo, model, out, max_size):
    argv = ["predict", photo, "--model", model, "--out", out, "--max-size", str(max_size)]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"fastscnn predict failed:\n{result.stderr}")
    peak_kb = int(result.stderr.split("PEAK_RSS_KB")[-1].split()[0])
    return peak_kb / 1024**2, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--num-classes", type=int, default=19, help="19: Cityscapes' classes")
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        photo = os.path.join(folder, "big.jpg")
        model = os.path.join(folder, "model.keras")
        write_photo(photo, (args.height, args.width))
        write_model(model, args.num_classes)
        print(f"photo {args.width}x{args.height} JPEG ({os.path.getsize(photo) / 1e6:.1f} MB), "
              f".keras model with {args.num_classes} classes")  # fmt: skip
        print("| --max-size | peak RSS (GB) | wall (s) |")
        print("|---:|---:|---:|")
        for max_size in args.max_sizes:
            out = os.path.join(folder, f"out-{max_size}")  # predict never overwrites
            peak_gb, seconds = measure(photo, model, out, max_size)
            print(f"| {max_size or 'none'} | {peak_gb:.2f} | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
