"""Where the int8 time goes: the preset's int8 graph cut after each stage of Fast-SCNN.

Each cut is exported as the project exports (uint8 image in through `export.convert`, so the
same input path) and returns a single element of the stage's output, so that no large output
is copied; the models are timed alternating call by call and each stage's cost is the
difference between neighbouring cuts. The last line is the full export with the exact mask.

    python benchmarks/int8_stages.py                 # camvid preset, 512x1024, 2 threads
    python benchmarks/int8_stages.py --size 360x480 --threads 1
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (label, last layer of the stage)
STAGES = (
    ("input conversion", "preprocess"),
    ("learning to downsample", "ltd_dsconv2_pw_relu"),
    ("global feature extractor", "gfe_b3_3_add"),
    ("pyramid pooling", "gfe_ppm_out_relu"),
    ("feature fusion + classifier", "cls_conv"),
)


def parse_args(doc, runs):
    """The options of the int8 timing scripts: model, images, size, threads, runs."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--model", default="camvid", help="a .keras model or a preset")
    parser.add_argument("--images", default=os.path.join("..", "shared", "data", "camvid", "val"))
    parser.add_argument("--size", default="512x1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=runs, help="timed calls of each model")
    return parser.parse_args()


def main():
    args = parse_args(__doc__, runs=40)

    import keras
    import tensorflow as tf
    from tflite_ops import load_images, time_alternating

    from fastscnn_tf import export, presets
    from fastscnn_tf.geometry import parse_size
    from fastscnn_tf.modelfile import load_keras_model

    size = parse_size(args.size)
    model = load_keras_model(presets.resolve_model(args.model))
    folded = export.fold_input_normalization(export.with_input_size(model, size))
    images = load_images(args.images, size, 8)
    calibration = lambda: ([x[None].astype(np.float32)] for x in images)  # noqa: E731

    graphs = {}
    for label, layer in STAGES:
        cut = keras.Model(folded.inputs, folded.get_layer(layer).output)

        @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)])
        def serve(image, cut=cut):
            x = tf.quantization.fake_quant_with_min_max_args(
                tf.cast(image, tf.float32), min=0.0, max=255.0
            )
            return cut(x, training=False)[:, :1, :1, :]

        graphs[label] = export.convert(serve, "int8", calibration)
    full = export.build_export_model(model, export.ExportSpec(size, "int8"))
    graphs["exact mask head"] = export.convert(full, "int8", calibration)

    times = time_alternating(graphs, images[0], args.threads, args.runs)

    h, w = size
    print(f"{args.model} int8 at {h}x{w}, {args.threads} threads, median of {args.runs}")
    previous = 0.0
    for label, values in times.items():
        cumulative = 1e3 * float(np.median(values))
        print(f"  {label:30s} {cumulative - previous:6.2f} ms   (up to here {cumulative:6.2f} ms)")
        previous = cumulative
    return 0


if __name__ == "__main__":
    sys.exit(main())
