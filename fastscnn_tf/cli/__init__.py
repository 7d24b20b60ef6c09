"""The jobs layer: the `fastscnn` command, one sub-command per job, each a module here with
one config dataclass and its `run`. Jobs import the library (`fastscnn_tf.*`); the library
never imports a job.
"""

import argparse
import importlib
import sys

from fastscnn_tf import tflog
from fastscnn_tf.cli import config as cfg

DESCRIPTION = (
    "The `fastscnn` command: one sub-command per job, each configured by one dataclass. "
    "Set FASTSCNN_TF_LOG=1 to see TensorFlow's own start-up and C++ log, which is hidden "
    "otherwise."
)
# One row per command: its name, the module here that runs it, the module's config dataclass
# and job function, and its help. Modules are imported only for the command that runs, so
# `fastscnn --help` and the light commands never load TensorFlow.
_TABLE = """
summary         summary         SummaryConfig    run         layer table, parameters and MACs
presets         presets         PresetsConfig    run         trained models shipped in the package
import-weights  import_weights  ImportConfig     run         import a PyTorch Fast-SCNN checkpoint
train           train           TrainConfig      run         train Fast-SCNN with the paper's recipe
export          export          ExportConfig     run         convert a .keras model to .tflite
predict         predict         PredictConfig    run         segment images; save masks and overlays
evaluate        evaluate        EvaluateConfig   run         per-class IoU, mIoU, confusion matrix
benchmark       benchmark       BenchmarkConfig  run         latency, memory and size of models
write-data      write_data      WriteDataConfig  run         a data set as an image/mask folder
android-assets  android         AssetsConfig     run         put a model and its labels in the app
android-golden  android         GoldenConfig     run_golden  golden vectors for the Kotlin tests
serve           serve           ServeConfig      run         the browser demo (LiteRT.js), locally
"""
# name -> (module, config dataclass, job function, help)
COMMANDS = {
    name: (module, config, job, " ".join(help_words))
    for name, module, config, job, *help_words in (
        row.split() for row in _TABLE.strip().splitlines()
    )
}
# Commands whose work never loads TensorFlow (benchmark's workers log to a file of their own).
WITHOUT_TENSORFLOW = ("android-assets", "android-golden", "presets", "serve")
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
    name = "fastscnn_tf.cli." + COMMANDS[command][0]
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
    parser = argparse.ArgumentParser(prog="fastscnn", description=DESCRIPTION)
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
        cfg.check_counts(config)
        cfg.check_models(config)
        if args.command not in WITHOUT_TENSORFLOW:
            tflog.import_tensorflow()
        return job(config)
    except USER_ERRORS as error:
        message = cfg.in_flags(str(error), config_cls)
        print(f"fastscnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line, the shell's status for SIGINT
        print(f"fastscnn {args.command}: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
