"""The phone's kernels, run here: masks of the exported models on ARM64 LiteRT (under
qemu-aarch64) against x86 LiteRT, for the CPU models that select each XNNPACK kernel family.

    cortex-a53   plain NEON (phones from 2016)
    cortex-a76   dot-product, SDOT (2019)
    cortex-a710  i8mm, SMMLA (2022)
    max          SME (2024 and later)

With XNNPACK (what the app and LiteRT use by default) every mask of the int8, float32 and float16
models must equal the x86 mask pixel for pixel: a difference fails the check. The `dynamic`
model (int8 weights, activations quantized at run time, where XNNPACK's x86 and ARM kernels
round differently) and LiteRT's builtin kernels (no delegate, on either architecture) are
reported as the share of pixels that differ from the x86 XNNPACK mask, not judged. It also
lists each model's operators with their versions: what the app's runtime must support.

    bash tflite/arm64/setup.sh && .venv/bin/python tflite/arm64/check.py   # make arm64-test
"""

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARM64_DIR = Path(os.environ.get("ARM64_DIR", REPO / ".arm64"))
MASKS_SCRIPT = HERE / "masks.py"
CPUS = ("cortex-a53", "cortex-a76", "cortex-a710", "max")
APP_LITERT = "1.4.0"  # the Python build of the LiteRT 1.4.1 that android_demo pins
PRESET = REPO / "fastscnn_tf" / "presets" / "camvid" / "camvid_int8.tflite"
# The shipped int8 model's input (720x960 since it reads CamVid frames at 2x): every model is
# compared at it, so that all take the same decoded images.
PRESET_SIZE = tuple(json.loads((PRESET.parent / "preset.json").read_text())["input_size"])
# Every exported variant the CLI makes, as export_tflite keywords (name: options).
VARIANTS = {
    "int8_mask": dict(precision="int8"),
    "int8_mask_m4": dict(precision="int8", mask_stride=4),
    "int8_logits_s8": dict(precision="int8", output_kind="logits", output_stride=8),
    "int8_probabilities": dict(precision="int8", output_kind="probabilities"),
    "float32_mask": dict(precision="float32"),
    "float16_mask": dict(precision="float16"),
    "dynamic_mask": dict(precision="dynamic"),
}


# Variants whose XNNPACK masks may differ between x86 and ARM64 (reported, not judged).
UNJUDGED = ("dynamic_mask",)


def host_litert():
    from importlib.metadata import version

    return version("ai-edge-litert")


def ready():
    """Why the emulated ARM64 LiteRT cannot run here, or None when it can."""
    if platform.machine() != "x86_64":
        return f"the host is {platform.machine()}, not x86_64"
    if not (ARM64_DIR / "run").exists():
        return f"{ARM64_DIR} is not prepared: run `bash tflite/arm64/setup.sh`"
    for version in (host_litert(), APP_LITERT):
        if not (ARM64_DIR / f"litert-{version}").is_dir():
            return f"{ARM64_DIR} has no LiteRT {version}: run `bash tflite/arm64/setup.sh`"
    return None


@dataclasses.dataclass(frozen=True)
class Target:
    """Where masks are computed: `cpu` None is the host (x86) itself."""

    cpu: str = None
    litert: str = None
    threads: int = 2
    kernels: str = "xnnpack"

    @property
    def label(self):
        where = "x86 host" if self.cpu is None else f"arm64 {self.cpu}"
        return f"{where}, LiteRT {self.litert or host_litert()}, {self.threads} thr, {self.kernels}"


def run_masks(target, images_path, models, folder):
    """{name: (N, H, W) masks} of `models` ({name: path}) on `target`, through masks.py."""
    out = Path(folder) / f"{abs(hash(target))}.npz"
    if target.cpu is None:
        command = [sys.executable, str(MASKS_SCRIPT)]
    else:
        version = target.litert or host_litert()
        command = [str(ARM64_DIR / "run"), version, target.cpu, str(MASKS_SCRIPT)]
    command += [str(images_path), str(out), "--threads", str(target.threads)]
    command += ["--kernels", target.kernels]
    for name, path in models.items():
        command += ["--model", f"{name}={path}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{target.label}: masks.py failed:\n{done.stderr[-3000:]}")
    with np.load(out) as data:
        machine = str(data["machine"])
        expected = "x86_64" if target.cpu is None else "aarch64"
        if machine != expected:
            raise RuntimeError(f"{target.label}: ran on {machine}, not {expected}")
        return {name: data[name] for name in models}


def compare(targets, images, models, workers=2):
    """{target: {name: share of pixels differing from the x86 XNNPACK mask}}, the x86 masks
    first; the targets run `workers` at a time (each emulated process is one busy core)."""
    with tempfile.TemporaryDirectory() as folder:
        images_path = Path(folder) / "images.npy"
        np.save(images_path, np.asarray(images, np.uint8))
        reference = run_masks(Target(), images_path, models, folder)
        with ThreadPoolExecutor(workers) as pool:
            runs = list(pool.map(lambda t: run_masks(t, images_path, models, folder), targets))
    return {
        target: {name: float(np.mean(result[name] != reference[name])) for name in models}
        for target, result in zip(targets, runs, strict=True)
    }


def op_versions(path):
    """Sorted `OP vN` strings of the builtin operators a `.tflite` uses."""
    from ai_edge_litert import schema_py_generated as tfl

    names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    model = tfl.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops.add(f"{names.get(value, value)} v{code.Version()}")
    return sorted(ops)


def synthetic_images(count, size):
    """Decoded scenes of the project's synthetic data: deterministic, no download."""
    from fastscnn_tf.data import synthetic

    return np.stack([synthetic.example(i, seed=7, size=size)[0] for i in range(count)])


def export_variants(model, folder, size, calibration, variants=VARIANTS):
    """{name: path} of `model` exported as each variant at `size`."""
    from fastscnn_tf import export

    paths = {}
    for name, options in variants.items():
        path = Path(folder) / f"{name}.tflite"
        export.export_tflite(
            model,
            path,
            size=size,
            representative=list(calibration),
            calibration_images=len(calibration),
            **options,
        )
        paths[name] = str(path)
    return paths


def matrix(cpus=CPUS, threads=(1, 2), litert_versions=None, kernels=("xnnpack", "builtin")):
    """The targets: each CPU model, thread count and kernel kind for each LiteRT version, and
    the host's own builtin kernels."""
    versions = litert_versions or (host_litert(), APP_LITERT)
    host = [Target(kernels="builtin")] if "builtin" in kernels else []
    return host + [
        Target(cpu, version, n, k)
        for version in versions
        for k in kernels
        for cpu in cpus
        for n in threads
        if k == "xnnpack" or n == 2  # builtin kernels: one thread count is enough to report
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2, help="synthetic scenes per model")
    parser.add_argument("--cpus", nargs="+", default=list(CPUS))
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    reason = ready()
    if reason:
        sys.exit(f"check.py: {reason}")
    from fastscnn_tf import modelfile, tflog

    tflog.quiet()
    size = PRESET_SIZE
    images = synthetic_images(args.images, size)
    with tempfile.TemporaryDirectory() as folder:
        model = modelfile.load_keras_model(PRESET.parent / "camvid.keras")
        models = {"preset_int8": str(PRESET)}
        models.update(export_variants(model, folder, size, synthetic_images(8, size)))
        ops = {name: op_versions(path) for name, path in models.items()}
        results = compare(matrix(args.cpus), images, models, args.workers)
    print(
        f"# ARM64 LiteRT against x86 LiteRT {host_litert()} with XNNPACK ({len(images)} "
        f"synthetic {size[0]}x{size[1]} images; share of mask pixels that differ)\n"
    )
    names = list(models)
    print("| target | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    failed = []
    for target, shares in results.items():
        print(f"| {target.label} | " + " | ".join(f"{shares[n]:.4%}" for n in names) + " |")
        if target.kernels == "xnnpack":
            failed += [f"{target.label}: {n}" for n in names if shares[n] > 0 and n not in UNJUDGED]
    print("\n# Operators (builtin, with versions) the app's runtime must support\n")
    for name in names:
        print(f"- {name}: {', '.join(ops[name])}")
    print(f"\nunion: {', '.join(sorted(set().union(*ops.values())))}")
    if failed:
        print("\nFAILED: XNNPACK masks differ from x86 for " + "; ".join(failed))
        sys.exit(1)
    print("\nall XNNPACK masks equal the x86 ones, pixel for pixel")


if __name__ == "__main__":
    main()
