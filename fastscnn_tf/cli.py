"""The `fastscnn` command: one sub-command per job, each configured by one dataclass."""

import argparse
import sys

from fastscnn_tf import android, benchmark, data, evaluate, export, predict, summary, train, weights
from fastscnn_tf import config as cfg

# name -> (config dataclass, job function, one-line help)
COMMANDS = {
    "summary": (summary.SummaryConfig, summary.run, "layer table, parameters and MACs"),
    "import-weights": (weights.ImportConfig, weights.run, "import a PyTorch Fast-SCNN checkpoint"),
    "train": (train.TrainConfig, train.run, "train Fast-SCNN with the paper's recipe"),
    "export": (export.ExportConfig, export.run, "convert a .keras model to .tflite"),
    "predict": (predict.PredictConfig, predict.run, "segment images; save masks and overlays"),
    "evaluate": (evaluate.EvaluateConfig, evaluate.run, "per-class IoU, mIoU and confusion matrix"),
    "benchmark": (benchmark.BenchmarkConfig, benchmark.run, "latency, memory and size of models"),
    "write-data": (
        data.WriteDataConfig,
        data.run_write_data,
        "write a data set's examples as an image/mask folder",
    ),
    "android-assets": (
        android.AssetsConfig,
        android.run,
        "copy an exported model and its labels.txt into the Android app",
    ),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastscnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (config_cls, _, help_text) in COMMANDS.items():
        cfg.add_arguments(sub.add_parser(name, help=help_text, description=help_text), config_cls)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    config_cls, job, _ = COMMANDS[args.command]
    try:
        return job(cfg.from_args(config_cls, args))
    except (ValueError, FileNotFoundError) as error:
        print(f"fastscnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
