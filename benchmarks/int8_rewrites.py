"""What each rewrite of the converted int8 graph (`fastscnn_tf.export.rewrite`) saves, and that
it keeps the mask: the preset's default int8 export as the converter writes it, then with each
rewrite added, timed alternating call by call in one process, and compared pixel for pixel.

    python benchmarks/int8_rewrites.py                  # camvid preset, 512x1024, 2 threads
    python benchmarks/int8_rewrites.py --size 360x480 --threads 1 --runs 200
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from int8_stages import parse_args  # noqa: E402


def main():
    args = parse_args(__doc__, runs=300)

    from ai_edge_litert.interpreter import OpResolverType
    from tflite_ops import load_images, run_images, time_alternating

    from fastscnn_tf import export, presets
    from fastscnn_tf.geometry import parse_size
    from fastscnn_tf.modelfile import load_keras_model

    size = parse_size(args.size)
    model = load_keras_model(presets.resolve_model(args.model))
    images = load_images(args.images, size, 101)
    calibration = lambda: ([x[None].astype(np.float32)] for x in images[:8])  # noqa: E731
    serve = export.build_export_model(model, export.ExportSpec(size, "int8"))
    plain = export.convert(serve, "int8", calibration, rewrite=False)
    dequantized = export.dequantize_uint8_input(plain)
    variants = {
        "as converted (CAST input)": plain,
        "+ DEQUANTIZE input": dequantized,
        "+ column pairs (the export)": export.pair_input_columns(dequantized),
    }

    h, w = size
    print(f"{args.model} int8 exact mask at {h}x{w}, {len(images)} images of {args.images}")
    for name, resolver in (
        ("XNNPACK", OpResolverType.AUTO),
        ("builtin", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
    ):
        masks = {
            label: list(run_images(tflite_bytes, images, resolver, args.threads))
            for label, tflite_bytes in variants.items()
        }
        first = np.stack(masks[next(iter(variants))])
        differ = [int(np.sum(np.stack(m) != first)) for m in masks.values()]
        print(f"  {name}: pixels differing from the converter's graph: {differ} of {first.size}")

    times = time_alternating(variants, images[0], args.threads, args.runs, warmup=20)
    print(f"{args.threads} threads, median of {args.runs} calls alternating:")
    for label, values in times.items():
        print(f"  {label:30s} {1e3 * float(np.median(values)):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
