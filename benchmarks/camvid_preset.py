"""Ship the CamVid preset from one campaign cycle, measure it, write its card (issue #22).

    python benchmarks/camvid_preset.py --run runs/campaign/preset \
        --holdout-run runs/campaign/holdout

`--run` trained on CamVid train+val; `--holdout-run` is the same recipe and budget trained
without sequence 0006R0, the only honest figure for new streets that this checkout can give
(val is all from 0016E5, a training sequence). Steps, each through the `fastscnn` command a
user would run:
1. the run's last checkpoint, `model.keras`, becomes `camvid.keras` (nothing is selected on
   any image: every epoch's val score is from frames it trains on); the held-out run's last
   checkpoint is kept in `campaign/` for the next cycle to start from;
2. `fastscnn export` writes both int8 models (uint8 image in at `--size`, class mask out),
   calibrated on CamVid train images (the held-out model's without 0006R0); with `--scale 2
   --size 720x960` (a campaign trained with `--scale-range 1.0,4.0`) the float preset reads
   images at 2x (`preset.json` `"scale"`), and every float figure is measured so;
3. `fastscnn evaluate`: the held-out model, float and int8, on 0006R0 (never seen), and the
   float model with test-time augmentation (`--scales 1,1.25,1.5,2 --flip`); the preset,
   float and int8, on val (seen in training: a fidelity check of the int8 export only);
4. `fastscnn benchmark camvid:int8` for latency (1, 2 and 4 threads);
5. `preset.json`, `campaign.json` (one entry per cycle) and `MODEL_CARD.md` are written, and
   `fastscnn android-golden` refreshes the Kotlin core's golden vectors from the int8 model.
The run folders themselves are never copied (only the files above).
"""

import argparse
import csv
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from train_end_to_end import cpu_family

from fastscnn_tf.files import write_text_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")
PRESET = os.path.join(ROOT, "fastscnn_tf", "presets", "camvid")
CAMPAIGN = os.path.join(PRESET, "campaign")
HOLDOUT_MODEL = os.path.join(CAMPAIGN, "holdout-0006R0.keras")
HOLDOUT = "0006R0"
SIZE = (360, 480)
GOLDEN_IMAGE = "0016E5_08017.jpg"
CLASS_HEAD = "sky bldg pole road sidew. tree sign fence car ped. bicyc.".split()
TTA = ("--scales", "1,1.25,1.5,2", "--flip")  # test-time augmentation (docs/accuracy.md)


def fastscnn(*args):
    """Run the `fastscnn` command of this checkout's venv; its output goes to ours."""
    command = [os.path.join(os.path.dirname(sys.executable), "fastscnn"), *map(str, args)]
    print("$ fastscnn " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def scaled(scales, scale):
    """`--scales` values relative to CamVid's frames, for a model path read as is."""
    return ("--scales", ",".join(f"{scale * v:g}" for v in scales))


def evaluate(model, data, split, out, *flags):
    """`fastscnn evaluate` of `model` on a CamVid split expression (and `flags`): its report
    as a dict."""
    os.makedirs(out)
    fastscnn("evaluate", "--model", model, "--dataset", f"folder:{data}", "--split", split,
             "--out", out, *flags)  # fmt: skip
    (report,) = [f for f in os.listdir(out) if f.endswith(".eval.json")]
    with open(os.path.join(out, report), encoding="utf-8") as f:
        return json.load(f)


def export_int8(model, data, size, output, split="train"):
    h, w = size
    fastscnn("export", model, "--size", f"{h}x{w}", "--precision", "int8",
             "--calibration-dataset", f"folder:{data}", "--calibration-split", split,
             "--output", output)  # fmt: skip


def latency(model, data, out):
    fastscnn("benchmark", model, "--threads", 1, 2, 4, "--runs", 30, "--no-keras",
             "--images", os.path.join(data, "val"), "--output-dir", out)  # fmt: skip
    with open(os.path.join(out, "benchmark.json"), encoding="utf-8") as f:
        return json.load(f)


def training_record(run):
    """The run's config, its last step and the seconds its epochs took (from log.csv)."""
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(run, "log.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return config, int(float(rows[-1]["step"])), sum(float(r["epoch_seconds"]) for r in rows)


def command_of(config, split, val_split):
    """The `fastscnn train` command line that reproduces a run's config.json."""
    flags = [
        "--dataset", "folder:../shared/data/camvid", "--split", f'"{split}"',
        "--val-split", f'"{val_split}"',
        "--epochs", config["epochs"], "--steps-per-epoch", config["steps_per_epoch"],
        "--batch-size", config["batch_size"], "--crop", "x".join(map(str, config["crop"])),
        "--colour-jitter" if config["colour_jitter"] else "--no-colour-jitter",
        "--aux2" if config["aux2"] else "--no-aux2",
        "--ohem" if config["ohem"] else "--no-ohem",
        "--scale-range", ",".join(str(v) for v in config["scale_range"]),
    ]  # fmt: skip
    if config.get("class_weighting"):
        flags += ["--class-weighting", "--class-weights", config["class_weights"],
                  "--class-weight-c", config["class_weight_c"]]  # fmt: skip
    if config.get("init_from"):
        flags += ["--init-from", config["init_from"]]
    flags += ["--val-batch-size", config["val_batch_size"], "--seed", config["seed"]]
    return "fastscnn train " + " ".join(map(str, flags))


def class_rows(reports):
    """Markdown rows: one per (label, report), mIoU then per-class IoU."""
    rows = []
    for label, report in reports:
        ious = " | ".join(f"{100 * c['iou']:.1f}" for c in report["classes"])
        rows.append(f"| {label} | {100 * report['miou']:.2f} | {ious} |")
    return "\n".join(rows)


def latency_rows(bench):
    rows = []
    for row in bench["results"]:
        if row.get("kind") == "tflite" or row.get("format") == "tflite":
            rows.append(f"| {row['threads']} | {row['median_ms']:.1f} |")
    return "\n".join(rows)


def command_option(cycle, flag):
    """The value a cycle's recorded training command gives `flag`."""
    return re.search(rf"{flag} (\S+)", cycle["command"]).group(1)


def cycle_crop(cycle):
    """A cycle's crop, HxW; cycles recorded before the field existed name it in their command."""
    return cycle.get("crop") or command_option(cycle, "--crop")


def campaign_rows(cycles):
    rows = []
    for c in cycles:
        rows.append(
            f"| {c['cycle']} | {c['date']} | {c['init_from'] or 'scratch'} | {c['steps']:,} | "
            f"{cycle_crop(c)} | {c['hours']:.2f} | {c['holdout_hours']:.2f} | "
            f"{c['holdout_float']:.2f} | {c['cpu']} |"
        )
    return "\n".join(rows)


def read_campaign(preset_dir=PRESET):
    path = os.path.join(preset_dir, "campaign.json")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)["cycles"]


def write_json(path, value):
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def check_run(parser, option, run):
    for name in ("model.keras", "config.json", "labels.txt", "log.csv"):
        if not os.path.isfile(os.path.join(run, name)):
            parser.error(f"{option} {run}: no {name} in it (is the run finished?)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="finished train+val run")
    parser.add_argument("--holdout-run", required=True, help=f"the same without {HOLDOUT}")
    parser.add_argument("--cycle", type=int, help="campaign cycle (default: the next one)")
    parser.add_argument("--data", default=CAMVID, help="CamVid folder (SegNet layout)")
    parser.add_argument("--preset-dir", default=PRESET, help="the preset folder written")
    parser.add_argument("--size", default="x".join(map(str, SIZE)), help="int8 input HxW")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the float preset reads images at this scale (2 with --size "
                        "720x960: a campaign trained with --scale-range 1.0,4.0)")  # fmt: skip
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True,
                        help="time the int8 model (fastscnn benchmark)")  # fmt: skip
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the held-out model with " + " ".join(TTA))  # fmt: skip
    parser.add_argument(
        "--golden",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also refresh the Kotlin golden vectors",
    )
    args = parser.parse_args(argv)
    run, holdout_run = (os.path.join(ROOT, r) for r in (args.run, args.holdout_run))
    check_run(parser, "--run", run)
    check_run(parser, "--holdout-run", holdout_run)
    size = tuple(int(v) for v in args.size.split("x"))
    scale = args.scale
    if not scale > 0:
        parser.error(f"--scale {scale}: must be positive")
    # The files are read by path, so their figures take the preset's scale explicitly.
    at_scale = scaled([1], scale) if scale != 1 else ()
    tta_scales = [float(v) for v in TTA[1].split(",")]
    tta_flags = (*scaled(tta_scales, scale), *TTA[2:])
    config, steps, seconds = training_record(run)
    holdout_config, holdout_steps, holdout_seconds = training_record(holdout_run)
    if holdout_steps != steps:
        parser.error(
            f"--holdout-run trained {holdout_steps} steps and --run {steps}: not the same budget"
        )
    preset = os.path.join(ROOT, args.preset_dir)
    cycles = [c for c in read_campaign(preset) if not args.cycle or c["cycle"] < args.cycle]
    cycle = args.cycle or len(cycles) + 1

    keras_path, int8_path = (
        os.path.join(preset, f) for f in ("camvid.keras", "camvid_int8.tflite")
    )
    holdout_model = os.path.join(preset, os.path.relpath(HOLDOUT_MODEL, PRESET))
    os.makedirs(os.path.dirname(holdout_model), exist_ok=True)
    shutil.copyfile(os.path.join(run, "model.keras"), keras_path)
    shutil.copyfile(os.path.join(run, "labels.txt"), os.path.join(preset, "labels.txt"))
    shutil.copyfile(os.path.join(run, "config.json"), os.path.join(preset, "config.json"))
    shutil.copyfile(os.path.join(holdout_run, "model.keras"), holdout_model)
    export_int8(keras_path, args.data, size, int8_path)
    with tempfile.TemporaryDirectory() as scratch:
        holdout_int8 = os.path.join(scratch, "holdout_int8.tflite")
        # Calibrated without the held-out sequence too: not even its pixels are seen.
        export_int8(holdout_model, args.data, size, holdout_int8, f"train[-{HOLDOUT}]+val")
        split = f"train[{HOLDOUT}]"
        new_float = evaluate(
            holdout_model, args.data, split, os.path.join(scratch, "hf"), *at_scale
        )
        new_int8 = evaluate(holdout_int8, args.data, split, os.path.join(scratch, "hq"))
        tta = (
            evaluate(holdout_model, args.data, split, os.path.join(scratch, "ht"), *tta_flags)
            if args.tta
            else None
        )
        val_float = evaluate(keras_path, args.data, "val", os.path.join(scratch, "vf"), *at_scale)
        val_int8 = evaluate(int8_path, args.data, "val", os.path.join(scratch, "vq"))
        bench = latency(int8_path, args.data, os.path.join(scratch, "b")) if args.latency else None
    h, w = size
    info = {
        "description": "Fast-SCNN trained on CamVid street scenes (11 classes)",
        "num_classes": len(new_float["classes"]),
        "input_size": [h, w],
        "files": {"float": "camvid.keras", "int8": "camvid_int8.tflite"},
        "metric": (
            f"CamVid {HOLDOUT} mIoU of the same recipe trained without that sequence "
            "(101 frames never seen, no selection)"
        ),
        "float": round(100 * new_float["miou"], 2),
        "int8": round(100 * new_int8["miou"], 2),
        **({"scale": scale} if scale != 1 else {}),
    }
    write_json(os.path.join(preset, "preset.json"), info)

    cycles.append({
        "cycle": cycle,
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_family(),
        "init_from": config.get("init_from") or "",
        "steps": steps,
        "crop": "x".join(map(str, config["crop"])),
        "hours": round(seconds / 3600, 2),
        "holdout_hours": round(holdout_seconds / 3600, 2),
        "holdout_float": info["float"],
        "holdout_int8": info["int8"],
        **({"scale": scale} if scale != 1 else {}),
        **({"holdout_tta": round(100 * tta["miou"], 2), "tta": " ".join(tta_flags)} if tta else {}),
        "command": command_of(config, config["split"], config["val_split"]),
        "holdout_command": command_of(
            holdout_config, holdout_config["split"], holdout_config["val_split"]
        ),
    })  # fmt: skip
    cycles.sort(key=lambda c: c["cycle"])
    write_json(os.path.join(preset, "campaign.json"), {"cycles": cycles})
    card = CARD.format(
        holdout=HOLDOUT,
        head=" | ".join(CLASS_HEAD),
        rule="|---|---:|" + "---:|" * len(CLASS_HEAD),
        total_steps=sum(c["steps"] for c in cycles),
        total_hours=sum(c["hours"] for c in cycles),
        crops=" then ".join(dict.fromkeys(cycle_crop(c) for c in cycles)),
        crop=cycle_crop(cycles[-1]),
        scale_range="-".join(command_option(cycles[-1], "--scale-range").split(",")),
        campaign=campaign_rows(cycles),
        command=cycles[-1]["command"],
        holdout_command=cycles[-1]["holdout_command"],
        holdout_rows=class_rows(
            [("float", new_float), ("int8", new_int8)]
            + ([(f"float, `{' '.join(TTA)}`", tta)] if tta else [])
        ),
        val_rows=class_rows([("float", val_float), ("int8", val_int8)]),
        tta=" ".join(TTA),
        int8_delta=info["int8"] - info["float"],
        val_delta=100 * (val_int8["miou"] - val_float["miou"]),
        latency=latency_rows(bench) if bench else "| (not measured: --no-latency) | |",
        cpu=cpu_family(),
        date=datetime.date.today().isoformat(),
        size_keras=os.path.getsize(keras_path) / 1e6,
        size_int8=os.path.getsize(int8_path) / 1e6,
        size="x".join(map(str, size)),
        reads=(
            f"; reads every image at {scale:g}x its size (`preset.json` `scale`), as it was "
            f"trained: 360x480 frames at {h}x{w}"
            if scale != 1
            else ""
        ),
        seen=f", seen at {h}x{w}" if scale != 1 else "",
        at_scale=" " + " ".join(at_scale) if at_scale else "",
        relative=f" (relative to the preset's {scale:g}x)" if scale != 1 else "",
        passes=2 * sum(v * v for v in tta_scales),
    )
    write_text_atomic(os.path.join(preset, "MODEL_CARD.md"), card)
    print(f"preset written to {preset}: {HOLDOUT} (held out) mIoU float {info['float']:.2f}, "
          f"int8 {info['int8']:.2f}; val (trained on) float {100 * val_float['miou']:.2f}, "
          f"int8 {100 * val_int8['miou']:.2f}")  # fmt: skip

    if args.golden:
        # The app's assets are committed links to the preset's files: nothing to copy.
        sample = os.path.join(preset, "samples", GOLDEN_IMAGE)
        reference = os.path.relpath(int8_path, ROOT)
        fastscnn("android-golden", int8_path, sample, "--frame-size", "90x120",
                 "--model-ref", reference)  # fmt: skip
    return 0


CARD = """\
# Model card: Fast-SCNN, CamVid preset (`camvid`)

Fast-SCNN (Poudel, Liwicki, Cipolla, BMVC 2019) trained here from scratch on CamVid street
scenes, shipped in the package: `FastSCNN.from_preset("camvid")`, `--model camvid` (float) or
`--model camvid:int8` in every command. Written by `python benchmarks/camvid_preset.py` on
{date}, which measured every figure below on this CPU: {cpu}.

## Files

| file | what | size |
|---|---|---:|
| `camvid.keras` | float32 Keras, RGB in [0, 255], any size{reads} | {size_keras:.1f} MB |
| `camvid_int8.tflite` | int8: uint8 RGB {size} in, uint8 class mask out | {size_int8:.1f} MB |
| `labels.txt` | the 11 class names and display colours | |
| `config.json` | the last training cycle's full configuration | |
| `campaign.json` | every training cycle: command, steps, wall time, held-out figure | |
| `samples/` | four CamVid val photos for the demo (see Data) | |

`campaign/holdout-{holdout}.keras` (in the repository, not in the wheel) is the same recipe's
model trained without sequence {holdout}: the next cycle of its chain starts from it.

## Data

CamVid (Brostow, Fauqueur, Cipolla, "Semantic object classes in video: a high-definition
ground truth database", Pattern Recognition Letters 2009), in SegNet's 11-class layout at
360x480: trained on the 367 train and 101 val images (468); **the last checkpoint is shipped,
nothing was selected on any image**. The 233 test images are held out for independent
evaluation: not in this checkout, never used. CamVid is for research use; the four photos in
`samples/` are val images of that set, shipped unchanged (JPEG) with this attribution.

## Training: the campaign

The preset is trained in cycles that fit a 2-core machine and a 3-hour sitting: each cycle is
`python benchmarks/camvid_campaign.py`, which trains two chains side by side from the last
committed models (`--init-from`, a warm restart of the poly schedule) and ships the result.
The *preset* chain trains on train+val; the *held-out* chain runs the same commands without
sequence {holdout}, so that every cycle has a figure on streets the model never saw.

| cycle | date | from | steps | crop | preset h | held-out h | {holdout} mIoU (held out) | CPU |
|---:|---|---|---:|---|---:|---:|---:|---|
{campaign}

In all: **{total_steps:,} steps** of batch 8 ({crops} crops), {total_hours:.1f} h of wall time for
the preset chain (two chains share the 2 cores). The last cycle's commands:

    {command}
    {holdout_command}

Recipe (the long-budget recipe of docs/accuracy.md, chosen on {holdout} held out): 2 aux heads
(weight 0.4), class weights 1/ln(1.10 + p), random scale {scale_range} with antialiased
downscaling, {crop} crops (both the last cycle's), flips, colour jitter, no OHEM, SGD
momentum 0.9, lr 0.045 poly 0.9, weight decay 4e-5, batch 8, no ImageNet pre-training.

## Accuracy on streets it never saw

**CamVid test** (233 images): measured by the project after release, with
`fastscnn evaluate --model camvid|camvid:int8 --dataset folder:TEST --split test` (issue #22).
The previous preset (3,600 steps on train only, epoch selected on val) scored 48.27 float and
48.09 int8 there.

**Sequence {holdout} held out** (101 frames at 360x480{seen}, void ignored): the held-out
chain's last checkpoint, float and its int8 export at {size}, never trained on these frames,
nothing selected:

    fastscnn evaluate --model fastscnn_tf/presets/camvid/campaign/holdout-{holdout}.keras \\
        --dataset folder:../shared/data/camvid --split "train[{holdout}]"{at_scale}

| {holdout} (held out) | mIoU | {head} |
{rule}
{holdout_rows}

int8 minus float: {int8_delta:+.2f} points here. The last row, if any, averages the class
probabilities over four scales{relative} and their mirror images ({passes:.0f} times the pixels of
one pass; for offline use, `fastscnn evaluate|predict --model camvid {tta}`).

## On frames it trained on (CamVid val, 0016E5)

Val is in the preset's training data, so these figures say nothing about new streets; they
check that the int8 export keeps the float model's masks ({val_delta:+.2f} points):

    fastscnn evaluate --model camvid|camvid:int8 --dataset folder:../shared/data/camvid --split val

| val (trained on) | mIoU | {head} |
{rule}
{val_rows}

## Latency of the int8 model ({size}, LiteRT with XNNPACK, this 2-core CPU)

On the first CamVid val photo (the exact mask head's cost follows the scene).

    fastscnn benchmark camvid:int8 --threads 1 2 4 --runs 30 --no-keras \\
        --images ../shared/data/camvid/val

| threads | median ms |
|---:|---:|
{latency}

## Known limits

- Thin and rare classes are weak (pole, sign, bicyclist, fence): they cover few pixels in 468
  training images and Fast-SCNN's 1/8-resolution classifier blurs them.
- CamVid is one city (Cambridge, UK), daylight, one camera height: expect lower accuracy on
  other cities, night, rain or other viewpoints. Fine-tune on your own data with
  `fastscnn train --init-from camvid ...`.
- The best from-scratch networks of this size train about 1,000 epochs on CamVid; the campaign
  goes on from the committed models (docs/accuracy.md says how).
"""

if __name__ == "__main__":
    sys.exit(main())
