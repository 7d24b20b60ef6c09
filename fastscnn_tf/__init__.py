"""fastscnn-tf: Fast-SCNN semantic segmentation in TensorFlow/Keras 3.

The package root is light: `import fastscnn_tf` (and `fastscnn --help`) does not start
TensorFlow; the names below load it when first used. Yet every `.keras` file the project
writes (`model.keras`, `best.keras`, the training checkpoint `last.keras` with its optimizer)
loads with `keras.saving.load_model(path, safe_mode=True)` after `import fastscnn_tf`: the
modules that register the project's Keras classes are imported as soon as Keras is.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# name -> module that defines it
_LAZY = {
    "AdaptiveAveragePooling": "fastscnn_tf.layers",
    "CropLike": "fastscnn_tf.layers",
    "FastSCNN": "fastscnn_tf.model",
    "PadToMultiple": "fastscnn_tf.layers",
    "ResizeLike": "fastscnn_tf.layers",
}
# The modules of the classes registered as `fastscnn_tf>Name`, which saved models name.
REGISTERING = (
    "fastscnn_tf.layers",
    "fastscnn_tf.losses",
    "fastscnn_tf.metrics",
    "fastscnn_tf.optim",
)

__all__ = ["AdaptiveAveragePooling", "CropLike", "FastSCNN", "PadToMultiple", "ResizeLike"]
__version__ = "0.1.0"


def __getattr__(name):  # PEP 562
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


def _register():
    for name in REGISTERING:
        importlib.import_module(name)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `keras` is imported it lets the real finder locate it and
    wraps the loader, so that `REGISTERING` is imported right after Keras is. (A `find_spec`
    alone, as TensorFlow's start-up makes, loads nothing, so the finder stays until Keras
    really is executed.)"""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras" or "keras" in sys.modules:
            return None
        sys.meta_path.remove(self)  # no recursion into this finder
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register()

        spec.loader.exec_module = exec_then_register  # this spec's own loader instance
        return spec


if "keras" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
