"""The CamVid side-by-side protocol: the project and the PyTorch reference, same recipe, same data.

Protocol (both sides): CamVid train (367 images), random scale 0.5-2.0, random 320x320 crop
(mask padded with void), horizontal flip, batch 8, SGD momentum 0.9, lr 0.045 poly 0.9 over
all steps, weight decay 4e-5, one aux head at weight 0.4, cross-entropy ignoring void (11),
30 epochs of 45 steps (1,350 steps). Both are evaluated on the 101 val images at 360x480
(padded to 384x480 and cropped back) with the same numpy confusion matrix. Val is all from
sequence 0016E5, which gives 204 train frames too; `--holdout 0006R0` trains both sides without
that train sequence and evaluates them on it, a street neither has seen.

    python benchmarks/camvid_protocol.py                      # both sides, seeds 0 and 1
    python benchmarks/camvid_protocol.py --side project --seeds 0
    python benchmarks/camvid_protocol.py --side project --tag best -- --aux2 --ohem
    python benchmarks/camvid_protocol.py --ablate --seeds 0 1   # padded vs unpadded, BN variance
    python benchmarks/camvid_protocol.py --holdout 0006R0         # both sides, 0006R0 held out

Project side: `fastscnn train` with the protocol's flags (plus any after `--`), in a run folder
under `--out` that resumes if killed and is only evaluated if already finished. Reference side:
the PyTorch rewrite in `fastscnn_tf.torch_reference` trained by the reference's own loop (PIL
augmentation as the reference's data set class does it: BILINEAR image, NEAREST mask, pad,
crop, flip; `CrossEntropyLoss(ignore_index)`; `SGD(weight_decay=)` on every parameter; poly lr
per iteration). Prints val mIoU, per-class IoU and training wall time of each run and the mean
over seeds, and writes them to `--out/protocol.json`.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).parent
CAMVID = HERE.parent.parent / "shared" / "data" / "camvid"
CLASSES = ("sky building pole road sidewalk tree sign fence car pedestrian bicyclist").split()
VOID = 11
NUM_CLASSES = len(CLASSES)
EPOCHS, STEPS, BATCH, CROP = 30, 45, 8, 320
LR, MOMENTUM, WEIGHT_DECAY, POWER, AUX_WEIGHT = 0.045, 0.9, 4e-5, 0.9, 0.4
MEAN, STD = np.array((0.485, 0.456, 0.406)), np.array((0.229, 0.224, 0.225))


def confusion(labels, predictions, num_classes=NUM_CLASSES, ignore=VOID):
    keep = labels != ignore
    index = labels[keep].astype(np.int64) * num_classes + predictions[keep]
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou(matrix):
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = tp / union
    return per_class, float(np.nanmean(per_class))


def pairs(root, split):
    images = sorted((root / split).glob("*.jpg"))
    return [(p, root / f"{split}annot" / f"{p.stem}.png") for p in images]


def protocol_pairs(root, holdout=None):
    """(training pairs, evaluation pairs): train and val, or with `holdout` (a sequence's
    file-name prefix, e.g. 0006R0) train without that sequence and that sequence, as the
    project's `--split 'train[-0006R0]' --val-split 'train[0006R0]'` select them."""
    train = pairs(root, "train")
    if not holdout:
        return train, pairs(root, "val")
    held = [pair for pair in train if pair[0].name.startswith(holdout)]
    if not held:
        raise ValueError(f"--holdout {holdout}: no train image of {root} starts with it.")
    return [pair for pair in train if pair not in held], held


def splits(holdout=None):
    """The project's training and evaluation split expressions of `protocol_pairs`."""
    return (f"train[-{holdout}]", f"train[{holdout}]") if holdout else ("train", "val")


# --- project side ----------------------------------------------------------------------------


def project_command(out, seed, extra, holdout=None):
    train, val = splits(holdout)
    return [
        sys.executable, "-m", "fastscnn_tf.cli", "train",
        "--dataset", f"folder:{CAMVID}", "--split", train, "--val-split", val, "--out", str(out),
        "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS), "--batch-size", str(BATCH),
        "--crop", f"{CROP}x{CROP}", "--no-aux2", "--no-colour-jitter", "--val-batch-size", "4",
        "--seed", str(seed), "--verbose", "2", *extra,
    ]  # fmt: skip


def run_project(out, seed, extra, holdout=None):
    model = out / "model.keras"
    if not model.exists():
        subprocess.run(project_command(out, seed, extra, holdout), check=True)
    summary = json.loads((out / "summary.json").read_text())
    # `fastscnn evaluate`'s own code: TensorFlow decodes the JPEGs as in training.
    from fastscnn_tf import data, evaluation
    from fastscnn_tf.runtime import load_runtime

    source = data.load_source(f"folder:{CAMVID}", splits(holdout)[1])
    matrix, _ = evaluation.evaluate(load_runtime(str(model)), source)
    return matrix, summary["seconds_this_session"]


def ablations(model_path, holdout=None):
    """mIoU (val, or the held-out sequence) of a finished project model as trained (padded
    to a multiple of 32), run at 360x480 unpadded (`align=0`), and with the pyramid-pooling
    BN variances made unbiased (x n/(n-1), n = batch x bins^2 values per batch, as PyTorch
    stores them)."""
    import keras

    from fastscnn_tf import data, evaluation, metrics
    from fastscnn_tf.model import PPM_BINS, FastSCNN
    from fastscnn_tf.runtime import KerasRuntime

    source = data.load_source(f"folder:{CAMVID}", splits(holdout)[1])
    trained = keras.models.load_model(model_path, compile=False)
    unpadded = FastSCNN(NUM_CLASSES, align=0)
    unpadded.set_weights(trained.get_weights())
    unbiased = FastSCNN(NUM_CLASSES)
    unbiased.set_weights(trained.get_weights())
    for bins in PPM_BINS:
        bn = unbiased.get_layer(f"gfe_ppm_bin{bins}_conv_bn")
        gamma, beta, mean, variance = bn.get_weights()
        n = BATCH * bins * bins
        bn.set_weights([gamma, beta, mean, variance * n / (n - 1)])
    result = {}
    for name, net in (("padded", trained), ("unpadded", unpadded), ("unbiased BN", unbiased)):
        matrix, _ = evaluation.evaluate(KerasRuntime(str(model_path), model=net), source)
        result[name] = metrics.scores(matrix)["miou"]
    return result


# --- reference side --------------------------------------------------------------------------


def reference_sample(rng, image, mask):
    """The reference data set's `_sync_transform` with the protocol's numbers: flip, scale
    s ~ U(0.5, 2) of the image (PIL BILINEAR / NEAREST), pad (image 0, mask void), crop."""
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
        mask = mask.transpose(Image.FLIP_LEFT_RIGHT)
    scale = rng.uniform(0.5, 2.0)
    w, h = image.size
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = np.asarray(image.resize(size, Image.BILINEAR), np.float32)
    mask = np.asarray(mask.resize(size, Image.NEAREST), np.int64)
    ph, pw = max(CROP - size[1], 0), max(CROP - size[0], 0)
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
    mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=VOID)
    top = rng.integers(0, image.shape[0] - CROP + 1)
    left = rng.integers(0, image.shape[1] - CROP + 1)
    return image[top : top + CROP, left : left + CROP], mask[top : top + CROP, left : left + CROP]


def to_tensor(images):
    import torch

    x = (np.asarray(images, np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def train_reference(seed, threads, epochs=EPOCHS, holdout=None):
    """The reference's model trained by its own loop; returns it and the training seconds.
    Prints a line at the end of each epoch (benchmarks/train_end_to_end.py times them)."""
    import torch
    import torch.nn.functional as F

    from fastscnn_tf import torch_reference

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    model = torch_reference.FastSCNN(len(CLASSES), aux=True)
    total = epochs * STEPS
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    train_pairs = protocol_pairs(CAMVID, holdout)[0]
    train = [(Image.open(i).convert("RGB"), Image.open(m)) for i, m in train_pairs]
    for image, mask in train:
        image.load(), mask.load()
    model.train()
    start, step = time.perf_counter(), 0
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for b in range(STEPS):
            picks = order[(b * BATCH) % len(train) :][:BATCH]
            if len(picks) < BATCH:
                picks = np.concatenate([picks, order[: BATCH - len(picks)]])
            batch = [reference_sample(rng, *train[i]) for i in picks]
            x = to_tensor([s[0] for s in batch])
            y = torch.from_numpy(np.stack([s[1] for s in batch]))
            for group in optimizer.param_groups:
                group["lr"] = LR * (1 - step / total) ** POWER
            main, aux = model(x)
            loss = F.cross_entropy(main, y, ignore_index=VOID)
            loss = loss + AUX_WEIGHT * F.cross_entropy(aux, y, ignore_index=VOID)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        print(
            f"reference seed {seed}: epoch {step // STEPS}/{epochs}, loss {float(loss):.4f}",
            flush=True,
        )
    return model, time.perf_counter() - start


def run_reference(seed, threads, holdout=None):
    import torch

    model, seconds = train_reference(seed, threads, holdout=holdout)
    model.eval()
    matrix = np.zeros((len(CLASSES),) * 2, np.int64)
    with torch.inference_mode():
        for image_path, mask_path in protocol_pairs(CAMVID, holdout)[1]:
            image = np.asarray(Image.open(image_path).convert("RGB"), np.float32)
            h, w = image.shape[:2]
            # The reference upsamples its 1/32 map by a fixed 4: pad to a multiple of 32, with
            # black as its training crops are padded (as the project's model pads itself).
            x = to_tensor(np.pad(image, ((0, (-h) % 32), (0, (-w) % 32), (0, 0)))[None])
            logits = model(x)[0][0, :, :h, :w]
            matrix += confusion(np.asarray(Image.open(mask_path)), logits.argmax(0).numpy())
    return matrix, seconds


# --- report ----------------------------------------------------------------------------------


def report(results):
    width = 11
    head = f"{'run':<28}{'mIoU':>7}{'train s':>9}  " + "".join(
        f"{c[: width - 1]:>{width}}" for c in CLASSES
    )
    print(head)
    for name, result in results.items():
        cells = "".join(f"{v * 100:>{width}.1f}" for v in result["iou"])
        print(f"{name:<28}{result['miou'] * 100:>7.2f}{result['seconds']:>9.0f}  {cells}")
    sides = {}
    for name, result in results.items():
        sides.setdefault(name.rsplit(" seed", 1)[0], []).append(result["miou"])
    for side, values in sides.items():
        print(f"mean {side}: {np.mean(values) * 100:.2f} over {len(values)} seed(s)")


def split_passthrough(argv):
    """(the script's own arguments, those after `--`, which go to `fastscnn train`)."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def main():
    argv, extra = split_passthrough(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=("both", "project", "reference"), default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="runs/protocol", help="run folders and protocol.json")
    parser.add_argument("--tag", default="same", help="name of the project runs (recipe)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument(
        "--holdout",
        metavar="SEQ",
        help="train without the train sequence SEQ (file-name prefix, e.g. 0006R0) and evaluate "
        "on it instead of val",
    )
    parser.add_argument(
        "--train-only",
        type=int,
        metavar="EPOCHS",
        help="reference side only: train this many epochs, printing each, and stop (timing)",
    )
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="only evaluate finished project runs padded, unpadded and with unbiased BN",
    )
    args = parser.parse_args(argv)
    if not CAMVID.is_dir():
        print(f"error: {CAMVID} not found (the shared CamVid data)", file=sys.stderr)
        return 2
    holdout = args.holdout
    try:
        protocol_pairs(CAMVID, holdout)  # an unknown sequence fails now, not after training
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.train_only:
        for seed in args.seeds:
            train_reference(seed, args.threads, args.train_only, holdout)
        return 0
    out = pathlib.Path(args.out)

    def folder(seed):
        return out / (f"{args.tag}_{holdout}_s{seed}" if holdout else f"{args.tag}_s{seed}")

    if args.ablate:
        for seed in args.seeds:
            model = folder(seed) / "model.keras"
            scores = ablations(model, holdout)
            print(f"{model}: " + ", ".join(f"{k} {v * 100:.2f}" for k, v in scores.items()))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    record = out / "protocol.json"
    results = {}
    on = f" on {holdout}" if holdout else ""  # results of another split never mix
    for seed in args.seeds:
        runs = []
        if args.side in ("both", "reference"):
            runs.append(
                (
                    f"reference{on} seed {seed}",
                    lambda s=seed: run_reference(s, args.threads, holdout),
                )
            )
        if args.side in ("both", "project"):
            runs.append(
                (
                    f"project {args.tag}{on} seed {seed}",
                    lambda s=seed: run_project(folder(s), s, extra, holdout),
                )
            )
        for name, job in runs:
            matrix, seconds = job()
            per_class, miou = iou(matrix)
            # Re-read: runs of other seeds or recipes may have finished meanwhile.
            results = json.loads(record.read_text()) if record.exists() else {}
            results[name] = {"miou": miou, "iou": per_class.tolist(), "seconds": seconds}
            if extra and name.startswith("project"):
                results[name]["flags"] = extra
            tmp = record.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(results, indent=2) + "\n")
            os.replace(tmp, record)
    report(json.loads(record.read_text()) if record.exists() else results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
