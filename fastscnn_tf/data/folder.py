"""`folder:PATH` data sets: images and masks paired by file stem (layouts in
`folder_split_dirs`), every pair checked before training (sizes, modes, classes), so a bad
file is named up front rather than failing a run hours in."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from PIL import Image

from fastscnn_tf import labels as labels_lib
from fastscnn_tf.data import splits
from fastscnn_tf.data.source import Source, decode_photo, names_file_labels
from fastscnn_tf.labels import LabelSet

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
        return names_file_labels(names_file, num_classes, ignore_index)
    if layout == "camvid" and num_classes in (None, labels_lib.CAMVID.num_classes):
        camvid = labels_lib.CAMVID
        if ignore_index is None:
            return camvid
        return LabelSet(camvid.names, camvid.colors, ignore_index)
    if num_classes is None:
        raise ValueError(
            f"{root}: the number of classes is unknown; pass num_classes= or class_names= "
            "(a labels file), or put a labels.txt (name<TAB>#RRGGBB per line) in the folder."
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
            "Check num_classes=, ignore_index= and the class names file."
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


def split_pairs(root, split):
    """`(pairs, layout)` of a split expression (`fastscnn_tf.data.splits`): the pairs of each
    split in turn, narrowed to the stems it selects; the layout is the first split's."""
    pairs, layout = [], None
    for term in splits.parse_split(split):
        image_dir, mask_dir, term_layout = folder_split_dirs(root, term.name)
        layout = layout or term_layout
        found = pair_files(image_dir, mask_dir)
        if term.selects:
            by_stem = {os.path.splitext(os.path.basename(i))[0]: (i, m) for i, m in found}
            chosen = splits.select(list(by_stem), term)
            if not chosen:
                raise ValueError(
                    f"{root}: split {split!r} selects no example of {image_dir} "
                    f"(keep {list(term.keep) or 'all'}, drop {list(term.drop) or 'none'}"
                    + (f", listed in {term.list_file}" if term.list_file else "")
                    + ")."
                )
            found = [by_stem[stem] for stem in chosen]
        pairs.extend(found)
    seen = set()
    for image, _ in pairs:
        if image in seen:
            raise ValueError(f"{root}: split {split!r} reads {image} twice.")
        seen.add(image)
    return pairs, layout


def folder_source(root, split, num_classes, ignore_index, class_names):
    """One split expression of a folder data set, every pair checked (see the module)."""
    root = os.path.expanduser(root)
    pairs, layout = split_pairs(root, split)
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
    dataset = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
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
        image = decode_photo(tf.io.read_file(record["image"]))
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
