"""The mobile peer: the reference PyTorch Fast-SCNN as a developer would ship it with Google's
own tools, against the project's exported models, timed end to end on one photo.

    pip install -e .[peer]                   # torch, litert-torch, ai-edge-quantizer
    python benchmarks/peer_litert_torch.py                   # 512x1024, 2 threads
    python benchmarks/peer_litert_torch.py --size 360x480 --threads 1 --runs 50

Peer side: `fastscnn_tf.torch_reference.FastSCNN` (11 classes, trained-like random weights,
`torch_reference.randomize`) converted by litert-torch with NHWC input and output
(`to_channel_last_io`), as float32, and quantized to int8 by ai-edge-quantizer (static int8
weights and activations, `recipe.static_wi8_ai8`, calibrated on 8 CamVid photos; int8 input and
output). Its user turns the uint8 photo into the normalised float input in numpy (and quantizes
it for the int8 model) and takes the argmax of the logits in numpy; both are timed with the
model.

Project side: the CamVid preset exported at the same size, float32 and int8, each taking the
uint8 photo and returning the uint8 class mask (`fastscnn export`'s default).

Every model runs in LiteRT's Python interpreter with XNNPACK and `--threads` threads in this one
process; the variants take turns call by call, so a noisy, shared CPU slows them alike. Prints
the median of the model call alone and of the whole photo-to-mask call, and each one's ratio to
the project's int8 model. The peer's float32 logits are checked against PyTorch's.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")
MEAN = np.array((0.485, 0.456, 0.406), np.float32)
STD = np.array((0.229, 0.224, 0.225), np.float32)
NUM_CLASSES = 11


def photos(folder, size, count):
    """The first `count` photos of `folder` (sorted) as uint8 (H, W, 3) at `size`."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".png")))[:count]
    if not names:
        raise SystemExit(f"error: --images {folder}: no .jpg or .png photos there")
    out = []
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            out.append(np.asarray(image.convert("RGB").resize(size[::-1], Image.BILINEAR)))
    return out


def normalize(photo, size=None):
    """The peer's preprocessing: uint8 (H, W, 3) -> ImageNet-normalised float32 (1, H, W, 3),
    padded at the bottom and right to `size`. The reference's fusion upsamples its 1/32 map by
    a fixed 4, so it runs only at multiples of 32 (360x480 becomes 384x480)."""
    x = (photo.astype(np.float32) / 255.0 - MEAN) / STD
    if size is not None:
        x = np.pad(x, ((0, size[0] - x.shape[0]), (0, size[1] - x.shape[1]), (0, 0)))
    return x[None]


def peer_models(size, calibration, float_path, int8_path):
    """Write the reference converted by litert-torch to `float_path` and quantized by
    ai-edge-quantizer to `int8_path`; returns max |litert - torch| of the float32 logits."""
    import litert_torch
    import torch
    from ai_edge_quantizer import quantizer, recipe

    from fastscnn_tf import torch_reference
    from fastscnn_tf.geometry import aligned_size

    model = torch_reference.randomize(torch_reference.FastSCNN(NUM_CLASSES, aux=False))
    nhwc = litert_torch.to_channel_last_io(model, args=[0], outputs=[0]).eval()
    padded = aligned_size(size)
    sample = torch.from_numpy(normalize(calibration[0], padded))
    edge = litert_torch.convert(nhwc, (sample,))
    edge.export(float_path)
    with torch.inference_mode():
        expected = nhwc(sample)
        expected = (expected[0] if isinstance(expected, (tuple, list)) else expected).numpy()
    error = float(np.abs(np.asarray(edge(sample.numpy())) - expected).max())

    qt = quantizer.Quantizer(float_path)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    key = _input_name(float_path)
    samples = [{key: normalize(p, padded)} for p in calibration]
    calibrated = qt.calibrate({"serving_default": samples}, num_threads=2)
    qt.quantize(calibrated).export_model(int8_path, overwrite=True)
    return error


def _input_name(path):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()
    return next(iter(runner.get_input_details()))


def project_models(size, calibration_spec, float_path, int8_path):
    """Write the CamVid preset exported at `size` with the mask output, float32 and int8."""
    from fastscnn_tf import export, presets

    model = presets.resolve_model("camvid")
    for precision, path in (("float32", float_path), ("int8", int8_path)):
        representative = calibration_spec if precision == "int8" else None
        export.export_tflite(model, path, size=size, precision=precision,
                             representative=representative, metadata=False)  # fmt: skip


class Variant:
    """One model and what its user does around it, photo to mask."""

    def __init__(self, name, path, threads, peer):
        from ai_edge_litert.interpreter import Interpreter

        from fastscnn_tf.geometry import aligned_size

        self.name, self.peer = name, peer
        self.aligned_size = aligned_size
        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        detail = self.interpreter.get_input_details()[0]
        self.input, self.dtype = detail["index"], detail["dtype"]
        self.scale, self.zero_point = detail["quantization"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.model_ms, self.total_ms = [], []

    def __call__(self, photo):
        start = time.perf_counter()
        h, w = photo.shape[:2]
        x = normalize(photo, self.aligned_size((h, w))) if self.peer else photo[None]
        if self.peer and self.dtype != np.float32:  # the quantizer's int8 input: quantize it
            info = np.iinfo(self.dtype)
            x = np.round(x / self.scale + self.zero_point)
            x = np.clip(x, info.min, info.max).astype(self.dtype)
        self.interpreter.set_tensor(self.input, x)
        called = time.perf_counter()
        self.interpreter.invoke()
        self.model_ms.append((time.perf_counter() - called) * 1e3)
        out = self.interpreter.get_tensor(self.output)[0]
        # One scale for the whole int8 output: its argmax is the logits' argmax.
        mask = np.argmax(out[:h, :w], axis=-1).astype(np.uint8) if self.peer else out
        self.total_ms.append((time.perf_counter() - start) * 1e3)
        return mask


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x1024", help="input size HxW")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30, help="timed calls per variant")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--images", default=os.path.join(CAMVID, "val"), help="photos")
    parser.add_argument("--calibration", default=f"folder:{CAMVID}", help="project int8 data")
    parser.add_argument(
        "--keep", help="folder to keep the four .tflite files in; ones already there are timed"
    )
    args = parser.parse_args(argv)
    try:
        import ai_edge_quantizer  # noqa: F401
        import litert_torch  # noqa: F401
    except ImportError as error:
        print(f"error: {error.name} is missing: pip install -e .[peer]", file=sys.stderr)
        return 2
    from fastscnn_tf.geometry import parse_size

    size = parse_size(args.size)
    if not os.path.isdir(args.images):
        parser.error(f"--images {args.images}: not a folder")
    calibration = photos(args.images, size, 8)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or scratch
        os.makedirs(folder, exist_ok=True)
        names = ("peer_float32", "peer_int8", "project_float32", "project_int8")
        paths = [os.path.join(folder, f"{name}_{size[0]}x{size[1]}.tflite") for name in names]
        if args.keep and all(os.path.exists(p) for p in paths):
            print(f"timing the models already in {folder} (the checks ran when they were made)")
            error = None
        else:
            error = peer_models(size, calibration, *paths[:2])
            project_models(size, args.calibration, *paths[2:])
        peer_float, peer_int8, project_float, project_int8 = paths
        variants = [
            Variant("peer float32 (litert-torch)", peer_float, args.threads, peer=True),
            Variant("peer int8 (ai-edge-quantizer)", peer_int8, args.threads, peer=True),
            Variant("project float32 mask", project_float, args.threads, peer=False),
            Variant("project int8 mask", project_int8, args.threads, peer=False),
        ]
        photo = calibration[0]
        for i in range(args.warmup + args.runs):
            for variant in variants:
                variant(photo)
            if i + 1 == args.warmup:
                for variant in variants:
                    variant.model_ms.clear(), variant.total_ms.clear()
    from train_end_to_end import cpu_family

    print(f"{args.size}, {args.threads} thread(s), {args.runs} calls each after {args.warmup}, "
          f"{cpu_family()}")  # fmt: skip
    if error is not None:
        print(f"peer float32 logits vs PyTorch: max |difference| {error:.2e}")
    base = np.median(variants[-1].total_ms)
    print("| variant | model ms | photo to mask ms | vs project int8 |")
    print("|---|---:|---:|---:|")
    for variant in variants:
        model, total = np.median(variant.model_ms), np.median(variant.total_ms)
        print(f"| {variant.name} | {model:.1f} | {total:.1f} | {total / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
