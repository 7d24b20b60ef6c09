import hashlib
import os

import keras
import numpy as np
import pytest
from PIL import Image

from fastscnn_tf import cli, export, pngstream, viz
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli import predict
from fastscnn_tf.data import synthetic
from fastscnn_tf.model import FastSCNN
from fastscnn_tf.runtime import load_runtime

SIZE = (64, 96)
LABELS = labels_lib.LabelSet(synthetic.class_names(4), synthetic.class_colors(4), ignore_index=255)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(5)
    folder = tmp_path_factory.mktemp("model")
    return export.export_tflite(
        FastSCNN(LABELS.num_classes), folder / "m.tflite", size=SIZE, precision="float32",
        output_kind="mask", labels=LABELS, metadata=False,
    )  # fmt: skip


def test_predict_writes_masks_and_overlays_at_image_size(model_path, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rgb = synthetic.example(0, size=(80, 120))[0]  # not the model's 64x96
    Image.fromarray(rgb).save(inputs / "scene.png")
    Image.fromarray(rgb[..., 0]).save(inputs / "grey.png")
    out = tmp_path / "out"
    assert cli.main(["predict", str(inputs), "--model", str(model_path), "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert "converted L image to RGB" in log and "[2/2]" in log

    classes = np.asarray(Image.open(out / "scene_classes.png"))
    expected = load_runtime(model_path).segment(rgb[None])[0]
    np.testing.assert_array_equal(classes, expected)
    mask = np.asarray(Image.open(out / "scene_mask.png"))
    palette = np.array(LABELS.colors, np.uint8)
    np.testing.assert_array_equal(mask, palette[classes])
    overlay = np.asarray(Image.open(out / "scene_overlay.png"))
    assert overlay.shape[0] == 80 and overlay.shape[1] > 120  # legend panel on the right
    blended = (0.5 * rgb.astype(float) + 0.5 * palette[classes]).round()
    assert np.abs(overlay[:, :120].astype(float) - blended).max() <= 1
    assert (out / "grey_overlay.png").exists()


def test_legend_lists_classes_by_area():
    classes = np.array([[0, 2, 2], [2, 3, 3]])
    assert viz.classes_by_area(classes, 4) == [(2, 0.5), (3, 1 / 3), (0, 1 / 6)]


def test_corrupt_and_unsupported_images_name_the_file(model_path, tmp_path):
    runtime = load_runtime(model_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        predict.predict_file(runtime, str(broken), str(tmp_path), LABELS)
    deep = tmp_path / "deep.png"
    Image.new("I;16", (70, 70)).save(deep)
    with pytest.raises(ValueError, match="deep.png: image mode I;16"):
        predict.predict_file(runtime, str(deep), str(tmp_path), LABELS)


def test_small_image_for_a_dynamic_keras_model_is_scaled_up_as_a_static_one(tmp_path):
    """One rule for every model: the network sees at least 64x64, the outputs keep the photo's
    size (a static .tflite resizes to its input; the dynamic .keras scales the photo up)."""
    path = tmp_path / "dynamic.keras"
    keras.utils.set_random_seed(3)
    FastSCNN(3).save(path)
    tiny = synthetic.example(0, size=(40, 90))[0]
    Image.fromarray(tiny).save(tmp_path / "tiny.png")
    runtime = load_runtime(path)
    outputs = predict.predict_file(runtime, str(tmp_path / "tiny.png"), str(tmp_path / "o"),
                                   labels_lib.generic(3))  # fmt: skip
    classes = np.asarray(Image.open(outputs["classes"]))
    seen = np.asarray(Image.fromarray(tiny).resize((144, 64), Image.Resampling.BILINEAR))
    expected = runtime.segment(seen[None])[0].astype(np.uint8)
    # pixel centres: output pixel y reads row floor((y + 0.5) * 64 / 40)
    rows, cols = ((2 * np.arange(40) + 1) * 64) // 80, ((2 * np.arange(90) + 1) * 144) // 180
    np.testing.assert_array_equal(classes, expected[rows][:, cols])


def test_model_and_labels_that_disagree(model_path, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "m.tflite").write_bytes(open(model_path, "rb").read())
    labels_lib.write_labels(folder / "labels.txt", labels_lib.generic(7))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    argv = ["predict", str(tmp_path / "a.png"), "--model", str(folder / "m.tflite"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "the labels file belongs to another model" in capsys.readouterr().err


def test_missing_inputs(model_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        predict.find_images([str(tmp_path / "nothing.png")])
    with pytest.raises(ValueError, match="holds no images"):
        predict.find_images([str(tmp_path)])


# --- bounded memory, all-or-nothing outputs, animated images -----------------------------------


def test_network_size_keeps_the_aspect_and_the_minimum():
    assert predict.network_size((4000, 6000), 2048) == (1365, 2048)
    assert predict.network_size((4000, 6000), 0) == (4000, 6000)
    assert predict.network_size((100, 120), 2048) == (100, 120)
    # A long strip keeps the short side the network needs, not max_size's 51 pixels.
    assert predict.network_size((100, 4000), 2048, min_side=64) == (64, 2560)
    # A photo smaller than the network needs is scaled up (as a static-size model does).
    assert predict.network_size((40, 90), 2048, min_side=64) == (64, 144)
    assert predict.network_size((40, 90), 0, min_side=64) == (64, 144)


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = FastSCNN(LABELS.num_classes)
    path = tmp_path_factory.mktemp("dynamic") / "m.keras"
    model.save(path)
    return model, path


def seen_sizes(monkeypatch):
    """The `(h, w)` of every batch a Keras runtime runs from now on, in order."""
    from fastscnn_tf import runtime as runtime_lib

    sizes = []
    original = runtime_lib.KerasRuntime._run

    def spy(self, images):
        sizes.append(images.shape[1:3])
        return original(self, images)

    monkeypatch.setattr(runtime_lib.KerasRuntime, "_run", spy)
    return sizes


@pytest.mark.parametrize("max_size,seen", [(128, (85, 128)), (0, (128, 192))])
def test_max_size_bounds_what_the_network_sees(dynamic_model, tmp_path, monkeypatch, max_size,
                                               seen):  # fmt: skip
    model, path = dynamic_model
    shapes = seen_sizes(monkeypatch)
    rgb = synthetic.example(3, size=(128, 192))[0]
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "photo.png"), "--model", str(path), "--out", str(out),
            "--max-size", str(max_size)]  # fmt: skip
    assert cli.main(argv) == 0
    assert shapes == [seen]
    classes = np.asarray(Image.open(out / "photo_classes.png"))
    assert classes.shape == (128, 192)
    # Independently: PIL's bilinear downscale, the model's argmax, nearest back up.
    small = np.asarray(Image.fromarray(rgb).resize(seen[::-1], Image.Resampling.BILINEAR))
    small_classes = np.argmax(model(small[None].astype(np.float32))[0], axis=-1)
    rows = (2 * np.arange(128) + 1) * seen[0] // (2 * 128)
    cols = (2 * np.arange(192) + 1) * seen[1] // (2 * 192)
    expected = small_classes[rows][:, cols]
    assert np.mean(classes == expected) > 0.999  # float noise may flip a tie


def test_scales_and_flips_run_each_view_and_average(dynamic_model, tmp_path, monkeypatch):
    _, path = dynamic_model
    rgb = synthetic.example(4, size=(128, 192))[0]
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    expected = load_runtime(path).segment(rgb[None], scales=(1, 1.5), flip=True)[0]
    shapes = seen_sizes(monkeypatch)
    argv = ["predict", str(tmp_path / "photo.png"), "--model", str(path), "--out",
            str(tmp_path / "out"), "--max-size", "0", "--scales", "1,1.5", "--flip"]  # fmt: skip
    assert cli.main(argv) == 0
    assert shapes == [(128, 192), (128, 192), (192, 288), (192, 288)]
    classes = np.asarray(Image.open(tmp_path / "out" / "photo_classes.png"))
    np.testing.assert_array_equal(classes, expected)


def test_flips_of_a_mask_model_are_refused(model_path, tmp_path, capsys):
    Image.fromarray(synthetic.example(0, size=SIZE)[0]).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "photo.png"), "--model", str(model_path), "--out", str(out),
            "--flip"]  # fmt: skip
    assert cli.main(argv) == 2
    assert "--scales/--flip" in capsys.readouterr().err and not out.exists()


def test_max_size_below_what_the_network_needs(dynamic_model, tmp_path, capsys):
    argv = ["predict", str(tmp_path), "--model", str(dynamic_model[1]), "--max-size", "32"]
    assert cli.main(argv) == 2
    assert "--max-size 32: Fast-SCNN needs at least 64" in capsys.readouterr().err


def test_photo_above_the_decompression_bomb_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")  # 1600 pixels: PIL only warns
    with pytest.raises(ValueError, match=r"big.png: the 40x40 image has 1,600 pixels, more than"):
        predict.read_rgb(str(tmp_path / "big.png"))
    Image.new("RGB", (64, 64)).save(tmp_path / "bomb.png")  # above 2x: PIL refuses to open it
    with pytest.raises(ValueError, match="bomb.png: too large to decode safely"):
        predict.read_rgb(str(tmp_path / "bomb.png"))


def test_animated_image_says_only_its_first_frame_is_segmented(tmp_path):
    frames = [
        Image.fromarray(synthetic.example(i, size=(64, 64))[0]).convert(
            "P", palette=Image.Palette.ADAPTIVE
        )
        for i in range(2)
    ]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100)
    rgb, note = predict.read_rgb(str(tmp_path / "clip.gif"))
    assert "clip.gif: 2 frames (animated or multi-page); segmented the first" in note
    np.testing.assert_array_equal(rgb, np.asarray(frames[0].convert("RGB")))


def test_an_image_gets_all_three_outputs_or_none(model_path, tmp_path, monkeypatch):
    Image.fromarray(synthetic.example(0, size=(64, 96))[0]).save(tmp_path / "a.png")
    out = tmp_path / "out"
    closed = []
    original = pngstream.PNGWriter.close

    def close(self):  # the third file fails as it ends, after two were complete
        if len(closed) == 2:
            raise OSError("disk full")
        closed.append(self)
        return original(self)

    monkeypatch.setattr(pngstream.PNGWriter, "close", close)
    runtime = load_runtime(model_path)
    with pytest.raises(OSError, match="disk full"):
        predict.predict_file(runtime, str(tmp_path / "a.png"), str(out), LABELS)
    assert os.listdir(out) == []  # neither the two PNGs written nor their temporaries


# --- never replace a user's file ----------------------------------------------------------------


def _checksums(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_out_in_the_input_folder_never_replaces_a_photo(model_path, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = synthetic.example(0, size=(64, 96))[0]
    Image.fromarray(rgb).save(photos / "street.jpg")
    Image.fromarray(rgb[::-1]).save(photos / "street_mask.png")  # a photo, named like an output
    before = _checksums(photos)
    argv = ["predict", str(photos), "--model", str(model_path), "--out", str(photos)]
    assert cli.main(argv) == 2
    assert "is the input folder" in capsys.readouterr().err
    files = [str(photos / "street.jpg"), str(photos / "street_mask.png")]
    argv = ["predict", *files, "--model", str(model_path), "--out", str(photos)]
    assert cli.main(argv) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert _checksums(photos) == before  # not one byte of a photo changed, nothing added


def test_inputs_sharing_a_stem_get_outputs_of_their_own(model_path, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    first, second = synthetic.example(0, size=(64, 96))[0], synthetic.example(1, size=(64, 96))[0]
    Image.fromarray(first).save(photos / "dup.png")
    Image.fromarray(second).save(photos / "dup.bmp")
    out = tmp_path / "out"
    assert cli.main(["predict", str(photos), "--model", str(model_path), "--out", str(out)]) == 0
    runtime = load_runtime(model_path)
    for name, rgb in (("dup_png", first), ("dup_bmp", second)):
        classes = np.asarray(Image.open(out / f"{name}_classes.png"))
        np.testing.assert_array_equal(classes, runtime.segment(rgb[None])[0])
    assert len(os.listdir(out)) == 6


def test_a_second_run_does_not_replace_the_first_without_overwrite(model_path, tmp_path, capsys):
    Image.fromarray(synthetic.example(0, size=(64, 96))[0]).save(tmp_path / "a.png")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "a.png"), "--model", str(model_path), "--out", str(out)]
    assert cli.main(argv) == 0
    (out / "a_mask.png").write_bytes(b"the user's own edit")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "exist already" in err and "--overwrite" in err
    assert (out / "a_mask.png").read_bytes() == b"the user's own edit"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert (out / "a_mask.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_photo_is_skipped_and_reported_at_the_end(model_path, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.fromarray(synthetic.example(k, size=(64, 96))[0]).save(photos / f"p{k}.png")
    (photos / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = tmp_path / "out"
    assert cli.main(["predict", str(photos), "--model", str(model_path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "[3/3]" in captured.out and "1 of 3 image(s) failed" in captured.err
    assert "p1.png: not a readable image" in captured.err
    assert sorted(os.listdir(out)) == sorted(
        f"p{k}_{kind}.png" for k in (0, 2) for kind in predict.OUTPUT_KINDS
    )
    broken_only = tmp_path / "broken"
    broken_only.mkdir()
    (broken_only / "x.png").write_bytes(b"not an image")
    argv = ["predict", str(broken_only), "--model", str(model_path), "--out", str(tmp_path / "o2")]
    assert cli.main(argv) == 2
    assert not (tmp_path / "o2").exists()  # --out appears with the first output, not before


def test_a_rename_that_fails_midway_puts_the_earlier_files_back(tmp_path, monkeypatch):
    from fastscnn_tf import files

    targets = [tmp_path / "a_mask.png", tmp_path / "a_overlay.png", tmp_path / "a_classes.png"]
    targets[0].write_bytes(b"old mask")
    original, calls = os.replace, []

    def replace(source, destination):
        calls.extend([destination] if destination in map(str, targets) else [])
        if len(calls) == 2 and destination == calls[-1] and destination == str(targets[1]):
            raise OSError("disk full")
        return original(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        with files.atomic_paths(targets) as temporaries:
            for tmp in temporaries:
                open(tmp, "wb").write(b"new")
    monkeypatch.setattr(os, "replace", original)
    assert targets[0].read_bytes() == b"old mask"
    assert sorted(os.listdir(tmp_path)) == ["a_mask.png"]  # no new file, no temporary


def test_streamed_png_equals_the_picture_written_whole(tmp_path):
    """`pngstream` bands make the same pixels as PIL's one-shot PNG, for RGB and grey."""
    rng = np.random.default_rng(0)
    for mode, shape in (("RGB", (70, 33, 3)), ("L", (70, 33))):
        picture = rng.integers(0, 256, shape, dtype=np.uint8)
        path = tmp_path / f"{mode}.png"
        with open(path, "wb") as f:
            writer = pngstream.PNGWriter(f, 33, 70, mode)
            for start in range(0, 70, 16):  # uneven bands, the last one short
                writer.write(picture[start : start + 16])
            writer.close()
        with Image.open(path) as read:
            assert read.mode == mode
            np.testing.assert_array_equal(np.asarray(read), picture)
    with pytest.raises(ValueError, match="30 of 70 rows"):
        with open(tmp_path / "short.png", "wb") as f:
            writer = pngstream.PNGWriter(f, 33, 70, "L")
            writer.write(picture[:30])
            writer.close()


def test_legend_shares_of_a_small_map_weigh_each_pixel_by_what_it_stands_for():
    small = np.array([[0, 1], [1, 2]], np.uint8)
    # Scaled up to 3x3 nearest: rows (0, 1, 1), cols (0, 1, 1) -> class 0 on 1 pixel, 1 on 4,
    # 2 on 4; counted on the 3x3 map itself:
    rows, cols = np.array([0, 1, 1]), np.array([0, 1, 1])
    big = small[rows][:, cols]
    weights = np.outer(np.bincount(rows, minlength=2), np.bincount(cols, minlength=2))
    assert viz.classes_by_area(small, 3, weights) == viz.classes_by_area(big, 3)
