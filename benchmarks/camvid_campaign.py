"""One cycle of the CamVid preset's training campaign: two chains side by side, then ship.

    python benchmarks/camvid_campaign.py --steps 2500                 # the next cycle
    python benchmarks/camvid_campaign.py --steps 6000 --from-scratch  # cycle 1 of a campaign

A cycle goes on with the last cycle's crop and random scale unless told otherwise; a scale
range of 1.0,4.0 (the recipe's 0.5-2 for frames at 2x) ships a preset read at 2x.

Long training is split into cycles that fit a sitting on a 2-core machine, because run folders
do not outlive a sitting and commits do (issue #22). Each cycle trains, in parallel:
- the *preset* chain on CamVid train+val, from the committed `camvid` preset;
- the *held-out* chain, the same command without sequence 0006R0, from the committed
  `fastscnn_tf/presets/camvid/campaign/holdout-0006R0.keras`, so that every cycle is scored on
  streets its model never saw.
Each starts with `--init-from` (a warm restart of the poly schedule) and seed = cycle - 1
(`--seed` to change it: a second seed of a recipe measured before). A
killed cycle resumes step-exact: run the same command again. When both finish,
`benchmarks/camvid_preset.py` ships the preset chain's last checkpoint, keeps the held-out
chain's, and records the cycle in `campaign.json` and the model card; commit the preset folder
and the next sitting goes on from there. An accelerator is used when TensorFlow sees one.
"""

import argparse
import os
import shlex
import subprocess
import sys
import time

import camvid_preset

ROOT = camvid_preset.ROOT
HOLDOUT = camvid_preset.HOLDOUT
RECIPE = [
    "--aux2", "--colour-jitter", "--no-ohem", "--class-weighting",
    "--class-weights", "log", "--class-weight-c", "1.10",
]  # fmt: skip
DATA = "../shared/data/camvid"  # as the commands in the model card say it (from the root)
CHAINS = {
    "preset": {"split": "train+val", "val_split": "val", "init": "camvid.keras"},
    "holdout": {
        "split": f"train[-{HOLDOUT}]+val",
        "val_split": f"train[{HOLDOUT}]",
        "init": os.path.relpath(camvid_preset.HOLDOUT_MODEL, camvid_preset.PRESET),
    },
}


def train_command(args, chain, seed, init_from):
    """The `fastscnn train` command of one chain; `init_from`: the preset folder to start from
    (its `camvid.keras` or held-out model), or None from scratch."""
    spec = CHAINS[chain]
    command = [
        os.path.join(os.path.dirname(sys.executable), "fastscnn"), "train",
        "--dataset", f"folder:{args.data}", "--split", spec["split"],
        "--val-split", spec["val_split"], "--epochs", str(args.steps // args.steps_per_epoch),
        "--steps-per-epoch", str(args.steps_per_epoch), "--batch-size", str(args.batch_size),
        "--crop", args.crop, "--scale-range", args.scale_range, *RECIPE,
        "--val-batch-size", "4", "--val-steps", "5",
        "--seed", str(seed), "--verbose", "2", "--overlays", "0",
        "--out", os.path.join(args.out, chain),
    ]  # fmt: skip
    if init_from:
        command += ["--init-from", os.path.join(init_from, spec["init"])]
    return command


def recipe_defaults(cycles, crop, scale_range):
    """`--crop` and `--scale-range` of this cycle: as given, else the last cycle's (a campaign
    goes on with its recipe), else the recipe's 320x320 and 0.5,2.0."""
    if cycles:
        crop = crop or camvid_preset.cycle_crop(cycles[-1])
        scale_range = scale_range or camvid_preset.command_option(cycles[-1], "--scale-range")
    return crop or "320x320", scale_range or "0.5,2.0"


def ship_options(scale_range, ship_args):
    """`camvid_preset.py` options: `ship_args`, plus `--scale S --size HxW` where the random
    scale is the recipe's 0.5-2 times S (1.0,4.0: S = 2, 720x960) and `ship_args` name
    neither, so that the preset reads images at the size it was trained for."""
    scale = float(scale_range.split(",")[1]) / 2.0
    if scale == 1.0 or {"--scale", "--size"} & {a.split("=")[0] for a in ship_args}:
        return list(ship_args)
    h, w = (round(side * scale) for side in camvid_preset.SIZE)
    return [*ship_args, "--scale", f"{scale:g}", "--size", f"{h}x{w}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6000, help="steps of this cycle")
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", help="crop HxW (default: the last cycle's, else 320x320)")
    parser.add_argument("--scale-range",
                        help="random scale LO,HI (default: the last cycle's, else 0.5,2.0); "
                        "1.0,4.0 is the recipe's 0.5-2 for frames at 2x, and the preset is "
                        "then shipped read at 2x (int8 at 720x960)")  # fmt: skip
    parser.add_argument("--seed", type=int, help="seed of both chains (default: cycle - 1)")
    parser.add_argument("--from-scratch", action="store_true", help="cycle 1: no --init-from")
    parser.add_argument("--out", default="runs/campaign", help="folder of the two runs")
    parser.add_argument("--data", default=DATA, help="CamVid folder (SegNet layout)")
    parser.add_argument("--preset-dir", default=os.path.relpath(camvid_preset.PRESET, ROOT))
    parser.add_argument("--nice", type=int, default=5, help="niceness of the training processes")
    parser.add_argument("--ship", action=argparse.BooleanOptionalAction, default=True,
                        help="ship the preset when both chains have finished")  # fmt: skip
    parser.add_argument("--ship-args", default="", help="more camvid_preset.py options")
    args = parser.parse_args(argv)
    if args.steps_per_epoch <= 0 or args.steps <= 0 or args.steps % args.steps_per_epoch:
        parser.error(f"--steps {args.steps}: a positive multiple of --steps-per-epoch")
    if not os.path.isdir(os.path.join(ROOT, args.data, "train")):
        parser.error(f"--data {args.data}: no CamVid there (train/ is missing)")
    cycles = camvid_preset.read_campaign(os.path.join(ROOT, args.preset_dir))
    continuing = bool(cycles) and not args.from_scratch
    holdout_model = os.path.join(ROOT, args.preset_dir, CHAINS["holdout"]["init"])
    if continuing and not os.path.isfile(holdout_model):
        parser.error(f"{holdout_model} is missing: the held-out chain cannot go on")
    cycle = len(cycles) + 1 if continuing else 1
    out = os.path.join(ROOT, args.out)
    args.crop, args.scale_range = recipe_defaults(
        cycles if continuing else [], args.crop, args.scale_range
    )
    ship_args = ship_options(args.scale_range, shlex.split(args.ship_args))

    processes = {}
    for chain in CHAINS:
        if os.path.isfile(os.path.join(out, chain, "model.keras")):
            continue  # finished earlier
        os.makedirs(os.path.join(out, chain), exist_ok=True)
        seed = cycle - 1 if args.seed is None else args.seed
        command = train_command(args, chain, seed, args.preset_dir if continuing else None)
        print(f"cycle {cycle}, {chain} chain: $ {shlex.join(command[1:])}", flush=True)
        log = open(os.path.join(out, f"{chain}.log"), "a", encoding="utf-8")  # noqa: SIM115
        processes[chain] = subprocess.Popen(
            ["nice", "-n", str(args.nice), *command], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    start = time.perf_counter()
    failed = [chain for chain, process in processes.items() if process.wait()]
    if failed:
        print(f"camvid_campaign: the {', '.join(failed)} chain failed; see {out}/*.log "
              "(the same command resumes)", file=sys.stderr)  # fmt: skip
        return 1
    print(f"cycle {cycle} trained in {time.perf_counter() - start:.0f} s this invocation")
    if not args.ship:
        return 0
    return camvid_preset.main([
        "--run", os.path.join(args.out, "preset"), "--holdout-run",
        os.path.join(args.out, "holdout"), "--cycle", str(cycle), "--data", args.data,
        "--preset-dir", args.preset_dir, *ship_args,
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
