"""Data sets as tf.data pipelines (see `pipeline`): one module per kind of source
(`synthetic`, `folder`, `tfds`), all returning a `source.Source`."""

from fastscnn_tf.data.pipeline import load_source, make_pipeline, write_folder
from fastscnn_tf.data.source import Source

__all__ = ["Source", "load_source", "make_pipeline", "write_folder"]
