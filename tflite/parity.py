"""Parity of exported TFLite models with the Keras model they came from.

    python tflite/parity.py runs/camvid/model.keras --dataset folder:../shared/data/camvid \
        --size 360x480 --precisions float32 float16 int8

Exports each precision (class-mask output, calibrated on the training split for int8), then
runs the Keras model and every export over the same split through `runtime.load_runtime`, and
prints a markdown table: mIoU, pixel accuracy, and the share of pixels where each model agrees
with the Keras model and with the float32 export. Files go to `--out` (default: beside this
script). Existing files are reused unless `--force`.
"""

import argparse
import os
import sys
import time

import numpy as np

from fastscnn_tf import tflog

tflog.import_tensorflow()  # first, without its start-up log (FASTSCNN_TF_LOG=1 shows it)

from fastscnn_tf import data, export, metrics  # noqa: E402
from fastscnn_tf.geometry import parse_size  # noqa: E402
from fastscnn_tf.runtime import load_runtime  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="trained .keras model")
    parser.add_argument("--dataset", required=True, help="data spec, e.g. folder:PATH")
    parser.add_argument("--split", default="val")
    parser.add_argument("--size", type=parse_size, default=(512, 1024), help="export size HxW")
    parser.add_argument("--precisions", nargs="+", default=["float32", "float16", "int8"],
                        choices=export.PRECISIONS)  # fmt: skip
    parser.add_argument("--output-kind", default="mask", choices=export.OUTPUT_KINDS)
    parser.add_argument("--output-stride", type=int, default=1, choices=export.OUTPUT_STRIDES)
    parser.add_argument("--mask-stride", type=int, default=1, choices=export.MASK_STRIDES,
                        help="where a full-size mask takes its argmax (see export.py)")  # fmt: skip
    parser.add_argument("--calibration-dataset", default=None,
                        help="int8 calibration data (default: --dataset, train split)")  # fmt: skip
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--out", default=HERE, help="folder for the exported files")
    parser.add_argument("--force", action="store_true", help="re-export existing files")
    return parser.parse_args(argv)


def export_variants(args):
    paths = {}
    for precision in args.precisions:
        name = os.path.basename(
            export.default_output(
                args.model,
                export.ExportSpec(
                    args.size, precision, args.output_kind, args.output_stride, args.mask_stride
                ),
            )
        )
        path = os.path.join(args.out, name)
        if args.force or not os.path.exists(path):
            start = time.perf_counter()
            export.export_tflite(
                args.model, path, size=args.size, precision=precision,
                output_kind=args.output_kind, output_stride=args.output_stride,
                mask_stride=args.mask_stride,
                representative=args.calibration_dataset or args.dataset,
                calibration_images=args.calibration_images,
            )  # fmt: skip
            print(f"exported {path} in {time.perf_counter() - start:.0f} s", flush=True)
        paths[precision] = path
    return paths


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    paths = export_variants(args)
    runtimes = {"keras": load_runtime(args.model)}
    runtimes.update(
        {p: load_runtime(path, num_threads=args.num_threads) for p, path in paths.items()}
    )
    source = data.load_source(args.dataset, args.split)
    labels = source.labels
    n = labels.num_classes
    confusion = {name: np.zeros((n, n), np.int64) for name in runtimes}
    agree = {name: {"keras": 0, "float32": 0} for name in runtimes}
    pixels = images = 0
    for example in source.dataset.take(args.max_examples or -1).as_numpy_iterator():
        image, mask = example["image"][None], example["mask"][None]
        predictions = {name: rt.segment(image) for name, rt in runtimes.items()}
        for name, prediction in predictions.items():
            confusion[name] += metrics.confusion_matrix(mask, prediction, n, labels.ignore_index)
            for reference in agree[name]:
                if reference in predictions:
                    agree[name][reference] += int(np.sum(prediction == predictions[reference]))
        pixels += mask.size
        images += 1
    print(f"\n{args.model} on {source.name}: {images} images, export size "
          f"{args.size[0]}x{args.size[1]}, output {args.output_kind}\n")  # fmt: skip
    print("| model | file MB | mIoU | pixel acc. | agrees with Keras | agrees with float32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in runtimes:
        result = metrics.scores(confusion[name])
        size = "" if name == "keras" else f"{os.path.getsize(paths[name]) / 1e6:.2f}"
        shares = [
            f"{100 * agree[name][ref] / pixels:.2f}%" if ref in runtimes else "n/a"
            for ref in ("keras", "float32")
        ]
        print(f"| {name} | {size} | {100 * result['miou']:.2f} | "
              f"{100 * result['pixel_accuracy']:.2f} | {shares[0]} | {shares[1]} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
