"""The `fastscnn` command: one sub-command per job, each configured by one dataclass.

Set FASTSCNN_TF_LOG=1 to see TensorFlow's own start-up and C++ log, which is hidden otherwise.
"""

import argparse
import importlib
import sys

from fastscnn_tf import config as cfg
from fastscnn_tf import tflog

# name -> (module, config dataclass, job function, one-line help). Modules are imported only
# for the command that runs, so `fastscnn --help` and the light commands never load TensorFlow.
COMMANDS = {
    "summary": ("summary", "SummaryConfig", "run", "layer table, parameters and MACs"),
    "presets": ("list_presets", "PresetsConfig", "run", "trained models shipped in the package"),
    "import-weights": ("weights", "ImportConfig", "run", "import a PyTorch Fast-SCNN checkpoint"),
    "train": ("train", "TrainConfig", "run", "train Fast-SCNN with the paper's recipe"),
    "export": ("export", "ExportConfig", "run", "convert a .keras model to .tflite"),
    "predict": ("predict", "PredictConfig", "run", "segment images; save masks and overlays"),
    "evaluate": ("evaluate", "EvaluateConfig", "run", "per-class IoU, mIoU and confusion matrix"),
    "benchmark": ("benchmark", "BenchmarkConfig", "run", "latency, memory and size of models"),
    "write-data": (
        "data",
        "WriteDataConfig",
        "run_write_data",
        "write a data set's examples as an image/mask folder",
    ),
    "android-assets": (
        "android",
        "AssetsConfig",
        "run",
        "copy an exported model and its labels.txt into the Android app",
    ),
    "serve": (
        "serve",
        "ServeConfig",
        "run",
        "the browser demo (LiteRT.js) with a model, on localhost",
    ),
}
# Commands whose work never loads TensorFlow (benchmark's workers log to a file of their own).
WITHOUT_TENSORFLOW = ("android-assets", "presets", "serve")
# Errors that are the user's to fix (a missing input, an output under a regular file, ...):
# one line and exit 2, no traceback.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


def _module(command):
    """The command's module; one that imports TensorFlow does so without its start-up log."""
    name = "fastscnn_tf." + COMMANDS[command][0]
    if name in sys.modules:
        return sys.modules[name]
    tflog.quiet()
    with tflog.stderr_silenced():
        return importlib.import_module(name)


def _config_class(command):
    return getattr(_module(command), COMMANDS[command][1])


def build_parser(command=None):
    """The `fastscnn` parser; only `command`'s options are added (its module is imported for
    them), so a parser for the top-level `--help` imports no job module."""
    parser = argparse.ArgumentParser(prog="fastscnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (*_, help_text) in COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            cfg.add_arguments(subparser, _config_class(name))
    return parser


def command_in(argv):
    """The sub-command named in `argv` (its first word that is not an option), or None."""
    words = [a for a in argv if not a.startswith("-")]
    return words[0] if words and words[0] in COMMANDS else None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    tflog.quiet()  # before anything imports TensorFlow
    args = build_parser(command_in(argv)).parse_args(argv)
    config_cls = _config_class(args.command)
    job = getattr(_module(args.command), COMMANDS[args.command][2])
    try:
        config = cfg.from_args(config_cls, args)
        cfg.check_outputs(config)  # before any work, not after it
        if args.command not in WITHOUT_TENSORFLOW:
            tflog.import_tensorflow()
        return job(config)
    except USER_ERRORS as error:
        print(f"fastscnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
