"""Recipe decisions on a CamVid sequence the model never sees (issue #22).

CamVid's val frames all come from sequence 0016E5, which also gives 204 of the 367 train frames,
so val measures neighbours of training frames (about 14 points above the test split). This
script holds a whole sequence out instead: each recipe trains on every other frame of train
and val (`--split "train[-0006R0]+val"`) and is scored, last checkpoint, no selection, on the
held-out sequence (`--split "train[0006R0]"`, 101 frames at 360x480).

    python benchmarks/camvid_holdout.py                                  # every recipe, seed 0
    python benchmarks/camvid_holdout.py --recipes preset logw --seeds 0 1 --parallel 2

Each run is `fastscnn train` in `--out/RECIPE-sSEED` (resumes if killed, reused once finished),
then `fastscnn evaluate` on the held-out sequence. Prints a markdown table of mIoU and per-class
IoU per run and the mean over seeds, and writes it to `--out/holdout.json`.
"""

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).parent
CAMVID = HERE.parent.parent / "shared" / "data" / "camvid"
CLASSES = ("sky building pole road sidewalk tree sign fence car pedestrian bicyclist").split()

# The shipped preset's recipe, then one change at a time, then the long-budget bundle of the
# from-scratch networks on CamVid (class weights 1/ln(1.10 + p), scale 0.5-2, no OHEM), with
# colour jitter for the light of new streets.
PRESET = ["--no-colour-jitter", "--ohem", "--scale-range", "0.75,1.5"]
LOG_WEIGHTS = ["--class-weighting", "--class-weights", "log", "--class-weight-c", "1.10"]
RECIPES = {
    "preset": PRESET,
    "logw": [*PRESET, *LOG_WEIGHTS],
    "jitter": ["--colour-jitter", "--ohem", "--scale-range", "0.75,1.5"],
    "long": ["--colour-jitter", "--no-ohem", "--scale-range", "0.5,2.0", *LOG_WEIGHTS],
}


def train_args(data, holdout, epochs, steps, seed):
    return [
        "--dataset", f"folder:{data}", "--split", f"train[-{holdout}]+val",
        "--val-split", f"train[{holdout}]", "--epochs", str(epochs),
        "--steps-per-epoch", str(steps), "--batch-size", "8", "--crop", "320x320", "--aux2",
        "--val-batch-size", "4", "--seed", str(seed), "--verbose", "2", "--overlays", "0",
    ]  # fmt: skip


def fastscnn(*args):
    return [sys.executable, "-m", "fastscnn_tf.cli", *args]


def start_run(args, recipe, seed):
    """A `fastscnn train` process for one run, or None when the run has finished already."""
    out = os.path.join(args.out, f"{recipe}-s{seed}")
    if os.path.exists(os.path.join(out, "model.keras")):
        return None
    os.makedirs(out, exist_ok=True)
    command = fastscnn(
        "train",
        *train_args(args.data, args.holdout, args.epochs, args.steps_per_epoch, seed),
        *RECIPES[recipe],
        "--out",
        out,
    )
    print("$", shlex.join(command), flush=True)
    log = open(os.path.join(out, "train.log"), "a", encoding="utf-8")  # noqa: SIM115
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def evaluate(args, recipe, seed):
    out = os.path.join(args.out, f"{recipe}-s{seed}")
    eval_dir = os.path.join(out, "holdout_eval")
    command = fastscnn(
        "evaluate", "--model", os.path.join(out, "model.keras"), "--dataset",
        f"folder:{args.data}", "--split", f"train[{args.holdout}]", "--out", eval_dir,
    )  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    (report,) = [f for f in os.listdir(eval_dir) if f.endswith(".eval.json")]
    with open(os.path.join(eval_dir, report), encoding="utf-8") as f:
        result = json.load(f)
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        result["train_seconds"] = json.load(f)["seconds_this_session"]
    return result


def table(results, holdout):
    head = f"| recipe | seed | {holdout} mIoU | " + " | ".join(c[:6] for c in CLASSES) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(CLASSES)]
    for (recipe, seed), r in results.items():
        ious = " | ".join(f"{100 * c['iou']:.1f}" for c in r["classes"])
        lines.append(f"| {recipe} | {seed} | {100 * r['miou']:.2f} | {ious} |")
    by_recipe = {}
    for (recipe, _), r in results.items():
        by_recipe.setdefault(recipe, []).append(r["miou"])
    for recipe, values in by_recipe.items():
        if len(values) > 1:
            mean = 100 * sum(values) / len(values)
            lines.append(f"| **{recipe}**, mean | {len(values)} seeds | {mean:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--holdout", default="0006R0", help="sequence (file-name prefix)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2, help="runs trained at once")
    parser.add_argument("--data", default=str(CAMVID))
    parser.add_argument("--out", default="runs/holdout")
    args = parser.parse_args(argv)
    if not (pathlib.Path(args.data) / "train").is_dir():
        print(f"camvid_holdout: no CamVid at {args.data} (see --data)", file=sys.stderr)
        return 2
    runs = [(recipe, seed) for seed in args.seeds for recipe in args.recipes]
    pending, running = list(runs), []
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < args.parallel:
            recipe, seed = pending.pop(0)
            process = start_run(args, recipe, seed)
            if process is not None:
                running.append(((recipe, seed), process))
        for item in list(running):
            if item[1].poll() is not None:
                running.remove(item)
                if item[1].returncode:
                    print(f"camvid_holdout: {item[0]} failed; see its train.log", file=sys.stderr)
                    return 1
        time.sleep(5)
    results = {run: evaluate(args, *run) for run in runs}
    text = table(results, args.holdout)
    print(text)
    print(f"({time.perf_counter() - start:.0f} s this invocation)")
    with open(os.path.join(args.out, "holdout.json"), "w", encoding="utf-8") as f:
        json.dump({f"{r}-s{s}": v for (r, s), v in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
