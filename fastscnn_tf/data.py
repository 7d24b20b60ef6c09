"""Data sets as tf.data pipelines: where examples come from, and how they reach the network.

`load_source(spec, split)` returns a `Source`: un-batched, un-augmented examples
`{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}` in a fixed order, and their `LabelSet`.
`make_pipeline(source, ...)` turns it into batches for `model.fit`:
records -> shuffle -> repeat -> parallel decode -> resize / augment / crop -> batch -> prefetch.
Sources with light records (folders, tfds) shuffle file names, not decoded images.

Specs:
    synthetic[:N[:HxW]]   built-in scenes (fastscnn_tf.synthetic), 8 classes, 128x160,
                          1000 train / 100 val / 100 test examples unless N is given.
    folder:PATH           images and masks paired by file stem (see `folder_split_dirs`).
    cityscapes:PATH       tensorflow-datasets' `cityscapes` built from the zips in PATH;
                          labelIds -> 19 trainIds, everything else 255.
    tfds:NAME             a prepared tensorflow-datasets data set (in $TFDS_DATA_DIR or
                          ~/tensorflow_datasets); known label mappings in `TFDS_DATASETS`.
"""

import dataclasses
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from PIL import Image

from fastscnn_tf import augment as aug
from fastscnn_tf import config as cfg
from fastscnn_tf import labels as labels_lib
from fastscnn_tf import synthetic
from fastscnn_tf.files import atomic_path
from fastscnn_tf.labels import LabelSet

AUTOTUNE = tf.data.AUTOTUNE
SYNTHETIC_SIZES = {"train": 1000, "val": 100, "test": 100}
# Shuffle buffer for decoded examples (sources without light records): bounded memory.
DECODED_SHUFFLE_BUFFER = 1024


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
        split: `train`, `val` or `test`.
        num_classes: expected number of classes; checked against the data and the names file.
        ignore_index: mask value to ignore; default 255.
        class_names: path of a `labels.txt` (`name<TAB>#RRGGBB` per line).
        seed: seed of generated data (synthetic).
    """
    if ignore_index is not None and not 0 <= ignore_index <= 255:
        raise ValueError(f"--ignore-index {ignore_index}: masks are 8-bit, use 0..255.")
    kind, _, arg = str(spec).partition(":")
    if kind == "synthetic":
        return _synthetic_source(arg, split, num_classes, ignore_index, class_names, seed)
    if not arg:
        raise ValueError(f"--dataset {spec!r}: expected {kind}:PATH or tfds:NAME.")
    if kind == "folder":
        return _folder_source(arg, split, num_classes, ignore_index, class_names)
    if kind == "cityscapes":
        return _cityscapes_source(arg, split, num_classes, ignore_index, class_names)
    if kind == "tfds":
        return _tfds_source(arg, split, num_classes, ignore_index, class_names)
    raise ValueError(
        f"--dataset {spec!r}: unknown kind {kind!r}; use synthetic[:N[:HxW]], folder:PATH, "
        "cityscapes:PATH or tfds:NAME."
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


# --- synthetic -------------------------------------------------------------------------------


def _synthetic_source(arg, split, num_classes, ignore_index, class_names, seed):
    if split not in synthetic.SPLITS:
        raise ValueError(f"synthetic data has splits {sorted(synthetic.SPLITS)}, not {split!r}.")
    parts = [p for p in arg.split(":") if p] if arg else []
    count = SYNTHETIC_SIZES[split]
    size = synthetic.DEFAULT_SIZE
    try:
        if parts:
            count = int(parts[0])
        if len(parts) > 1:
            size = tuple(int(v) for v in parts[1].lower().split("x"))
        if count <= 0 or len(size) != 2 or min(size) < 16 or len(parts) > 2:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--dataset synthetic:{arg}: expected synthetic[:N[:HxW]] with N > 0 and H, W >= 16."
        ) from None
    if class_names is not None:  # the user's names (and colours) for the generated classes
        labels = _names_file_labels(class_names, num_classes, ignore_index)
        num_classes = labels.num_classes
    num_classes = synthetic.MAX_CLASSES if num_classes is None else num_classes
    if not 2 <= num_classes <= synthetic.MAX_CLASSES:
        raise ValueError(
            f"--num-classes {num_classes}: synthetic data has 2..{synthetic.MAX_CLASSES} classes."
        )
    if class_names is None:
        labels = LabelSet(
            synthetic.class_names(num_classes),
            synthetic.class_colors(num_classes),
            255 if ignore_index is None else ignore_index,
        )

    # Generated up front and held in memory (82 KB a scene at 128x160): a Python generator
    # inside tf.data (numpy_function) would tie its threads to the interpreter, which then
    # hangs at exit while an iterator is still alive.
    scenes = [synthetic.example(i, seed, split, size, num_classes) for i in range(count)]
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": np.stack([s[0] for s in scenes]), "mask": np.stack([s[1] for s in scenes])}
    )
    name = f"synthetic:{count}:{size[0]}x{size[1]} ({split}, seed {seed})"
    return Source(dataset, labels, count, name)


def _names_file_labels(path, num_classes, ignore_index):
    labels = labels_lib.read_labels(path)
    if num_classes is not None and labels.num_classes != num_classes:
        raise ValueError(
            f"{path}: names {labels.num_classes} classes but --num-classes is {num_classes}."
        )
    if ignore_index is not None:
        labels = LabelSet(labels.names, labels.colors, ignore_index)
    return labels


# --- folder ----------------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
MASK_EXTENSIONS = (".png",)  # label maps must be lossless
INDEX_MODES = {"L": "index8", "I;16": "index16", "I;16L": "index16", "I;16B": "index16"}
COLOUR_MODES = ("RGB", "RGBA")
CAMVID_VOID_COLOUR = (0, 0, 0)
MAX_REPORTED_ERRORS = 10


def folder_split_dirs(root, split):
    """`(images_dir, masks_dir, layout)` of one split, by the first of these rules that matches:

    1. `camvid`:       ROOT/{split}/ and ROOT/{split}annot/   (CamVid, SegNet's layout)
    2. `images/masks`: ROOT/images/{split}/ and ROOT/masks/{split}/
    3. `split/images`: ROOT/{split}/images/ and ROOT/{split}/masks/
    4. `flat`:         ROOT/images/ and ROOT/masks/ hold one split, read as `train` only.
    """
    candidates = [
        ("camvid", os.path.join(root, split), os.path.join(root, split + "annot")),
        ("images/masks", os.path.join(root, "images", split), os.path.join(root, "masks", split)),
        ("split/images", os.path.join(root, split, "images"), os.path.join(root, split, "masks")),
    ]
    if split == "train":
        candidates.append(("flat", os.path.join(root, "images"), os.path.join(root, "masks")))
    for layout, images, masks in candidates:
        if os.path.isdir(images) and os.path.isdir(masks):
            return images, masks, layout
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such directory.")
    tried = "; ".join(
        f"{os.path.relpath(i, root)}/ + {os.path.relpath(m, root)}/" for _, i, m in candidates
    )
    raise FileNotFoundError(f"{root}: no {split!r} split (looked for {tried}).")


def pair_files(image_dir, mask_dir):
    """`[(image_path, mask_path)]` paired by file stem, sorted; unpaired files are an error."""
    images = _files_by_stem(image_dir, IMAGE_EXTENSIONS)
    masks = _files_by_stem(mask_dir, MASK_EXTENSIONS)
    if not images:
        raise ValueError(f"{image_dir}: no images ({', '.join(IMAGE_EXTENSIONS)}).")
    problems = []
    no_mask = sorted(images.keys() - masks.keys())
    no_image = sorted(masks.keys() - images.keys())
    if no_mask:
        lossy = _files_by_stem(mask_dir, IMAGE_EXTENSIONS[:2])
        hint = " (masks must be .png; found .jpg masks)" if lossy else ""
        problems.append(
            f"{len(no_mask)} image(s) without a mask in {mask_dir}{hint}, e.g. "
            + ", ".join(os.path.basename(images[s]) for s in no_mask[:5])
        )
    if no_image:
        problems.append(
            f"{len(no_image)} mask(s) without an image in {image_dir}, e.g. "
            + ", ".join(os.path.basename(masks[s]) for s in no_image[:5])
        )
    if problems:
        raise ValueError(
            "unpaired files (images and masks pair by file stem): " + "; ".join(problems)
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _files_by_stem(directory, extensions):
    files = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or ext.lower() not in extensions:
            continue
        if stem in files:
            raise ValueError(
                f"{directory}: two files share the stem {stem!r}: "
                f"{os.path.basename(files[stem])} and {name}."
            )
        files[stem] = os.path.join(directory, name)
    return files


def inspect_pair(image_path, mask_path):
    """Check one pair without a full image decode; returns `(mask_kind, values, palette)`.

    The image header gives its size; a JPEG is decoded at 1/8 scale (`draft`), which still
    reads every byte, so a truncated or corrupt file is caught. `values` are the label values
    (index and palette masks) or the 0xRRGGBB colours (colour masks) present in the mask;
    `palette` is a palette mask's palette (flat RGB tuple), else None.
    """
    try:
        with Image.open(image_path) as image:
            size = image.size
            image.draft("RGB", (max(size[0] // 8, 1), max(size[1] // 8, 1)))
            image.load()
    except Exception as e:  # PIL raises many types for bad files
        raise ValueError(f"{image_path}: cannot decode image ({e}).") from None
    try:
        with Image.open(mask_path) as mask:
            mode, mask_size = mask.mode, mask.size
            palette = tuple(mask.getpalette() or ()) if mode == "P" else None
            pixels = np.asarray(mask)
    except Exception as e:
        raise ValueError(f"{mask_path}: cannot decode mask ({e}).") from None
    if mask_size != size:
        raise ValueError(
            f"{mask_path}: mask is {mask_size[0]}x{mask_size[1]} (WxH) but its image "
            f"{os.path.basename(image_path)} is {size[0]}x{size[1]}."
        )
    if mode == "P":
        return "palette", np.flatnonzero(np.bincount(pixels.ravel(), minlength=256)), palette
    if mode in INDEX_MODES:
        if pixels.dtype == np.uint8:
            return "index8", np.flatnonzero(np.bincount(pixels.ravel(), minlength=256)), None
        return INDEX_MODES[mode], np.unique(pixels), None
    if mode in COLOUR_MODES:
        rgb = pixels[..., :3].astype(np.int32)
        keys = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
        return "colour", keys, None
    raise ValueError(f"{mask_path}: unsupported mask mode {mode!r} (use 8/16-bit grey, P or RGB).")


def validate_pairs(pairs, workers=None):
    """Inspect all pairs in parallel; raise one ValueError listing every bad file (up to 10)."""

    def check(pair):
        try:
            return inspect_pair(*pair), None
        except ValueError as e:
            return None, str(e)

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(check, pairs))
    errors = [error for _, error in results if error]
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise ValueError(
            f"{len(errors)} bad file(s):\n  " + "\n  ".join(errors[:MAX_REPORTED_ERRORS]) + tail
        )
    return [result for result, _ in results]


def _folder_labels(root, layout, num_classes, ignore_index, class_names):
    names_file = class_names
    if names_file is None and os.path.isfile(os.path.join(root, "labels.txt")):
        names_file = os.path.join(root, "labels.txt")
    if names_file is not None:
        return _names_file_labels(names_file, num_classes, ignore_index)
    if layout == "camvid" and num_classes in (None, labels_lib.CAMVID.num_classes):
        camvid = labels_lib.CAMVID
        if ignore_index is None:
            return camvid
        return LabelSet(camvid.names, camvid.colors, ignore_index)
    if num_classes is None:
        raise ValueError(
            f"{root}: the number of classes is unknown; pass --num-classes N or --class-names "
            "FILE, or put a labels.txt (name<TAB>#RRGGBB per line) in the folder."
        )
    return labels_lib.generic(num_classes, 255 if ignore_index is None else ignore_index)


def _rgb_key(r, g, b):
    return (int(r) << 16) | (int(g) << 8) | int(b)


def _unique_colour_table(colours, clash):
    """{0xRRGGBB: index} from `(index, (r, g, b))` pairs; two indices with one colour would make
    colour masks ambiguous, so `clash(first, second, key)` gives the error message."""
    table = {}
    for index, rgb in colours:
        key = _rgb_key(*rgb)
        if key in table:
            raise ValueError(clash(table[key], index, key))
        table[key] = index
    return table


def _colour_table(labels, layout, source):
    """0xRRGGBB -> class index for colour masks (CamVid's black is its void label)."""
    table = _unique_colour_table(
        enumerate(labels.colors),
        lambda first, second, key: (
            f"{source}: classes {labels.names[first]!r} and {labels.names[second]!r} "
            f"share the colour #{key:06X}; colour masks need one colour per class."
        ),
    )
    if layout == "camvid":
        table.setdefault(_rgb_key(*CAMVID_VOID_COLOUR), labels.ignore_index)
    return table


def _check_labels(pairs, inspected, labels, colour_table, root):
    kinds = {kind for kind, _, _ in inspected}
    if len(kinds) > 1:
        first = {}
        for (_, mask_path), (kind, _, _) in zip(pairs, inspected, strict=True):
            first.setdefault(kind, mask_path)
        raise ValueError(
            f"{root}: masks mix formats: "
            + ", ".join(f"{kind} (e.g. {path})" for kind, path in sorted(first.items()))
        )
    kind = kinds.pop()
    allowed = set(range(labels.num_classes)) | {labels.ignore_index}
    errors = []
    for (_, mask_path), (_, values, _) in zip(pairs, inspected, strict=True):
        if kind == "colour":
            bad = [f"#{int(v):06X}" for v in values if int(v) not in colour_table]
            what = "colours not in the palette"
        else:
            bad = [str(int(v)) for v in values if int(v) not in allowed]
            what = (
                f"label values outside [0, {labels.num_classes}) that are not the ignore "
                f"index {labels.ignore_index}"
            )
        if bad:
            errors.append(f"{mask_path}: {what}: {', '.join(bad[:8])}")
    if errors:
        hint = (
            "Check --num-classes / --ignore-index / the class names file."
            if kind != "colour"
            else "Give the palette in a class names file (name<TAB>#RRGGBB)."
        )
        more = len(errors) - MAX_REPORTED_ERRORS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise ValueError(
            f"{len(errors)} mask(s) disagree with the {labels.num_classes} classes:\n  "
            + "\n  ".join(errors[:MAX_REPORTED_ERRORS])
            + tail
            + "\n"
            + hint
        )
    return kind


def _folder_source(root, split, num_classes, ignore_index, class_names):
    root = os.path.expanduser(root)
    image_dir, mask_dir, layout = folder_split_dirs(root, split)
    pairs = pair_files(image_dir, mask_dir)
    labels = _folder_labels(root, layout, num_classes, ignore_index, class_names)
    if not 0 <= labels.ignore_index <= 255:
        raise ValueError(f"{root}: ignore_index {labels.ignore_index}: masks are 8-bit (0..255).")
    inspected = validate_pairs(pairs)
    colour_table = None
    if inspected[0][0] == "colour":
        colour_table = _colour_table(labels, layout, class_names or root)
    kind = _check_labels(pairs, inspected, labels, colour_table, root)
    if kind == "palette":
        colour_table = _palette_table(pairs, inspected, root)
    records = tf.data.Dataset.from_tensor_slices(
        {"image": [p for p, _ in pairs], "mask": [m for _, m in pairs]}
    )
    decode = _folder_decoder(kind, colour_table, labels.ignore_index)
    dataset = records.map(decode, num_parallel_calls=AUTOTUNE)
    name = f"folder:{root} ({split}, {layout} layout, {len(pairs)} examples)"
    present = classes_present(kind, inspected, colour_table, labels.ignore_index)
    return Source(dataset, labels, len(pairs), name, records, decode, classes_present=present)


def classes_present(kind, inspected, colour_table, ignore_index):
    """1 + the largest class index in the masks (`inspect_pair` results), the ignore index
    aside; 0 for masks that hold nothing else."""
    values = set()
    for _, found, _ in inspected:
        values.update(int(v) for v in found)
    if kind == "colour":  # 0xRRGGBB keys; checked to be in the table by `_check_labels`
        values = {colour_table[v] for v in values}
    values.discard(ignore_index)
    return max(values) + 1 if values else 0


def _palette_table(pairs, inspected, root):
    """0xRRGGBB -> index for palette masks, which TF decodes to their palette's colours."""
    palettes = {}
    for (_, mask_path), (_, _, palette) in zip(pairs, inspected, strict=True):
        palettes.setdefault(palette, mask_path)
    if len(palettes) > 1:
        first, second = list(palettes.values())[:2]
        raise ValueError(
            f"{root}: palette masks with different palettes ({first}, {second}); save the "
            "masks as 8-bit grey index PNGs."
        )
    palette = next(iter(palettes))
    used = sorted(set().union(*(values.tolist() for _, values, _ in inspected)))
    for index in used:
        if 3 * index + 3 > len(palette):
            raise ValueError(f"{root}: palette masks use index {index} beyond their palette.")
    return _unique_colour_table(
        ((index, palette[3 * index : 3 * index + 3]) for index in used),
        lambda first, second, key: (
            f"{root}: palette indices {first} and {second} share the colour "
            f"#{key:06X}; save the masks as 8-bit grey index PNGs."
        ),
    )


def _folder_decoder(kind, colour_table, ignore_index):
    if colour_table is not None:
        lookup = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(colour_table), tf.int32),
                tf.constant(list(colour_table.values()), tf.int32),
            ),
            default_value=ignore_index,
        )

    def decode(record):
        image = tf.io.decode_image(
            tf.io.read_file(record["image"]), channels=3, expand_animations=False
        )
        data = tf.io.read_file(record["mask"])
        if colour_table is not None:  # colour masks, and palette masks (TF expands palettes)
            rgb = tf.cast(tf.io.decode_png(data, channels=3), tf.int32)
            key = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
            mask = tf.cast(lookup.lookup(key), tf.uint8)
        else:
            dtype = tf.uint16 if kind == "index16" else tf.uint8
            mask = tf.cast(tf.io.decode_png(data, channels=1, dtype=dtype)[..., 0], tf.uint8)
        mask = tf.ensure_shape(mask, [None, None])
        return {"image": tf.ensure_shape(image, [None, None, 3]), "mask": mask}

    return decode


# --- tensorflow-datasets: cityscapes and any prepared data set --------------------------------

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
        labels: its classes, or None to take them from --num-classes / --class-names.
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


def label_table(mapping, ignore_index, size=65536):
    """A lookup table for `tf.gather`: table[value] = mapping.get(value, ignore_index)."""
    table = np.full(size, ignore_index, np.uint8)
    for value, index in mapping.items():
        table[value] = index
    return table


def cityscapes_train_ids(label_ids, ignore_index=255):
    """Map Cityscapes labelIds (any integer tensor) to the 19 trainIds; others -> ignore."""
    table = tf.constant(label_table(CITYSCAPES_TRAIN_IDS, ignore_index, 256))
    return tf.gather(table, tf.cast(label_ids, tf.int32))


def _tfds_data_dir():
    # Read at call time: tfds itself reads TFDS_DATA_DIR only once, at import.
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _cityscapes_source(path, split, num_classes, ignore_index, class_names):
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


def _tfds_source(name, split, num_classes, ignore_index, class_names):
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
        labels = _names_file_labels(class_names, num_classes, ignore_index)
    elif labels is None:
        if num_classes is None:
            raise ValueError(
                f"tfds:{name}: unknown classes; pass --num-classes N or --class-names FILE."
            )
        labels = labels_lib.generic(num_classes, 255 if ignore_index is None else ignore_index)
    else:
        if num_classes is not None and num_classes != labels.num_classes:
            raise ValueError(
                f"tfds:{name} has {labels.num_classes} classes, not --num-classes {num_classes}."
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
    table = np.full(65536, sentinel if strict else labels.ignore_index, np.int32)
    for value, index in mapping.items():
        table[value] = index
    table = tf.constant(table)

    tfds_split = _tfds_split(builder, name, split)
    skip = tfds.decode.SkipDecoding()
    raw = builder.as_dataset(
        split=tfds_split, shuffle_files=False, decoders={layout.image: skip, layout.mask: skip}
    )
    records = raw.map(lambda ex: {"image": ex[layout.image], "mask": ex[layout.mask]})

    def decode(record):
        image = tf.io.decode_image(record["image"], channels=3, expand_animations=False)
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
    dataset = records.map(decode, num_parallel_calls=AUTOTUNE)
    name = f"tfds:{name} ({tfds_split})"
    return Source(dataset, labels, count, name, records, decode, shuffle_buffer=buffer)


@dataclasses.dataclass
class WriteDataConfig:
    dataset: str = cfg.field(
        "synthetic", "data set spec: synthetic | folder:PATH | tfds:NAME | ..."
    )
    split: str = cfg.field("val", "split to write")
    out: str = cfg.field("runs/data", "output folder: images/SPLIT, masks/SPLIT, labels.txt")
    count: int = cfg.field(8, "number of examples to write (0: all)")
    seed: int = cfg.field(0, "seed of the synthetic generator")


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
        _save_png_atomic(Image.fromarray(example["image"]), os.path.join(image_dir, stem))
        _save_png_atomic(Image.fromarray(example["mask"]), os.path.join(mask_dir, stem))
        written += 1
    labels_lib.write_labels(os.path.join(out, "labels.txt"), source.labels)
    return written


def _save_png_atomic(picture, path):
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def run_write_data(config):
    source = load_source(config.dataset, config.split, seed=config.seed)
    written = write_folder(source, config.out, config.split, config.count)
    print(f"wrote {written} {config.split} examples of {source.name} to {config.out}")
