"""tf.data throughput alone: images/s that `make_pipeline` delivers with training augmentation.

Measures the synthetic set and CamVid (when the folder exists) at 320x320 and 512x512 crops,
batch 8, augment + shuffle + repeat on, exactly as training reads them. The training benchmark
compares these figures with what a training step consumes (the pipeline must deliver >= 3x).

    python benchmarks/data_throughput.py

The synthetic scenes are generated when the source is opened (timed and printed separately).
    python benchmarks/data_throughput.py --camvid ../shared/data/camvid --batches 40
"""

import argparse
import os
import time

from fastscnn_tf import data
from fastscnn_tf.geometry import parse_size

DEFAULT_CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


def images_per_second(source, crop, batch_size, batches, warmup):
    """Steady-state images/s after `warmup` batches, and the seconds to the first batch."""
    ds = data.make_pipeline(
        source, batch_size=batch_size, crop=crop, augment=True, shuffle=True, repeat=True
    )
    iterator = iter(ds)
    start = time.perf_counter()
    next(iterator)
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start), first


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--camvid", default=DEFAULT_CAMVID, help="CamVid folder (skipped if absent)"
    )
    parser.add_argument("--crops", nargs="+", type=parse_size, default=[(320, 320), (512, 512)])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    args = parser.parse_args()

    start = time.perf_counter()
    sources = [("synthetic", data.load_source("synthetic", "train"))]
    print(f"synthetic: generating 1000 scenes {time.perf_counter() - start:.2f} s")
    if os.path.isdir(args.camvid):
        start = time.perf_counter()
        sources.append(("camvid", data.load_source(f"folder:{args.camvid}", "train")))
        print(f"camvid: validation pass over 367 pairs {time.perf_counter() - start:.2f} s")
    else:
        print(f"camvid: {args.camvid} not found, skipped")
    print(f"tf.data throughput, batch {args.batch_size}, augment on, {os.cpu_count()} CPU cores")
    print(f"{'data':<10} {'crop':>9} {'images/s':>9} {'1st batch s':>12}")
    for name, source in sources:
        for crop in args.crops:
            rate, first = images_per_second(
                source, crop, args.batch_size, args.batches, args.warmup
            )
            print(f"{name:<10} {crop[0]:>4}x{crop[1]:<4} {rate:>9.1f} {first:>12.2f}")


if __name__ == "__main__":
    main()
