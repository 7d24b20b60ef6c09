"""The exact mask head against the full-size argmax, on real photos with a trained model.

    python benchmarks/exact_mask_parity.py                      # the CamVid preset on CamVid val
    python benchmarks/exact_mask_parity.py --model runs/x/model.keras --images DIR --size HxW

Exports the model twice with the same calibration: the default int8 mask (`exact_mask`: the
1/8 argmax, resized only on class boundaries) and int8 logits at the input size (the full-size
`RESIZE_BILINEAR` the mask head replaces). The argmax of the second (numpy, first maximum, as
`ARG_MAX`) is the mask as it was exported before the exact head; the script counts the pixels
where the two differ on every image of `--images`, with XNNPACK and with LiteRT's own kernels.
"""

import argparse
import os
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMVID = os.path.join(os.path.dirname(ROOT), "shared", "data", "camvid")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="camvid", help="a .keras model or a preset")
    parser.add_argument("--images", default=os.path.join(CAMVID, "val"), help="folder of photos")
    parser.add_argument("--size", default="360x480", help="export size HxW")
    parser.add_argument("--calibration", default=f"folder:{CAMVID}", help="int8 calibration data")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.images):
        parser.error(f"--images {args.images}: not a folder")

    from ai_edge_litert.interpreter import OpResolverType
    from tflite_ops import run_images

    from fastscnn_tf import export, presets
    from fastscnn_tf.geometry import parse_size

    size = parse_size(args.size)
    model = presets.resolve_model(args.model, "float")
    names = sorted(n for n in os.listdir(args.images) if n.lower().endswith((".jpg", ".png")))
    images = [
        np.asarray(Image.open(os.path.join(args.images, n)).convert("RGB").resize(size[::-1]))
        for n in names
    ]
    resolvers = {
        "XNNPACK": OpResolverType.AUTO,
        "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind in ("mask", "logits"):
            paths[kind] = export.export_tflite(
                model, os.path.join(tmp, f"{kind}.tflite"), size=size, precision="int8",
                output_kind=kind, representative=args.calibration, metadata=False,
            )  # fmt: skip
        print(f"{args.model}, int8 at {size[0]}x{size[1]}, {len(images)} images of {args.images}")
        for label, resolver in resolvers.items():
            differ = total = 0
            pairs = zip(
                run_images(str(paths["mask"]), images, resolver),
                run_images(str(paths["logits"]), images, resolver),
                strict=True,
            )
            for mask, logits in pairs:
                differ += int(np.sum(mask != np.argmax(logits, axis=-1)))
                total += mask.size
            print(f"  {label:<8} pixels differing from the full-size argmax: {differ} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
