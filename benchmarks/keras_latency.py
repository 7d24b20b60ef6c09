"""Keras inference latency and multiply-accumulates of Fast-SCNN (issue 2's benchmark).

Builds the network at each static size (random weights: latency does not depend on them), runs
the forward pass as a compiled `tf.function` with TensorFlow limited to `--threads` intra-op
threads (and one inter-op thread, so no extra cores join in), and prints median / p90 over
`--runs` timed runs after warm-up, next to the MACs that `fastscnn_tf.complexity.count_macs` counts.

    python benchmarks/keras_latency.py                          # 512x1024 and 1024x2048, 2 threads
    python benchmarks/keras_latency.py --sizes 256x512 --threads 1 --runs 10
"""

import argparse
import sys
import time

import numpy as np
import tensorflow as tf

from fastscnn_tf.complexity import count_macs, count_params
from fastscnn_tf.geometry import parse_size
from fastscnn_tf.model import FastSCNN


def measure(size, num_classes, runs, warmup):
    model = FastSCNN(num_classes, input_shape=(*size, 3))
    spec = tf.TensorSpec([1, *size, 3], tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, *size, 3)), tf.float32)
    for _ in range(warmup):
        forward(image).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(image).numpy()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "macs": count_macs(model),
        "params": count_params(model),
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(512, 1024), (1024, 2048)])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--num-classes", type=int, default=19)
    args = parser.parse_args(argv)
    # Thread pools are fixed when TensorFlow first runs an op: set them before anything else.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(
        f"Fast-SCNN Keras forward pass, {args.num_classes} classes, {args.threads} intra-op "
        f"threads, TensorFlow {tf.__version__}, median / p90 of {args.runs} runs\n"
    )
    print("| input | GMACs | parameters | median ms | p90 ms | GMAC/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = measure(tuple(size), args.num_classes, args.runs, args.warmup)
        rate = r["macs"] / 1e9 / (r["median_ms"] / 1e3)
        print(
            f"| {size[0]}x{size[1]} | {r['macs'] / 1e9:.3f} | {r['params']:,} | "
            f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {rate:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
