import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fastscnn_tf import data, labels
from fastscnn_tf.data import tfds_source


def _examples(source):
    return [(e["image"].numpy(), e["mask"].numpy()) for e in source.dataset]


def _write_pair(image_dir, mask_dir, stem, image, mask, mask_mode=None, palette=None):
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    Image.fromarray(image).save(os.path.join(image_dir, stem + ".png"))
    m = Image.fromarray(mask) if mask_mode is None else Image.fromarray(mask, mask_mode)
    if palette is not None:
        m.putpalette(palette)
    m.save(os.path.join(mask_dir, stem + ".png"))


def _random_pairs(n, num_classes, size=(12, 16), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    masks = rng.integers(0, num_classes, (n, *size), dtype=np.uint8)
    return images, masks


# --- synthetic and the pipeline --------------------------------------------------------------


def test_synthetic_source_and_pipeline_shapes():
    source = data.load_source("synthetic:6:32x40", "val", num_classes=4)
    assert source.num_examples == 6 and source.labels.num_classes == 4
    assert source.labels.ignore_index == 255
    images, masks = next(iter(data.make_pipeline(source, batch_size=4)))
    assert images.shape == (4, 32, 40, 3) and images.dtype == tf.float32
    assert masks.shape == (4, 32, 40) and masks.dtype == tf.int32
    assert set(np.unique(masks.numpy())) <= {0, 1, 2, 3}
    ds = data.make_pipeline(source, batch_size=4, crop=(24, 24), augment=True, repeat=True)
    images, masks = next(iter(ds))
    assert images.shape == (4, 24, 24, 3) and masks.shape == (4, 24, 24)
    images, masks = next(iter(data.make_pipeline(source, batch_size=2, resize=(16, 20))))
    assert images.shape == (2, 16, 20, 3) and masks.shape == (2, 16, 20)


def test_synthetic_takes_names_from_a_labels_file(tmp_path):
    names = labels.LabelSet(("sea", "boat", "buoy"), ((0, 0, 255), (255, 0, 0), (0, 255, 0)))
    labels.write_labels(tmp_path / "labels.txt", names)
    source = data.load_source("synthetic:4:32x32", class_names=str(tmp_path / "labels.txt"))
    assert source.labels == names
    assert set(np.unique(np.stack([m for _, m in _examples(source)]))) <= {0, 1, 2}
    with pytest.raises(ValueError, match="ignore_index=300"):
        data.load_source("synthetic", ignore_index=300)


def test_pipeline_without_augmentation_returns_the_examples():
    source = data.load_source("synthetic:3:32x40", "train")
    expected = _examples(source)
    batches = list(data.make_pipeline(source, batch_size=2))
    images = np.concatenate([b[0].numpy() for b in batches])
    masks = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(images, np.stack([e[0] for e in expected]).astype(np.float32))
    np.testing.assert_array_equal(masks, np.stack([e[1] for e in expected]))


def test_pipeline_repeats_per_seed():
    source = data.load_source("synthetic:8:32x40", "train", seed=3)

    def take(seed):
        ds = data.make_pipeline(
            source, batch_size=4, crop=(24, 32), augment=True, shuffle=True, repeat=True, seed=seed
        )
        return [(x.numpy(), y.numpy()) for x, y in ds.take(3)]

    a, b, c = take(1), take(1), take(2)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c, strict=True))
    # Epochs differ: the second pass over the 8 examples gets fresh draws.
    assert not np.array_equal(a[0][0], a[2][0])


def test_pipeline_start_equals_skip():
    source = data.load_source("synthetic:5:32x40", "train")
    kwargs = dict(batch_size=2, crop=(24, 24), augment=True, shuffle=True, repeat=True, seed=4)
    skipped = data.make_pipeline(source, **kwargs).skip(3).take(2)
    started = data.make_pipeline(source, start=3, **kwargs).take(2)
    for (xa, ya), (xb, yb) in zip(skipped, started, strict=True):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def test_examples_of_different_sizes_are_padded_with_ignore(tmp_path):
    rng = np.random.default_rng(0)
    for k, size in enumerate([(10, 12), (14, 9)]):
        image = rng.integers(1, 256, (*size, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, size, dtype=np.uint8)
        _write_pair(tmp_path / "images", tmp_path / "masks", f"s{k}", image, mask)
    source = data.load_source(f"folder:{tmp_path}", num_classes=3)
    images, masks = next(iter(data.make_pipeline(source, batch_size=2)))
    assert images.shape == (2, 14, 12, 3)
    assert np.all(masks.numpy()[0, 10:] == 255) and np.all(masks.numpy()[1, :, 9:] == 255)
    assert np.all(images.numpy()[0, 10:] == 0)


def test_process_exits_with_a_live_pipeline_iterator():
    """A Python callback inside tf.data (numpy_function) hangs interpreter exit while an
    iterator is alive; the synthetic source must not need one."""
    code = (
        "from fastscnn_tf import data\n"
        "s = data.load_source('synthetic:40:32x32')\n"
        "it = iter(data.make_pipeline(s, batch_size=2, crop=(16, 16), augment=True,"
        " shuffle=True, repeat=True))\n"
        "next(it)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_pipeline_rejects_augment_without_crop():
    source = data.load_source("synthetic:2:32x32", "train")
    with pytest.raises(ValueError, match="crop"):
        data.make_pipeline(source, batch_size=1, augment=True)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("synthetic:0", "N > 0"),
        ("synthetic:4:8x8", "H, W >= 16"),
        ("nope:x", "unknown kind"),
        ("folder", "folder:PATH"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        data.load_source(spec)


# --- folder ----------------------------------------------------------------------------------


def test_camvid_layout_is_detected_and_paired_by_stem(tmp_path):
    images, masks = _random_pairs(3, 12)  # 0..10 classes, 11 = void
    stems = ["0001TP_b", "0001TP_a", "Seq05_c"]
    for stem, image, mask in zip(stems, images, masks, strict=True):
        _write_pair(tmp_path / "train", tmp_path / "trainannot", stem, image, mask)
    _write_pair(tmp_path / "val", tmp_path / "valannot", "v", images[0], masks[0])
    source = data.load_source(f"folder:{tmp_path}", "train")
    assert source.labels == labels.CAMVID and source.num_examples == 3
    order = np.argsort(stems)
    for (image, mask), k in zip(_examples(source), order, strict=True):
        np.testing.assert_array_equal(image, images[k])
        np.testing.assert_array_equal(mask, masks[k])
    assert data.load_source(f"folder:{tmp_path}", "val").num_examples == 1


@pytest.mark.parametrize("layout", ["images/masks", "split/images", "flat"])
def test_generic_layouts(tmp_path, layout):
    images, masks = _random_pairs(2, 3)
    split_dirs = {
        "images/masks": (tmp_path / "images" / "train", tmp_path / "masks" / "train"),
        "split/images": (tmp_path / "train" / "images", tmp_path / "train" / "masks"),
        "flat": (tmp_path / "images", tmp_path / "masks"),
    }
    for k in range(2):
        _write_pair(*split_dirs[layout], f"img{k}", images[k], masks[k])
    source = data.load_source(f"folder:{tmp_path}", "train", num_classes=3)
    assert source.labels.num_classes == 3 and layout in source.name
    for (image, mask), k in zip(_examples(source), range(2), strict=True):
        np.testing.assert_array_equal(image, images[k])
        np.testing.assert_array_equal(mask, masks[k])
    if layout == "flat":
        with pytest.raises(FileNotFoundError, match="no 'val' split"):
            data.load_source(f"folder:{tmp_path}", "val", num_classes=3)


def test_jpeg_images_and_16_bit_masks(tmp_path):
    images, masks = _random_pairs(1, 3, size=(16, 16))
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "masks")
    Image.fromarray(images[0]).save(tmp_path / "images" / "a.jpg", quality=95)
    Image.fromarray(masks[0].astype(np.uint16)).save(tmp_path / "masks" / "a.png")
    assert Image.open(tmp_path / "masks" / "a.png").mode.startswith("I;16")
    [(image, mask)] = _examples(data.load_source(f"folder:{tmp_path}", num_classes=3))
    np.testing.assert_array_equal(mask, masks[0])
    decoded = np.asarray(Image.open(tmp_path / "images" / "a.jpg").convert("RGB"), int)
    assert image.shape == (16, 16, 3) and np.abs(image - decoded).mean() < 2


def test_jpeg_pixels_are_the_files_own_as_pil_decodes_them(tmp_path):
    """A textured JPEG (4:2:0, quality 75) reads bit for bit as PIL reads it; TensorFlow's
    default fast IDCT does not (so the test can tell)."""
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    photo[::8] = 255  # sharp edges, where the fast IDCT errs most
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "masks")
    Image.fromarray(photo).save(tmp_path / "images" / "a.jpg", quality=75)
    Image.fromarray(np.zeros((96, 128), np.uint8)).save(tmp_path / "masks" / "a.png")
    [(image, _)] = _examples(data.load_source(f"folder:{tmp_path}", num_classes=2))
    expected = np.asarray(Image.open(tmp_path / "images" / "a.jpg").convert("RGB"))
    np.testing.assert_array_equal(image, expected)
    fast = tf.io.decode_jpeg(tf.io.read_file(str(tmp_path / "images" / "a.jpg")), channels=3)
    assert np.abs(fast.numpy().astype(int) - expected).max() > 0


def test_palette_index_masks_keep_their_indices(tmp_path):
    images, masks = _random_pairs(2, 4)
    masks[0, 0, 0] = 255  # VOC-style ignore border
    palette = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, 7)]
    for k in range(2):
        _write_pair(
            tmp_path / "images", tmp_path / "masks", f"p{k}", images[k], masks[k], "P", palette
        )
    source = data.load_source(f"folder:{tmp_path}", num_classes=4)
    for (_, mask), k in zip(_examples(source), range(2), strict=True):
        np.testing.assert_array_equal(mask, masks[k])


def test_palette_masks_that_tf_cannot_map_back_are_refused(tmp_path):
    images, masks = _random_pairs(2, 4)
    flat = [v for i in range(256) for v in (i, 255 - i, 7)]
    _write_pair(tmp_path / "images", tmp_path / "masks", "p0", images[0], masks[0], "P", flat)
    other = flat[:3] + [9, 9, 9] + flat[6:]
    _write_pair(tmp_path / "images", tmp_path / "masks", "p1", images[1], masks[1], "P", other)
    with pytest.raises(ValueError, match="different palettes"):
        data.load_source(f"folder:{tmp_path}", num_classes=4)
    same = flat[:3] * 2 + flat[6:]  # indices 0 and 1 share one colour
    for k in range(2):
        _write_pair(
            tmp_path / "images", tmp_path / "masks", f"p{k}", images[k], masks[k], "P", same
        )
    with pytest.raises(ValueError, match="palette indices 0 and 1 share the colour"):
        data.load_source(f"folder:{tmp_path}", num_classes=4)


def test_colour_masks_map_through_the_labels_file(tmp_path):
    names = labels.LabelSet(("road", "car", "tree"), ((128, 64, 128), (0, 0, 142), (0, 255, 0)))
    labels.write_labels(tmp_path / "labels.txt", names)
    images, masks = _random_pairs(2, 3)
    palette = np.asarray(names.colors, np.uint8)
    for k in range(2):
        _write_pair(tmp_path / "images", tmp_path / "masks", f"c{k}", images[k], palette[masks[k]])
    source = data.load_source(f"folder:{tmp_path}")
    assert source.labels.names == names.names
    for (_, mask), k in zip(_examples(source), range(2), strict=True):
        np.testing.assert_array_equal(mask, masks[k])
    # A colour that is no class is named with its file.
    bad = palette[masks[0]].copy()
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "masks" / "c1.png")
    with pytest.raises(ValueError, match=r"c1\.png: colours not in the palette: #010203"):
        data.load_source(f"folder:{tmp_path}")


def test_folder_sources_count_the_classes_their_masks_hold(tmp_path):
    images, masks = _random_pairs(2, 3)
    masks[:, 0, :2] = (5, 255)  # classes 0..2 and 5, and the ignore index
    for k in range(2):
        _write_pair(tmp_path / "grey" / "images", tmp_path / "grey" / "masks", f"g{k}",
                    images[k], masks[k])  # fmt: skip
    source = data.load_source(f"folder:{tmp_path / 'grey'}", num_classes=8)
    assert source.classes_present == int(masks[masks != 255].max()) + 1 == 6
    # Colour masks count classes, not colours: CamVid's black (void) is the ignore index.
    colours = np.asarray(labels.CAMVID.colors + ((0, 0, 0),), np.uint8)
    camvid = np.where(masks == 255, 11, np.minimum(masks, 4))  # classes 0..4 and void
    _write_pair(tmp_path / "cv" / "train", tmp_path / "cv" / "trainannot", "a", images[0],
                colours[camvid[0]])  # fmt: skip
    assert data.load_source(f"folder:{tmp_path / 'cv'}").classes_present == 5
    assert data.load_source("synthetic:2").classes_present is None  # not read


def test_colour_masks_need_one_colour_per_class(tmp_path):
    names = labels.LabelSet(("road", "car", "tree"), ((1, 2, 3), (9, 9, 9), (1, 2, 3)))
    labels.write_labels(tmp_path / "labels.txt", names)
    images, masks = _random_pairs(1, 3)
    colours = np.asarray(names.colors, np.uint8)
    _write_pair(tmp_path / "images", tmp_path / "masks", "c0", images[0], colours[masks[0]])
    with pytest.raises(ValueError, match="'road' and 'tree' share the colour #010203"):
        data.load_source(f"folder:{tmp_path}")


def test_camvid_colour_masks_use_camvid_palette_and_void(tmp_path):
    images, masks = _random_pairs(1, 12)
    colours = np.asarray(labels.CAMVID.colors + ((0, 0, 0),), np.uint8)
    _write_pair(tmp_path / "train", tmp_path / "trainannot", "a", images[0], colours[masks[0]])
    [(_, mask)] = _examples(data.load_source(f"folder:{tmp_path}"))
    np.testing.assert_array_equal(mask, masks[0])  # void (black) -> 11, the ignore index


# --- folder: bad input, found before training ------------------------------------------------


def _good_folder(root, n=2, num_classes=3):
    images, masks = _random_pairs(n, num_classes)
    for k in range(n):
        _write_pair(root / "images", root / "masks", f"f{k}", images[k], masks[k])
    return images, masks


def test_corrupt_image_is_named(tmp_path):
    _good_folder(tmp_path)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "images" / "f1.jpg")
    os.remove(tmp_path / "images" / "f1.png")
    payload = (tmp_path / "images" / "f1.jpg").read_bytes()
    (tmp_path / "images" / "f1.jpg").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match=r"f1\.jpg: cannot decode image"):
        data.load_source(f"folder:{tmp_path}", num_classes=3)


def test_size_mismatch_is_named(tmp_path):
    _good_folder(tmp_path)
    Image.fromarray(np.zeros((10, 16), np.uint8)).save(tmp_path / "masks" / "f0.png")
    with pytest.raises(ValueError, match=r"f0\.png: mask is 16x10 \(WxH\) but its image"):
        data.load_source(f"folder:{tmp_path}", num_classes=3)


def test_labels_out_of_range_are_named(tmp_path):
    _, masks = _good_folder(tmp_path)
    mask = masks[1].copy()
    mask[0, :2] = (7, 255)  # 7 is out of range, 255 is the ignore index
    Image.fromarray(mask).save(tmp_path / "masks" / "f1.png")
    with pytest.raises(ValueError, match=r"f1\.png: label values outside \[0, 3\).*: 7\n"):
        data.load_source(f"folder:{tmp_path}", num_classes=3)
    # The same data are fine with more classes.
    assert data.load_source(f"folder:{tmp_path}", num_classes=8).num_examples == 2


def test_class_count_disagreeing_with_names_file(tmp_path):
    _good_folder(tmp_path)
    labels.write_labels(tmp_path / "labels.txt", labels.generic(2))
    with pytest.raises(ValueError, match="2 classes"):
        data.load_source(f"folder:{tmp_path}")  # masks hold label 2
    with pytest.raises(ValueError, match="names 2 classes but num_classes=3"):
        data.load_source(f"folder:{tmp_path}", num_classes=3)


def test_unpaired_empty_and_missing_folders(tmp_path):
    _good_folder(tmp_path)
    os.remove(tmp_path / "masks" / "f0.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "stray.png")
    with pytest.raises(ValueError, match=r"1 image\(s\) without a mask.*f0\.png.*stray\.png"):
        data.load_source(f"folder:{tmp_path}", num_classes=3)
    empty = tmp_path / "empty"
    os.makedirs(empty / "images")
    os.makedirs(empty / "masks")
    with pytest.raises(ValueError, match="no images"):
        data.load_source(f"folder:{empty}", num_classes=3)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        data.load_source(f"folder:{tmp_path / 'absent'}", num_classes=3)


def test_unknown_class_count_is_an_error(tmp_path):
    _good_folder(tmp_path)
    with pytest.raises(ValueError, match="pass num_classes= or class_names="):
        data.load_source(f"folder:{tmp_path}")


# --- cityscapes ------------------------------------------------------------------------------

# cityscapesScripts' labels.py: (name, labelId, trainId); 255 = not evaluated.
OFFICIAL_CITYSCAPES = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255),
    ("out of roi", 3, 255), ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, 255), ("rail track", 10, 255),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, 255),
    ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8),
    ("terrain", 22, 9), ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12),
    ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15), ("caravan", 29, 255),
    ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
]  # fmt: skip


def test_cityscapes_label_ids_to_train_ids():
    label_ids = np.array([[row[1] for row in OFFICIAL_CITYSCAPES] + [34, 200, 255]], np.uint8)
    expected = [row[2] for row in OFFICIAL_CITYSCAPES] + [255, 255, 255]
    table = tfds_source.label_table(tfds_source.CITYSCAPES_TRAIN_IDS, 255)
    np.testing.assert_array_equal(table[label_ids][0], expected)
    for name, _, train_id in OFFICIAL_CITYSCAPES:
        if train_id != 255:
            assert labels.CITYSCAPES.names[train_id] == name


def test_cityscapes_without_zips_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(FileNotFoundError, match="leftImg8bit_trainvaltest.zip"):
        data.load_source(f"cityscapes:{tmp_path}")


# --- tensorflow-datasets ---------------------------------------------------------------------


def _store_tfds(data_dir, name, images, masks, splits=("train",)):
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3)),
            "segmentation_mask": tfds.features.Image(shape=(None, None, masks.shape[-1])),
        }
    )
    split_data = {
        split: tf.data.Dataset.from_tensor_slices({"image": images, "segmentation_mask": masks})
        for split in splits
    }
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version="1.0.0",
        features=features,
        split_datasets=split_data,
        data_dir=str(data_dir),
        disable_shuffling=True,
    )


def test_tfds_dataset_by_name_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    images, masks = _random_pairs(10, 3)
    _store_tfds(tmp_path, "tiny_seg", images, masks[..., None])
    train = data.load_source("tfds:tiny_seg", "train", num_classes=3)
    val = data.load_source("tfds:tiny_seg", "val", num_classes=3)
    # No validation split: val is the last 10% of train, train the first 90%.
    assert (train.num_examples, val.num_examples) == (9, 1)
    got = _examples(train) + _examples(val)
    for (image, mask), k in zip(got, range(10), strict=True):
        np.testing.assert_array_equal(image, images[k])
        np.testing.assert_array_equal(mask, masks[k])
    x, y = next(iter(data.make_pipeline(train, batch_size=3, crop=(8, 8), augment=True)))
    assert x.shape == (3, 8, 8, 3) and y.shape == (3, 8, 8)
    too_few = data.load_source("tfds:tiny_seg", "train", num_classes=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside \\[0, 2\\)"):
        _examples(too_few)
    with pytest.raises(ValueError, match="pass num_classes= or class_names="):
        data.load_source("tfds:tiny_seg")


def test_tfds_three_channel_masks_with_a_label_mapping(tmp_path, monkeypatch):
    """scene_parse150's layout: the class in channel 0 (1..100, 0 unlabelled -> ignore)."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(
        tfds_source.TFDS_DATASETS,
        "tiny_ade",
        tfds_source.TfdsLayout(
            "image", "segmentation_mask", labels.generic(100), {1: 0, 2: 1, 3: 2}
        ),
    )
    images, classes = _random_pairs(2, 4)
    instance = np.full_like(classes, 9)
    masks = np.stack([classes, instance, np.zeros_like(classes)], axis=-1)
    _store_tfds(tmp_path, "tiny_ade", images, masks, splits=("train", "validation"))
    source = data.load_source("tfds:tiny_ade", "val")
    assert source.name == "tfds:tiny_ade (validation)"
    for (_, mask), k in zip(_examples(source), range(2), strict=True):
        np.testing.assert_array_equal(mask, np.where(classes[k] == 0, 255, classes[k] - 1))


def test_tfds_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not prepared"):
        data.load_source("tfds:oxford_iiit_pet")
    with pytest.raises(FileNotFoundError, match="tfds:no_such_set: not found"):
        data.load_source("tfds:no_such_set", num_classes=2)


def test_write_folder_round_trips_through_folder_source(tmp_path):
    source = data.load_source("synthetic:4", "val")
    assert data.write_folder(source, str(tmp_path), "val") == 4
    back = data.load_source(f"folder:{tmp_path}", "val")
    assert back.labels.names == source.labels.names
    pairs = zip(source.dataset.as_numpy_iterator(), back.dataset.as_numpy_iterator(), strict=True)
    for a, b in pairs:
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["mask"], b["mask"])


# --- split expressions: several splits, sequences held out, split lists ----------------------


def _sequence_folder(root):
    """CamVid's layout with two 'sequences' in train (AA_*, BB_*) and one in val (CC_*); each
    image is filled with its index, so a selection can be read back from the pixels."""
    stems = {"train": ["AA_001", "AA_002", "BB_001", "BB_002", "BB_003"], "val": ["CC_001"]}
    index = 0
    for split, names in stems.items():
        for stem in names:
            image = np.full((12, 16, 3), index, np.uint8)
            mask = np.full((12, 16), index % 3, np.uint8)
            _write_pair(root / split, root / f"{split}annot", stem, image, mask)
            index += 1
    return {stem: k for k, stem in enumerate(stems["train"] + stems["val"])}


def _indices(source):
    return [int(image[0, 0, 0]) for image, _ in _examples(source)]


@pytest.mark.parametrize(
    "split, stems",
    [
        ("train+val", ["AA_001", "AA_002", "BB_001", "BB_002", "BB_003", "CC_001"]),
        ("val+train[AA]", ["CC_001", "AA_001", "AA_002"]),
        ("train[-BB]+val", ["AA_001", "AA_002", "CC_001"]),
        ("train[BB]", ["BB_001", "BB_002", "BB_003"]),
        ("train[AA_002,BB_003]", ["AA_002", "BB_003"]),
        ("train[BB,-BB_002]", ["BB_001", "BB_003"]),
    ],
)
def test_split_expressions_select_by_split_and_prefix(tmp_path, split, stems):
    index = _sequence_folder(tmp_path)
    source = data.load_source(f"folder:{tmp_path}", split, num_classes=3)
    assert source.num_examples == len(stems)
    assert _indices(source) == [index[s] for s in stems]
    assert split in source.name


def test_split_list_file_keeps_the_listed_stems(tmp_path):
    index = _sequence_folder(tmp_path / "data")
    listing = tmp_path / "list.txt"  # SegNet's train.txt form: "image annotation" paths
    listing.write_text(
        "# held-in frames\n/SegNet/CamVid/train/BB_003.png /SegNet/CamVid/trainannot/BB_003.png\n"
        "AA_001.png\n\n"
    )
    source = data.load_source(f"folder:{tmp_path / 'data'}", f"train[@{listing}]", num_classes=3)
    assert _indices(source) == [index["AA_001"], index["BB_003"]]


@pytest.mark.parametrize(
    "split, match",
    [
        ("train[ZZ]", r"selects no example"),
        ("train+train", r"reads .*AA_001.png twice"),
        ("train[]", r"empty selection"),
        ("train[-]", r"'-' without a prefix"),
        ("train+", r"empty part"),
        ("train[AA", r"cannot read"),
        ("test", r"no 'test' split"),
        ("train[@missing.txt]", r"missing.txt: cannot read the split list"),
    ],
)
def test_bad_split_expressions_are_named(tmp_path, split, match):
    _sequence_folder(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        data.load_source(f"folder:{tmp_path}", split, num_classes=3)


def test_plus_concatenates_any_source_and_selections_need_a_folder():
    both = data.load_source("synthetic:4:32x40", "train+val", num_classes=4)
    train = data.load_source("synthetic:4:32x40", "train", num_classes=4)
    val = data.load_source("synthetic:4:32x40", "val", num_classes=4)
    assert both.num_examples == 8 and both.classes_present is None
    expected = _examples(train) + _examples(val)
    for (image, mask), (want_image, want_mask) in zip(_examples(both), expected, strict=True):
        np.testing.assert_array_equal(image, want_image)
        np.testing.assert_array_equal(mask, want_mask)
    with pytest.raises(ValueError, match="needs a folder: data set"):
        data.load_source("synthetic:4", "train[AA]")
