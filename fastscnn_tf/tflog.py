"""Quiet TensorFlow's start-up log for the command line; `FASTSCNN_TF_LOG=1` keeps it.

Importing TensorFlow prints a dozen lines to stderr (oneDNN, CUDA stubs, CPU features, each
twice: two of its libraries carry their own copy of absl), and its first op an `E0000 ...
failed call to cuInit` on machines without a GPU that reads as a failure. The lines written
while the libraries load come before absl reads any log level, so `TF_CPP_MIN_LOG_LEVEL`
cannot hide them: `import_tensorflow` points file descriptor 2 at /dev/null for the import.
Errors still reach the user as Python exceptions. This module itself imports nothing heavy.
"""

import contextlib
import logging
import os
import sys

ENV = "FASTSCNN_TF_LOG"


def verbose():
    """Whether the user asked for TensorFlow's own logging (`FASTSCNN_TF_LOG=1`)."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def quiet():
    """Set TensorFlow's log levels; takes effect for a TensorFlow imported after this call.
    A level the user set in the environment is kept."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++: no info, warnings or errors
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # Python-side tf_logging


@contextlib.contextmanager
def stderr_silenced():
    """Point file descriptor 2 (what C++ libraries write to) at /dev/null for the block."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow (and Keras) without its start-up log, unless already imported."""
    quiet()
    if "tensorflow" not in sys.modules:
        with stderr_silenced():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    if not verbose():
        from absl import logging as absl_logging  # installed with TensorFlow

        absl_logging.set_verbosity(absl_logging.ERROR)


def interpreter(path, **options):
    """A LiteRT `Interpreter` for the model file at `path`, tensors allocated, without the
    "Created TensorFlow Lite XNNPACK delegate" line LiteRT's C++ writes to stderr when it
    applies the delegate (in `allocate_tensors`); `options` are the Interpreter's
    (num_threads, experimental_op_resolver_type, ...)."""
    from ai_edge_litert.interpreter import Interpreter  # heavy; only the callers need it

    with stderr_silenced():
        result = Interpreter(model_path=os.fspath(path), **options)
        result.allocate_tensors()
    return result
