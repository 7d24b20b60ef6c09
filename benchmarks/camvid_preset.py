"""Build the shipped CamVid preset from a finished training run, measure it, write its card.

    python benchmarks/camvid_preset.py --run runs/preset/camvid

Steps, each through the `fastscnn` command a user would run:
1. the run's `best.keras` (selected on val mIoU during training) becomes `camvid.keras`;
2. `fastscnn export` writes the int8 model (uint8 360x480 image in, class mask out),
   calibrated on CamVid train images;
3. `fastscnn evaluate --model camvid` and `--model camvid:int8` on CamVid val;
4. `fastscnn benchmark camvid:int8` for latency (1, 2 and 4 threads);
5. `preset.json` and `MODEL_CARD.md` are written from those figures, and the Kotlin core's
   golden vectors are refreshed from the int8 model (the app's assets link to it).
Prints the figures; the run folder itself is never copied (only the files above).
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")
PRESET = os.path.join(ROOT, "fastscnn_tf", "presets", "camvid")
SIZE = (360, 480)
GOLDEN_IMAGE = "0016E5_08017.jpg"


def fastscnn(*args):
    """Run the `fastscnn` command of this checkout's venv; its output goes to ours."""
    command = [os.path.join(os.path.dirname(sys.executable), "fastscnn"), *map(str, args)]
    print("$ fastscnn " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def evaluate(model, out):
    fastscnn("evaluate", "--model", model, "--dataset", f"folder:{CAMVID}", "--split", "val",
             "--out", out)  # fmt: skip
    with open(os.path.join(out, f"{model.replace(':', '_')}.val.eval.json"), encoding="utf-8") as f:
        return json.load(f)


def latency(out):
    fastscnn("benchmark", "camvid:int8", "--threads", 1, 2, 4, "--runs", 30, "--no-keras",
             "--images", os.path.join(CAMVID, "val"), "--output-dir", out)  # fmt: skip
    with open(os.path.join(out, "benchmark.json"), encoding="utf-8") as f:
        return json.load(f)


def training_time(run):
    """(steps, seconds) of the run, from its per-epoch log."""
    with open(os.path.join(run, "log.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return int(float(rows[-1]["step"])), sum(float(r["epoch_seconds"]) for r in rows)


def command_of(config):
    """The `fastscnn train` command line that reproduces `config` (the run's config.json)."""
    flags = [
        "--dataset", "folder:../shared/data/camvid", "--out", "runs/preset/camvid",
        "--epochs", config["epochs"], "--steps-per-epoch", config["steps_per_epoch"],
        "--batch-size", config["batch_size"], "--crop", "x".join(map(str, config["crop"])),
        "--no-colour-jitter" if not config["colour_jitter"] else "--colour-jitter",
        "--aux2" if config["aux2"] else "--no-aux2",
        "--ohem" if config["ohem"] else "--no-ohem",
        "--scale-range", ",".join(str(v) for v in config["scale_range"]),
        "--val-batch-size", config["val_batch_size"], "--seed", config["seed"],
    ]  # fmt: skip
    return "fastscnn train " + " ".join(map(str, flags))


def class_rows(float_report, int8_report):
    rows = []
    for f, q in zip(float_report["classes"], int8_report["classes"], strict=True):
        rows.append(f"| {f['name']} | {100 * f['iou']:.1f} | {100 * q['iou']:.1f} |")
    return "\n".join(rows)


def latency_rows(bench):
    rows = []
    for row in bench["results"]:
        if row.get("kind") == "tflite" or row.get("format") == "tflite":
            rows.append(f"| {row['threads']} | {row['median_ms']:.1f} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/preset/camvid", help="finished training run")
    parser.add_argument(
        "--golden",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also refresh the Kotlin golden vectors",
    )
    args = parser.parse_args(argv)
    run = os.path.join(ROOT, args.run)
    for name in ("best.keras", "best.json", "config.json", "labels.txt", "log.csv"):
        if not os.path.isfile(os.path.join(run, name)):
            parser.error(f"--run {args.run}: no {name} in it (is the run finished?)")
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(run, "best.json"), encoding="utf-8") as f:
        best = json.load(f)

    os.makedirs(PRESET, exist_ok=True)
    shutil.copyfile(os.path.join(run, "best.keras"), os.path.join(PRESET, "camvid.keras"))
    shutil.copyfile(os.path.join(run, "labels.txt"), os.path.join(PRESET, "labels.txt"))
    shutil.copyfile(os.path.join(run, "config.json"), os.path.join(PRESET, "config.json"))
    h, w = SIZE
    fastscnn("export", os.path.join(PRESET, "camvid.keras"), "--size", f"{h}x{w}",
             "--precision", "int8", "--calibration-dataset", f"folder:{CAMVID}",
             "--output", os.path.join(PRESET, "camvid_int8.tflite"))  # fmt: skip
    info = {
        "description": "Fast-SCNN trained on CamVid street scenes (11 classes)",
        "num_classes": 11,
        "input_size": [h, w],
        "files": {"float": "camvid.keras", "int8": "camvid_int8.tflite"},
        "metric": "CamVid val mIoU (101 images, 360x480)",
        "float": 0.0,
        "int8": 0.0,
    }
    with open(os.path.join(PRESET, "preset.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)  # provisional: the evaluations below read the preset

    with tempfile.TemporaryDirectory() as scratch:
        float_report = evaluate("camvid", scratch)
        int8_report = evaluate("camvid:int8", scratch)
        bench = latency(os.path.join(scratch, "bench"))
    info["float"] = round(100 * float_report["miou"], 2)
    info["int8"] = round(100 * int8_report["miou"], 2)
    with open(os.path.join(PRESET, "preset.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    steps, seconds = training_time(run)
    card = CARD.format(
        command=command_of(config),
        steps=steps,
        hours=seconds / 3600,
        best_epoch=best["epoch"],
        epochs=config["epochs"],
        best_step=best["epoch"] * config["steps_per_epoch"],
        float_miou=info["float"],
        int8_miou=info["int8"],
        float_acc=100 * float_report["pixel_accuracy"],
        int8_acc=100 * int8_report["pixel_accuracy"],
        classes=class_rows(float_report, int8_report),
        latency=latency_rows(bench),
        size_keras=os.path.getsize(os.path.join(PRESET, "camvid.keras")) / 1e6,
        size_int8=os.path.getsize(os.path.join(PRESET, "camvid_int8.tflite")) / 1e6,
    )
    with open(os.path.join(PRESET, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(f"preset written to {PRESET}: val mIoU float {info['float']:.2f}, "
          f"int8 {info['int8']:.2f} ({info['int8'] - info['float']:+.2f})")  # fmt: skip

    if args.golden:
        # The app's assets are committed links to the preset's files: nothing to copy.
        from fastscnn_tf.cli import android

        golden = os.path.join(ROOT, android.GOLDEN_DIR)
        android.make_golden(
            os.path.join(PRESET, "camvid_int8.tflite"),
            os.path.join(PRESET, "samples", GOLDEN_IMAGE),
            golden,
            frame_size=(90, 120),
            model_ref=os.path.relpath(os.path.join(PRESET, "camvid_int8.tflite"), ROOT),
        )
        print(f"golden vectors for the Kotlin core rewritten in {golden}")
    return 0


CARD = """\
# Model card: Fast-SCNN, CamVid preset (`camvid`)

Fast-SCNN (Poudel, Liwicki, Cipolla, BMVC 2019) trained here on CamVid street scenes, shipped in
the package: `FastSCNN.from_preset("camvid")`, `--model camvid` (float) or `--model camvid:int8`
in every command. Written by `python benchmarks/camvid_preset.py`, which measured every figure
below on a 2-core CPU (AMD EPYC, AVX-512 VNNI).

## Files

| file | what | size |
|---|---|---:|
| `camvid.keras` | float32 Keras, RGB in [0, 255], any size | {size_keras:.1f} MB |
| `camvid_int8.tflite` | int8: uint8 RGB 360x480 in, uint8 class mask out | {size_int8:.1f} MB |
| `labels.txt` | the 11 class names and display colours | |
| `config.json` | the training run's full configuration | |
| `samples/` | four CamVid val photos for the demo (see Data) | |

## Data

CamVid (Brostow, Fauqueur, Cipolla, "Semantic object classes in video: a high-definition
ground truth database", Pattern Recognition Letters 2009), in SegNet's 11-class layout at
360x480: trained on the 367 train images, selected on the 101 val images. The 233 test
images are held out for independent evaluation: not in this checkout, never used. CamVid is
for research use; the four photos in `samples/` are val images of that set, shipped
unchanged (JPEG) with this attribution.

## Training

    {command}

Fast-SCNN from scratch (no ImageNet pre-training), 2 aux heads (weight 0.4), OHEM (threshold
0.7, at least 100k pixels), random scale 0.75-1.5 with antialiased downscaling, 320x320 crops,
flips, no colour jitter, SGD momentum 0.9, lr 0.045 poly 0.9, weight decay 4e-5, batch 8.
{steps} steps ({epochs} epochs), {hours:.1f} h of wall time on the 2-core CPU including the
validation passes. Shipped: the best epoch on val ({best_epoch} of {epochs}, step {best_step}).

## Accuracy (CamVid val, 101 images at 360x480, void ignored)

    fastscnn evaluate --model camvid --dataset folder:../shared/data/camvid --split val
    fastscnn evaluate --model camvid:int8 --dataset folder:../shared/data/camvid --split val

| | float (`camvid`) | int8 (`camvid:int8`) |
|---|---:|---:|
| **mIoU** | **{float_miou:.2f}** | **{int8_miou:.2f}** |
| pixel accuracy | {float_acc:.2f} | {int8_acc:.2f} |

Per-class IoU (%):

| class | float | int8 |
|---|---:|---:|
{classes}

## Latency of the int8 model (360x480, LiteRT with XNNPACK, this 2-core CPU)

On the first CamVid val photo (the exact mask head's cost follows the scene).

    fastscnn benchmark camvid:int8 --threads 1 2 4 --runs 30 --no-keras \\
        --images ../shared/data/camvid/val

| threads | median ms |
|---:|---:|
{latency}

## Known limits

- Thin and rare classes are weak (see the table: pole, sign, bicyclist, fence): they cover few
  pixels in 367 training images and Fast-SCNN's 1/8-resolution classifier blurs them.
- CamVid is one city (Cambridge, UK), daylight, one camera height: expect lower accuracy on
  other cities, night, rain or other viewpoints. Fine-tune on your own data with
  `fastscnn train --init-from camvid ...`.
- Accuracy was selected on val; no held-out test figure is given here.
"""

if __name__ == "__main__":
    sys.exit(main())
