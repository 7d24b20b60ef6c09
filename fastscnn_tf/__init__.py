"""fastscnn-tf: Fast-SCNN semantic segmentation in TensorFlow/Keras 3."""

from fastscnn_tf.layers import AdaptiveAveragePooling, ResizeLike
from fastscnn_tf.model import FastSCNN

__all__ = ["AdaptiveAveragePooling", "FastSCNN", "ResizeLike"]
__version__ = "0.1.0"
