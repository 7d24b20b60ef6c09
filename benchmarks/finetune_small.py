"""Fine-tuning from the CamVid preset against training from scratch, on a small custom set.

    python benchmarks/finetune_small.py            # 300 steps each side
    python benchmarks/finetune_small.py --steps 600

The custom set is made from CamVid's *val* sequence, which the preset never trained on (it was
only used to pick the preset's best epoch): its first 40 frames are the training set, the last
61 the evaluation set (contiguous, so neighbouring near-duplicate frames do not straddle the
split), relabelled into 6 coarse classes (sky, structure, tree, road, sidewalk, road user), a
class count other than the preset's 11, so `--init-from camvid` re-initialises the classifier.
Both sides run the same `fastscnn train` flags and budget; only `--init-from camvid` differs.
Prints the held-out mIoU and per-class IoU of both and writes `--out`/finetune.json.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")
TRAIN_FRAMES = 40
# CamVid class index -> coarse class; void (11) -> 255 (ignored).
COARSE = {0: 0, 1: 1, 2: 1, 6: 1, 7: 1, 5: 2, 3: 3, 4: 4, 8: 5, 9: 5, 10: 5}
COARSE_LABELS = [
    ("sky", "#808080"), ("structure", "#800000"), ("tree", "#808000"),
    ("road", "#804080"), ("sidewalk", "#3C28DE"), ("road_user", "#400080"),
]  # fmt: skip


def coarse_mask(mask):
    table = np.full(256, 255, np.uint8)
    for fine, coarse in COARSE.items():
        table[fine] = coarse
    return table[mask]


def make_custom_set(out):
    """CamVid val frames -> `out`/{train,val}{,annot} with coarse masks and a labels.txt."""
    if os.path.isfile(os.path.join(out, "labels.txt")):
        return out
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(CAMVID, "val")))
    splits = {"train": stems[:TRAIN_FRAMES], "val": stems[TRAIN_FRAMES:]}
    for split, names in splits.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        os.makedirs(os.path.join(out, split + "annot"), exist_ok=True)
        for stem in names:
            Image.open(os.path.join(CAMVID, "val", stem + ".jpg")).save(
                os.path.join(out, split, stem + ".png")
            )
            mask = np.asarray(Image.open(os.path.join(CAMVID, "valannot", stem + ".png")))
            Image.fromarray(coarse_mask(mask)).save(
                os.path.join(out, split + "annot", stem + ".png")
            )
    lines = "".join(f"{name}\t{colour}\n" for name, colour in COARSE_LABELS)
    with open(os.path.join(out, "labels.txt"), "w", encoding="utf-8") as f:
        f.write(lines)  # written last: its presence marks a complete set
    return out


def fastscnn(*args):
    command = [os.path.join(os.path.dirname(sys.executable), "fastscnn"), *map(str, args)]
    print("$ fastscnn " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def train_and_evaluate(data, out, steps, init_from):
    epochs = 5
    flags = [
        "--dataset", f"folder:{data}", "--out", out, "--epochs", epochs,
        "--steps-per-epoch", steps // epochs, "--batch-size", 8, "--crop", "320x320",
        "--no-colour-jitter", "--val-batch-size", 4, "--verbose", 2,
    ]  # fmt: skip
    if init_from:
        flags += ["--init-from", init_from]
    if not os.path.isfile(os.path.join(out, "model.keras")):
        fastscnn("train", *flags)
    fastscnn("evaluate", "--model", os.path.join(out, "model.keras"), "--dataset",
             f"folder:{data}", "--split", "val")  # fmt: skip
    with open(os.path.join(out, "model.val.eval.json"), encoding="utf-8") as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps of each side")
    parser.add_argument("--out", default="runs/finetune", help="data, run folders, results")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(CAMVID, "val")):
        parser.error(f"CamVid not found at {CAMVID}")
    out = os.path.join(ROOT, args.out)
    data = make_custom_set(os.path.join(out, "data"))
    results = {
        side: train_and_evaluate(
            data,
            os.path.join(out, f"{side}_{args.steps}"),
            args.steps,
            "camvid" if side == "preset" else None,
        )  # fmt: skip
        for side in ("scratch", "preset")
    }
    names = [c["name"] for c in results["scratch"]["classes"]]
    print(f"\nheld-out mIoU, {len(results['scratch']['classes'])} classes, "
          f"{results['scratch']['images']} frames, {args.steps} steps of batch 8:")  # fmt: skip
    print("| start | mIoU | " + " | ".join(names) + " |")
    for side, label in (("scratch", "from scratch"), ("preset", "--init-from camvid")):
        report = results[side]
        ious = " | ".join(f"{100 * c['iou']:.1f}" for c in report["classes"])
        print(f"| {label} | {100 * report['miou']:.2f} | {ious} |")
    summary = {side: {"miou": r["miou"], "classes": r["classes"]} for side, r in results.items()}
    with open(os.path.join(out, "finetune.json"), "w", encoding="utf-8") as f:
        json.dump({"steps": args.steps, **summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
