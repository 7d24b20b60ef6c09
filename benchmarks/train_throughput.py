"""Training throughput of the project against the PyTorch reference, side by side in one run.

Each side trains the protocol's model (one aux head, batch 8, SGD momentum 0.9 with weight decay,
poly lr) on the same few cached batches, so that the training step alone is timed; rounds of
`--steps` steps alternate between the sides, so both see the same load on a shared machine.
Prints images/s (median over rounds) of each side and their ratio; also the tf.data pipeline's
images/s (it must deliver well above what a step consumes) and the process's peak RSS.

    python benchmarks/train_throughput.py                       # CamVid if ../shared has it
    python benchmarks/train_throughput.py --dataset synthetic --sizes 320x320 --rounds 3
    python benchmarks/train_throughput.py --variants fit no-metrics bf16

Keras variants: `fit` is `fastscnn train`'s step as it runs by default (with its training
mIoU and pixel accuracy); `no-metrics` leaves those out; `bf16` is `--mixed-precision`;
`keras-bn` builds the network with Keras' own `BatchNormalization` instead of the fused
`fastscnn_tf.layers.BatchNorm` (the same weights), to show what the fused kernel saves.
"""

import argparse
import os
import resource
import statistics
import time

import numpy as np

from fastscnn_tf.geometry import parse_size

HERE = os.path.dirname(os.path.abspath(__file__))
CAMVID = os.path.join(HERE, "..", "..", "shared", "data", "camvid")
VARIANTS = ("fit", "no-metrics", "bf16", "keras-bn")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def pipeline(source, size, batch_size):
    """The training pipeline as `fastscnn train` builds it (decode, augment, crop, batch)."""
    from fastscnn_tf import data

    return data.make_pipeline(
        source, batch_size=batch_size, crop=size, augment=True, shuffle=True, repeat=True
    )


def cached_batches(source, size, batch_size, count=4):
    return [(x.numpy(), y.numpy()) for x, y in pipeline(source, size, batch_size).take(count)]


def data_images_per_second(source, size, batch_size, batches):
    iterator = iter(pipeline(source, size, batch_size))
    for _ in range(3):  # warm-up: threads, autotuning, file cache
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


class KerasSide:
    """`fastscnn train`'s compiled model stepped by `model.fit` over cached batches."""

    def __init__(self, batches, num_classes, ignore_index, variant):
        import keras
        import tensorflow as tf

        from fastscnn_tf import model as model_lib
        from fastscnn_tf import training

        keras.config.set_dtype_policy("mixed_bfloat16" if variant == "bf16" else "float32")
        fused = model_lib.BatchNorm
        if variant == "keras-bn":
            model_lib.BatchNorm = keras.layers.BatchNormalization
        try:
            model = model_lib.FastSCNN(num_classes, aux=True)
            recipe = training.Recipe(ignore_index=ignore_index)
            self.model = training.compile(model, recipe, total_steps=100_000)
        finally:
            model_lib.BatchNorm = fused
        if variant == "no-metrics":
            self.model.compile(
                self.model.optimizer,
                loss=self.model.loss,
                loss_weights=self.model._compile_loss._user_loss_weights,
            )
        keras.config.set_dtype_policy("float32")
        names = self.model.output_names
        images = np.stack([b[0] for b in batches])
        masks = np.stack([b[1] for b in batches])
        ds = tf.data.Dataset.from_tensor_slices((images, masks)).repeat()
        self.data = ds.map(lambda x, y: (x, {name: y for name in names})).prefetch(2)
        self.batch = len(batches[0][0])
        self.run(2)  # trace and warm up

    def run(self, steps):
        self.model.fit(self.data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)


class TorchSide:
    """The reference's training loop (see camvid_protocol.py) over the same cached batches."""

    def __init__(self, batches, num_classes, ignore_index, threads):
        import torch

        from fastscnn_tf import torch_reference

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch_reference.FastSCNN(num_classes, aux=True).train()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.045, momentum=0.9, weight_decay=4e-5
        )
        self.batches = [
            (torch_reference.normalize(x), torch.from_numpy(y).long()) for x, y in batches
        ]
        self.ignore_index, self.batch, self.step = ignore_index, len(batches[0][0]), 0
        self.run(2)

    def run(self, steps):
        F = self.torch.nn.functional
        for _ in range(steps):
            x, y = self.batches[self.step % len(self.batches)]
            main, aux = self.model(x)
            loss = F.cross_entropy(main, y, ignore_index=self.ignore_index)
            loss = loss + 0.4 * F.cross_entropy(aux, y, ignore_index=self.ignore_index)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = f"folder:{os.path.normpath(CAMVID)}" if os.path.isdir(CAMVID) else "synthetic"
    parser.add_argument("--dataset", default=default)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(320, 320)])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per side")
    parser.add_argument("--threads", type=int, default=2, help="threads of each side")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fit"])
    parser.add_argument("--data-batches", type=int, default=30, help="timed pipeline batches")
    parser.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (0: TF's)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args()

    import tensorflow as tf

    from fastscnn_tf import data

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    source = data.load_source(args.dataset, "train")
    labels = source.labels
    print(
        f"data: {source.name}; batch {args.batch_size}; {args.threads} threads each; "
        f"{args.rounds} alternating rounds of {args.steps} steps; TF {tf.__version__}"
    )
    for size in args.sizes:
        batches = cached_batches(source, size, args.batch_size)
        sides = {
            f"keras {v}": KerasSide(batches, labels.num_classes, labels.ignore_index, v)
            for v in args.variants
        }
        if not args.no_torch:
            sides["reference pytorch"] = TorchSide(
                batches, labels.num_classes, labels.ignore_index, args.threads
            )
        rates = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, side in sides.items():
                start = time.perf_counter()
                side.run(args.steps)
                rates[name].append(args.steps * side.batch / (time.perf_counter() - start))
        data_ips = data_images_per_second(source, size, args.batch_size, args.data_batches)
        print(f"crop {size[0]}x{size[1]}: tf.data pipeline {data_ips:.1f} img/s")
        for name, values in rates.items():
            line = f"  {name:<20} {statistics.median(values):6.2f} img/s (median of rounds)"
            if "reference pytorch" in rates and name != "reference pytorch":
                ratios = [a / b for a, b in zip(values, rates["reference pytorch"], strict=True)]
                line += f"   x{statistics.median(ratios):.2f} the reference (median pairwise)"
            print(line)
        print(f"  peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
