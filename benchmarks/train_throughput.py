"""Training throughput vs input-pipeline throughput, side by side.

For each crop size: images/s of the tf.data pipeline alone (decode, augment, crop, batch;
`fastscnn_tf.data.make_pipeline` as training uses it) and images/s of training steps fed from
a few cached batches (so that the step alone is timed), their ratio (the pipeline must deliver
at least 3x what a step consumes) and the process's peak RSS so far.

    python benchmarks/train_throughput.py                       # CamVid if ../shared has it
    python benchmarks/train_throughput.py --dataset synthetic --sizes 320x320 512x512

Figures on a shared machine are noisy; the ratio, measured in one run, is the robust number.
"""

import argparse
import os
import resource
import time

import tensorflow as tf

from fastscnn_tf import data
from fastscnn_tf.config import parse_size
from fastscnn_tf.train import TrainConfig, build_training_model, output_names, targets

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def pipeline(source, size, batch_size):
    return data.make_pipeline(
        source, batch_size=batch_size, crop=size, augment=True, shuffle=True, repeat=True
    )


def data_images_per_second(source, size, batch_size, batches):
    iterator = iter(pipeline(source, size, batch_size))
    for _ in range(3):  # warm-up: threads, autotuning, file cache
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def train_images_per_second(source, size, batch_size, steps, jit):
    config = TrainConfig(
        batch_size=batch_size,
        crop=size,
        jit=jit,
        num_classes=source.labels.num_classes,
        ignore_index=source.labels.ignore_index,
    )
    model = build_training_model(config, source.labels.num_classes, total_steps=10 * steps)
    cached = pipeline(source, size, batch_size).take(4).cache().repeat()
    cached = cached.map(targets(output_names(config)))
    model.fit(cached, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(cached, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = f"folder:{os.path.normpath(CAMVID)}" if os.path.isdir(CAMVID) else "synthetic"
    parser.add_argument("--dataset", default=default)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(320, 320), (512, 512)])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per size")
    parser.add_argument("--data-batches", type=int, default=30, help="timed pipeline batches")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    args = parser.parse_args()

    source = data.load_source(args.dataset, "train")
    print(
        f"data: {source.name}; batch {args.batch_size}; {os.cpu_count()} CPUs; "
        f"XLA {'on' if args.jit else 'off'}; TF {tf.__version__}"
    )
    header = (
        f"{'crop':>9} {'tf.data img/s':>14} {'train img/s':>12} {'ratio':>7} {'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        data_ips = data_images_per_second(source, size, args.batch_size, args.data_batches)
        train_ips = train_images_per_second(source, size, args.batch_size, args.steps, args.jit)
        ratio = data_ips / train_ips
        print(
            f"{size[0]:>4}x{size[1]:<4} {data_ips:>14.1f} {train_ips:>12.2f} {ratio:>6.1f}x "
            f"{peak_rss_mib():>13.0f}" + ("" if ratio >= 3 else "   < 3x: input-bound")
        )


if __name__ == "__main__":
    main()
