"""fastscnn-tf: Fast-SCNN semantic segmentation in TensorFlow/Keras 3.

The package root is light: `import fastscnn_tf` (and `fastscnn --help`) does not start
TensorFlow; the names below load it when first used.
"""

import importlib

# name -> module that defines it
_LAZY = {
    "AdaptiveAveragePooling": "fastscnn_tf.layers",
    "CropLike": "fastscnn_tf.layers",
    "FastSCNN": "fastscnn_tf.model",
    "PadToMultiple": "fastscnn_tf.layers",
    "ResizeLike": "fastscnn_tf.layers",
}

__all__ = ["AdaptiveAveragePooling", "CropLike", "FastSCNN", "PadToMultiple", "ResizeLike"]
__version__ = "0.1.0"


def __getattr__(name):  # PEP 562
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
