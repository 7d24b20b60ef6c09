"""tensorflow-datasets sources: `cityscapes:PATH` (tfds' builder run on the official zips in
PATH; labelIds -> the 19 trainIds) and `tfds:NAME`, any prepared data set, with the label
mappings of the known ones in `TFDS_DATASETS`."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from fastscnn_tf import labels as labels_lib
from fastscnn_tf.data.source import Source, decode_photo, names_file_labels
from fastscnn_tf.labels import LabelSet

# Cityscapes labelId -> trainId of the 19 evaluated classes (cityscapesScripts' labels.py);
# every other labelId (void, rare and unevaluated classes) becomes the ignore index.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_ZIPS = ("leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip")
TFDS_SHUFFLE_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class TfdsLayout:
    """Where a tfds data set keeps its image and mask, and how mask values become classes.

    Args:
        image: feature name of the RGB image.
        mask: feature name of the label map.
        labels: its classes, or None to take them from `num_classes` / `class_names`.
        mapping: mask value -> class index; values not listed become the ignore index.
            None keeps values as they are (checked to lie in range).
        channel: the mask channel that holds the class (3-channel masks).
    """

    image: str
    mask: str
    labels: LabelSet | None = None
    mapping: dict | None = None
    channel: int = 0


TFDS_DATASETS = {
    # Trimap: 1 = pet, 2 = background, 3 = "not classified" border (ignored).
    "oxford_iiit_pet": TfdsLayout(
        "image",
        "segmentation_mask",
        LabelSet(("background", "pet"), ((0, 0, 0), (255, 160, 0)), 255),
        {2: 0, 1: 1},
    ),
    # tfds ships the ADE20K instance-challenge masks: R = category (1..100, 0 unlabelled),
    # G = instance id.
    "scene_parse150": TfdsLayout(
        "image", "annotation", labels_lib.generic(100), {k: k - 1 for k in range(1, 101)}
    ),
    "cityscapes": TfdsLayout(
        "image_left", "segmentation_label", labels_lib.CITYSCAPES, CITYSCAPES_TRAIN_IDS
    ),
}


def label_table(mapping, fill, size=65536):
    """A lookup table for `tf.gather`: table[value] = mapping.get(value, fill)."""
    table = np.full(size, fill, np.int32)
    for value, index in mapping.items():
        table[value] = index
    return table


def _tfds_data_dir():
    # Read at call time: tfds itself reads TFDS_DATA_DIR only once, at import.
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def cityscapes_source(path, split, num_classes, ignore_index, class_names):
    import tensorflow_datasets as tfds  # slow import, only for tfds data sets

    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such directory (the Cityscapes download folder).")
    builder = tfds.builder("cityscapes/semantic_segmentation", data_dir=_tfds_data_dir())
    if not builder.is_prepared():
        missing = [z for z in CITYSCAPES_ZIPS if not os.path.isfile(os.path.join(path, z))]
        if missing:
            raise FileNotFoundError(
                f"{path}: missing {', '.join(missing)} (download them from "
                "https://www.cityscapes-dataset.com after registering)."
            )
        # One-time conversion of the zips into TFRecords under the tfds data dir.
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=path))
    layout = TFDS_DATASETS["cityscapes"]
    return _from_tfds_builder(
        builder, "cityscapes", layout, split, num_classes, ignore_index, class_names
    )


def tfds_source(name, split, num_classes, ignore_index, class_names):
    import tensorflow_datasets as tfds

    data_dir = _tfds_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError and friends
        reason = str(e).strip().splitlines()[0]  # tfds appends the list of all data sets
        raise FileNotFoundError(f"tfds:{name}: not found in {data_dir} ({reason}).") from None
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tfds:{name}: not prepared in {data_dir}. Prepare it once with "
            f"`tfds build {name} --data_dir {data_dir}` (this project never downloads)."
        )
    base = name.split("/")[0].split(":")[0]
    layout = TFDS_DATASETS.get(base) or _guess_layout(builder, name)
    return _from_tfds_builder(builder, name, layout, split, num_classes, ignore_index, class_names)


def _guess_layout(builder, name):
    """For data sets not in TFDS_DATASETS: the first RGB image feature and the next image."""
    import tensorflow_datasets as tfds

    images = [
        (key, feature.shape)
        for key, feature in builder.info.features.items()
        if isinstance(feature, tfds.features.Image)
    ]
    rgb = [key for key, shape in images if shape[-1] == 3]
    masks = [key for key, shape in images if key not in rgb[:1]]
    if not rgb or not masks:
        raise ValueError(
            f"tfds:{name}: needs an RGB image feature and a mask image feature; it has "
            f"{', '.join(builder.info.features.keys())}."
        )
    return TfdsLayout(rgb[0], masks[0])


def _tfds_split(builder, name, split):
    """`val` is `validation`; data sets without one hold out the last 10% of `train`."""
    available = set(builder.info.splits.keys())
    if split == "val":
        for candidate in ("validation", "val"):
            if candidate in available:
                return candidate
        if "train" in available:
            return "train[90%:]"
    if split == "train" and not available & {"validation", "val"} and "train" in available:
        return "train[:90%]"
    if split in available:
        return split
    raise ValueError(f"tfds:{name}: no {split!r} split; it has {', '.join(sorted(available))}.")


def _from_tfds_builder(builder, name, layout, split, num_classes, ignore_index, class_names):
    import tensorflow_datasets as tfds

    labels = layout.labels
    if class_names is not None:
        labels = names_file_labels(class_names, num_classes, ignore_index)
    elif labels is None:
        if num_classes is None:
            raise ValueError(
                f"tfds:{name}: unknown classes; pass num_classes= or class_names= (a labels file)."
            )
        labels = labels_lib.generic(num_classes, 255 if ignore_index is None else ignore_index)
    else:
        if num_classes is not None and num_classes != labels.num_classes:
            raise ValueError(
                f"tfds:{name} has {labels.num_classes} classes, not num_classes={num_classes}."
            )
        if ignore_index is not None:
            labels = LabelSet(labels.names, labels.colors, ignore_index)
    mapping = layout.mapping
    if mapping is None:
        mapping = {k: k for k in range(labels.num_classes)}
        mapping[labels.ignore_index] = labels.ignore_index
        strict = True
    else:
        strict = False
    mask_feature = builder.info.features[layout.mask]
    channels = mask_feature.shape[-1]
    mask_dtype = tf.uint16 if mask_feature.dtype == np.uint16 else tf.uint8
    sentinel = 256  # marks values a strict (identity) mapping does not know
    table = tf.constant(label_table(mapping, sentinel if strict else labels.ignore_index))

    tfds_split = _tfds_split(builder, name, split)
    skip = tfds.decode.SkipDecoding()
    raw = builder.as_dataset(
        split=tfds_split, shuffle_files=False, decoders={layout.image: skip, layout.mask: skip}
    )
    records = raw.map(lambda ex: {"image": ex[layout.image], "mask": ex[layout.mask]})

    def decode(record):
        image = decode_photo(record["image"])
        mask = tf.io.decode_png(record["mask"], channels=channels, dtype=mask_dtype)
        mask = tf.gather(table, tf.cast(mask[..., layout.channel], tf.int32))
        if strict:
            check = tf.debugging.assert_less(
                mask,
                sentinel,
                message=f"tfds:{name}: a mask value is outside [0, {labels.num_classes}) and "
                f"is not the ignore index {labels.ignore_index}",
            )
            with tf.control_dependencies([check]):
                mask = tf.identity(mask)
        image = tf.ensure_shape(image, [None, None, 3])
        return {"image": image, "mask": tf.cast(mask, tf.uint8)}

    count = builder.info.splits[tfds_split].num_examples
    # Records hold encoded images: let the shuffle buffer hold about 1 GB of them.
    size = max(int(builder.info.dataset_size or 0), 1)
    buffer = max(64, min(count, int(count * TFDS_SHUFFLE_BYTES / size)))
    dataset = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    name = f"tfds:{name} ({tfds_split})"
    return Source(dataset, labels, count, name, records, decode, shuffle_buffer=buffer)
