"""Training speed as users feel it: `fastscnn train` itself against the reference PyTorch loop,
each with its real data path, run alternately.

Both sides train the protocol's recipe on CamVid train (batch 8, crop 320, one aux head, no
colour jitter; see camvid_protocol.py) for `--epochs` epochs of 45 steps, as separate processes:
the project with `fastscnn train --val-steps 1` (tf.data from the JPEG/PNG files, one validation
batch and the epoch's checkpoints and backup), the reference with its own loop
(`camvid_protocol.py --train-only`: PIL augmentation in the loop, images decoded once). Rounds
alternate the two, so both see the same machine. An epoch is timed between the lines that end
it and the one before (Keras prints its epoch line after the checkpoint and backup callbacks;
the reference prints after its last step), so the steady-state figure holds everything a run
does between epochs; the first epoch (tracing, warm-up) is left out. The whole-command figure
divides all training images by the process's wall time (start-up and the final save included).

    python benchmarks/train_end_to_end.py                  # 2 rounds of 4 epochs
    python benchmarks/train_end_to_end.py --rounds 3 --epochs 3 -- --jit   # flags to train
    python benchmarks/train_end_to_end.py --max-isa avx2   # both sides limited to AVX2

`--max-isa avx2` approximates an AVX2-only CPU (such as AMD Zen 3) on an AVX-512 one: oneDNN,
in both TensorFlow and PyTorch, and PyTorch's own kernels then pick their AVX2 code. It caps
the instruction set, not the core: the figures are not a Zen 3's.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from camvid_protocol import BATCH, CAMVID, CROP, HERE, STEPS, split_passthrough


def cpu_family():
    """The CPU's model name and whether it has AVX-512 VNNI (the two families seen here)."""
    text = pathlib.Path("/proc/cpuinfo").read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("model name")), "unknown CPU")  # fmt: skip
    flags = "AVX-512 VNNI" if "avx512_vnni" in text.split() else "AVX2, no AVX-512 VNNI"
    return f"{name} ({flags}), {os.cpu_count()} cores"


def project_command(out, epochs, seed, extra):
    return [
        sys.executable, "-u", "-m", "fastscnn_tf.cli", "train",
        "--dataset", f"folder:{CAMVID}", "--out", str(out), "--epochs", str(epochs),
        "--steps-per-epoch", str(STEPS), "--batch-size", str(BATCH), "--crop", f"{CROP}x{CROP}",
        "--no-aux2", "--no-colour-jitter", "--val-steps", "1", "--val-batch-size", "4",
        "--overlays", "0", "--seed", str(seed), "--verbose", "2", *extra,
    ]  # fmt: skip


def reference_command(epochs, seed, threads):
    return [
        sys.executable, "-u", str(HERE / "camvid_protocol.py"), "--side", "reference",
        "--train-only", str(epochs), "--seeds", str(seed), "--threads", str(threads),
    ]  # fmt: skip


# What each library reads to cap the instructions its kernels use (oneDNN: TensorFlow's and
# PyTorch's convolutions and matrix products; ATen: PyTorch's other CPU kernels).
ISA_ENV = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def timed_lines(command, marker, env=None):
    """Runs `command` (with `env` added to the environment); returns the times (from its
    start) of the output lines that contain `marker`, and its wall time. Raises with its
    output's tail if it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    marks, tail = [], []
    for line in process.stdout:
        if line.startswith(marker):
            marks.append(time.perf_counter() - start)
        tail = (tail + [line])[-30:]
    if process.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{''.join(tail)}")
    return marks, time.perf_counter() - start


def rates(ends, wall, epochs):
    """(steady-state images/s, whole-command images/s, epoch seconds) from the times `ends`
    at which the epochs ended and the process's wall time."""
    if len(ends) != epochs:
        raise RuntimeError(f"expected {epochs} epoch lines, read {len(ends)}")
    seconds = [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]  # epochs 2..N
    return STEPS * BATCH / statistics.median(seconds), epochs * STEPS * BATCH / wall, seconds


def main():
    argv, extra = split_passthrough(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4, help="epochs of 45 steps per run (>= 3)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--max-isa", choices=sorted(ISA_ENV),
                        help="cap both sides' kernels at this instruction set")  # fmt: skip
    args = parser.parse_args(argv)
    env = ISA_ENV.get(args.max_isa, {})
    if args.epochs < 3:
        parser.error("--epochs: at least 3 (the first epoch is left out of the steady state)")
    if not CAMVID.is_dir():
        print(f"error: {CAMVID} not found (the shared CamVid data)", file=sys.stderr)
        return 2
    print(f"CPU: {cpu_family()}" + (f"; kernels capped at {args.max_isa.upper()} "
          f"({' '.join(f'{k}={v}' for k, v in env.items())})" if env else ""))  # fmt: skip
    print(f"{args.rounds} rounds of {args.epochs} epochs x {STEPS} steps, batch {BATCH}, "
          f"crop {CROP}; project flags: {' '.join(extra) or '(none)'}")  # fmt: skip
    results = {"project": [], "reference": []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            command = project_command(pathlib.Path(folder) / f"run{r}", args.epochs, r, extra)
            marks, wall = timed_lines(command, f"{STEPS}/{STEPS} - ", env)  # Keras' epoch line
            results["project"].append(rates(marks, wall, args.epochs))
            if not args.no_reference:
                command = reference_command(args.epochs, r, args.threads)
                marks, wall = timed_lines(command, "reference seed", env)
                results["reference"].append(rates(marks, wall, args.epochs))
            for side, values in results.items():
                if len(values) > r:
                    steady, whole, seconds = values[r]
                    print(f"round {r + 1}: {side:<9} {steady:6.2f} img/s steady, "
                          f"{whole:6.2f} img/s whole command (epochs 2..: "
                          f"{', '.join(f'{t:.1f}' for t in seconds)} s)", flush=True)  # fmt: skip
    for side, values in results.items():
        if values:
            print(f"{side:<9} median: {statistics.median(v[0] for v in values):6.2f} img/s steady"
                  f", {statistics.median(v[1] for v in values):6.2f} whole command")  # fmt: skip
    if results["reference"]:
        pairs = list(zip(results["project"], results["reference"], strict=True))
        steady = statistics.median(p[0] / q[0] for p, q in pairs)
        whole = statistics.median(p[1] / q[1] for p, q in pairs)
        print(f"ratio project / reference: x{steady:.2f} steady, x{whole:.2f} whole command "
              "(median of rounds)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
