"""Data sets as tf.data pipelines: where examples come from, and how they reach the network.

`load_source(spec, split)` returns a `Source`: un-batched, un-augmented examples
`{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}` in a fixed order, and their `LabelSet`.
`make_pipeline(source, ...)` turns it into batches for `model.fit`:
records -> shuffle -> repeat -> parallel decode -> resize / augment / crop -> batch -> prefetch.
Sources with light records (folders, tfds) shuffle file names, not decoded images.

Specs:
    synthetic[:N[:HxW]]   built-in scenes (fastscnn_tf.data.synthetic), 8 classes, 128x160,
                          1000 train / 100 val / 100 test examples unless N is given.
    folder:PATH           images and masks paired by file stem (see `folder_split_dirs`).
    cityscapes:PATH       tensorflow-datasets' `cityscapes` built from the zips in PATH;
                          labelIds -> 19 trainIds, everything else 255.
    tfds:NAME             a prepared tensorflow-datasets data set (in $TFDS_DATA_DIR or
                          ~/tensorflow_datasets); known label mappings in `TFDS_DATASETS`.
"""

import os

import tensorflow as tf
from PIL import Image

from fastscnn_tf import augment as aug
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.data import splits
from fastscnn_tf.data.folder import folder_source
from fastscnn_tf.data.source import Source
from fastscnn_tf.data.synthetic import synthetic_source
from fastscnn_tf.data.tfds_source import cityscapes_source, tfds_source
from fastscnn_tf.files import save_png_atomic

AUTOTUNE = tf.data.AUTOTUNE
# Shuffle buffer for decoded examples (sources without light records): bounded memory.
DECODED_SHUFFLE_BUFFER = 1024


def load_source(
    spec,
    split="train",
    *,
    num_classes=None,
    ignore_index=None,
    class_names=None,
    seed=0,
):
    """Open one split of the data set named by `spec` (see the module docstring).

    Args:
        spec: `synthetic[:N[:HxW]]`, `folder:PATH`, `cityscapes:PATH` or `tfds:NAME`.
        split: a split expression: `train`, `val`, `test`, `train+val`, and for folders
            selections by file-name prefix or list such as `train[-0006R0]+val` (see
            `fastscnn_tf.data.splits`).
        num_classes: expected number of classes; checked against the data and the names file.
        ignore_index: mask value to ignore; default 255.
        class_names: path of a `labels.txt` (`name<TAB>#RRGGBB` per line).
        seed: seed of generated data (synthetic).
    """
    if ignore_index is not None and not 0 <= ignore_index <= 255:
        raise ValueError(f"ignore_index={ignore_index}: masks are 8-bit, use 0..255.")
    kind, _, arg = str(spec).partition(":")
    terms = splits.parse_split(split)
    if kind != "folder" and any(term.selects for term in terms):
        raise ValueError(
            f"split {split!r}: selecting examples by file name needs a folder: data set, "
            f"not {spec!r}."
        )
    if kind != "folder" and len(terms) > 1:
        common = {
            "num_classes": num_classes,
            "ignore_index": ignore_index,
            "class_names": class_names,
            "seed": seed,
        }
        return concatenate([load_source(spec, term.name, **common) for term in terms])
    if kind == "synthetic":
        return synthetic_source(arg, split, num_classes, ignore_index, class_names, seed)
    if not arg:
        raise ValueError(f"data set {spec!r}: expected {kind}:PATH or tfds:NAME.")
    if kind == "folder":
        return folder_source(arg, split, num_classes, ignore_index, class_names)
    if kind == "cityscapes":
        return cityscapes_source(arg, split, num_classes, ignore_index, class_names)
    if kind == "tfds":
        return tfds_source(arg, split, num_classes, ignore_index, class_names)
    raise ValueError(
        f"data set {spec!r}: unknown kind {kind!r}; use synthetic[:N[:HxW]], folder:PATH, "
        "cityscapes:PATH or tfds:NAME."
    )


def concatenate(sources):
    """One `Source` of several splits in order; they must share their labels."""
    first = sources[0]
    for other in sources[1:]:
        if other.labels != first.labels:
            raise ValueError(f"{other.name} and {first.name} have different classes.")
    dataset = first.dataset
    for other in sources[1:]:
        dataset = dataset.concatenate(other.dataset)
    counts = [s.num_examples for s in sources]
    present = [s.classes_present for s in sources]
    return Source(
        dataset,
        first.labels,
        None if None in counts else sum(counts),
        " + ".join(s.name for s in sources),
        classes_present=None if None in present else max(present),
    )


def make_pipeline(
    source,
    *,
    batch_size,
    crop=None,
    augment=False,
    shuffle=False,
    repeat=False,
    seed=0,
    resize=None,
    start=0,
    colour=True,
    scale_range=aug.SCALE_RANGE,
    antialias=True,
):
    """Batches of `(images float32 (B, H, W, 3) in [0, 255], masks int32 (B, H, W))`.

    Per example, in order: `resize` (bilinear image, nearest mask) if given; then with
    `augment` the paper's augmentation ending in a random `crop`, else a centre crop/pad to
    `crop` if given. Padding is 0 for images and `ignore_index` for masks. Random draws are
    stateless, keyed by `(seed, position in the stream)`, so a run repeats exactly. Without
    `crop` or `resize`, examples of different sizes are padded (0 / `ignore_index`) to the
    largest in their batch.

    `colour`, `scale_range` and `antialias` are passed to `augment.augment`.

    `start` resumes the stream at that batch: equal to `.skip(start)` on the result, but the
    skipped examples are never augmented, nor decoded when the source has records.
    """
    if augment and crop is None:
        raise ValueError("augment=True needs a crop size (the paper crops after scaling).")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}.")
    ignore_index = source.labels.ignore_index
    if source.records is not None:
        ds, decode = source.records, source.decode
        buffer = source.shuffle_buffer or min(source.num_examples or 100_000, 100_000)
    else:
        ds, decode = source.dataset, None
        buffer = source.shuffle_buffer or min(
            source.num_examples or DECODED_SHUFFLE_BUFFER, DECODED_SHUFFLE_BUFFER
        )
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate().skip(start * batch_size)
    if decode is not None:
        ds = ds.map(lambda i, record: (i, decode(record)), num_parallel_calls=AUTOTUNE)

    def transform(index, example):
        image = tf.cast(example["image"], tf.float32)
        mask = tf.cast(example["mask"], tf.int32)
        if resize is not None:
            image, mask = aug.resize_pair(image, mask, resize)
        if augment:
            sample_seed = tf.stack([tf.cast(seed, tf.int64), index])
            image, mask = aug.augment(
                image, mask, sample_seed, crop, ignore_index, scale_range, colour, antialias
            )
        elif crop is not None:
            image, mask = aug.centre_crop(image, mask, crop, ignore_index)
        return image, mask

    ds = ds.map(transform, num_parallel_calls=AUTOTUNE)
    if crop is None and resize is None:
        ds = ds.padded_batch(batch_size, padding_values=(0.0, tf.cast(ignore_index, tf.int32)))
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def write_folder(source, out, split, count=0):
    """Write a source's examples as a folder data set: `images/SPLIT/*.png`, `masks/SPLIT/*.png`
    (index PNGs) and `labels.txt`; `load_source("folder:OUT", split)` reads it back."""
    image_dir = os.path.join(out, "images", split)
    mask_dir = os.path.join(out, "masks", split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    dataset = source.dataset.take(count) if count > 0 else source.dataset
    written = 0
    for index, example in enumerate(dataset.as_numpy_iterator()):
        stem = f"{index:05d}.png"
        save_png_atomic(Image.fromarray(example["image"]), os.path.join(image_dir, stem))
        save_png_atomic(Image.fromarray(example["mask"]), os.path.join(mask_dir, stem))
        written += 1
    labels_lib.write_labels(os.path.join(out, "labels.txt"), source.labels)
    return written
