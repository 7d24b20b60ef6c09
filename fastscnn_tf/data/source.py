"""What every data source returns: a `Source`, one split of a data set with its labels."""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from fastscnn_tf import labels as labels_lib
from fastscnn_tf.labels import LabelSet


def decode_photo(data):
    """An image file's bytes -> uint8 (H, W, 3), JPEGs with the accurate integer IDCT.

    TensorFlow's default JPEG decode uses libjpeg's fast IDCT, off by up to 17 levels (1.1 on
    average) from the file's true pixels, which PIL, browsers and phones all decode exactly;
    the model would train and be evaluated on pixels it never sees in use. The accurate IDCT
    equals PIL's decode bit for bit (tests/test_data.py).
    """
    return tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """A split of a data set: examples in a fixed order and their labels.

    Args:
        dataset: un-batched, un-augmented `{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}`.
        labels: class names, colours and `ignore_index` (the mask value that is not a class).
        num_examples: number of examples, when known.
        name: a human-readable name of the data set and split.
        records: optional light records (file names, indices) in the same order, with
            `decode(record) -> example`; `dataset` is `records.map(decode)`. The pipeline
            shuffles records before decoding, so shuffling costs no decoded-image memory.
        decode: see `records`.
        shuffle_buffer: elements the pipeline's shuffle may hold; default all records (or
            1024 decoded examples when there are no records).
        classes_present: 1 + the largest class the masks hold (the ignore index aside), where
            the source read every mask (folders); None where it did not.
    """

    dataset: tf.data.Dataset
    labels: LabelSet
    num_examples: int | None
    name: str
    records: tf.data.Dataset | None = None
    decode: Callable | None = None
    shuffle_buffer: int | None = None
    classes_present: int | None = None


def names_file_labels(path, num_classes, ignore_index):
    """The labels of a `--class-names` file, checked against `num_classes` and with the
    `ignore_index` given."""
    labels = labels_lib.read_labels(path)
    if num_classes is not None and labels.num_classes != num_classes:
        raise ValueError(
            f"{path}: names {labels.num_classes} classes but num_classes={num_classes}."
        )
    if ignore_index is not None:
        labels = LabelSet(labels.names, labels.colors, ignore_index)
    return labels
