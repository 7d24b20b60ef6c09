import gzip
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fastscnn_tf import android_mirror
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli import android

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, android.GOLDEN_DIR)


def _golden_model():
    """The model the vectors came from: the one meta.json names (the shipped preset), else a
    copy beside the vectors."""
    with open(os.path.join(GOLDEN, "meta.json"), encoding="utf-8") as f:
        named = json.load(f).get("model")
    return os.path.join(ROOT, named) if named else os.path.join(GOLDEN, android.GOLDEN_MODEL)


GOLDEN_MODEL = _golden_model()
needs_model = pytest.mark.skipif(
    not os.path.isfile(GOLDEN_MODEL), reason="the golden vectors' model is not committed"
)


def read(name, folder=GOLDEN):
    """A golden file's bytes; the vectors (`NAME.bin`) are stored gzip-compressed."""
    if name.endswith(".bin"):
        with gzip.open(os.path.join(folder, name + ".gz"), "rb") as f:
            return f.read()
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def golden():
    meta = json.loads(read("meta.json"))
    h, w = meta["frame"]["height"], meta["frame"]["width"]
    labels = labels_lib.read_labels(os.path.join(GOLDEN, "labels.txt"))
    frame = np.frombuffer(read("frame_argb.bin"), ">u4").reshape(h, w).astype(np.uint32)
    return meta, labels, frame


def test_golden_files_are_small_and_consistent(golden):
    meta, labels, frame = golden
    vectors = [n for n in os.listdir(GOLDEN) if n != android.GOLDEN_MODEL]
    assert sum(os.path.getsize(os.path.join(GOLDEN, n)) for n in vectors) < 1_000_000
    if os.path.isfile(GOLDEN_MODEL):
        assert os.path.getsize(GOLDEN_MODEL) < 2_000_000
    assert list(labels.names) == meta["labels"]
    assert meta["input"]["dtype"] == "uint8" and meta["output_kind"] == "mask"
    assert frame.shape == (meta["frame"]["height"], meta["frame"]["width"])
    assert np.all(frame >> 24 == 0xFF)


def test_android_mirror_reproduces_the_committed_input_and_overlay(golden):
    meta, labels, frame = golden
    in_h, in_w = meta["input"]["shape"][1:3]
    model_input = android_mirror.frame_to_input(frame, in_h, in_w)
    assert model_input.tobytes() == read("input_rgb.bin")

    out_shape = meta["output"]["shape"][1:]
    raw = np.frombuffer(read("output.bin"), np.uint8).reshape(out_shape)
    class_map = android_mirror.decode_output(raw, meta["output_kind"])
    assert class_map.astype(np.uint8).tobytes() == read("class_map.bin")
    assert len(np.unique(class_map)) > 1

    frame_classes = android_mirror.resize_nearest(class_map, *frame.shape)
    overlay = android_mirror.overlay_argb(frame, frame_classes, labels.colors, meta["opacity"])
    assert overlay.astype(">u4").tobytes() == read("overlay_argb.bin")


@needs_model
def test_interpreter_reproduces_the_committed_output(golden):
    from ai_edge_litert.interpreter import Interpreter

    meta, _, _ = golden
    interpreter = Interpreter(model_path=GOLDEN_MODEL)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    model_input = np.frombuffer(read("input_rgb.bin"), np.uint8).reshape(meta["input"]["shape"])
    interpreter.set_tensor(detail["index"], model_input)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert output.tobytes() == read("output.bin")


def model_dir(tmp_path, labels_text=None):
    """A copy of the golden model with its labels beside it, as `fastscnn export` leaves it."""
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copyfile(GOLDEN_MODEL, folder / "model_int8_mask.tflite")
    labels = labels_text if labels_text is not None else read("labels.txt").decode()
    (folder / "model_int8_mask.labels.txt").write_text(labels, encoding="utf-8")
    return folder / "model_int8_mask.tflite"


@needs_model
def test_make_golden_writes_what_the_kotlin_tests_read(tmp_path):
    image = tmp_path / "photo.png"
    y, x = np.mgrid[0:90, 0:120]
    Image.fromarray(np.stack([x * 2, y * 2, (x + y)], -1).astype(np.uint8)).save(image)
    out = tmp_path / "golden"
    meta = android.make_golden(model_dir(tmp_path), image, out, frame_size=(45, 60), opacity=77)

    assert meta["frame"] == {"height": 45, "width": 60} and meta["opacity"] == 77
    assert json.loads((out / "meta.json").read_text()) == meta
    expected_frame = np.asarray(Image.open(image).resize((60, 45), Image.Resampling.BILINEAR))
    frame = np.frombuffer(read("frame_argb.bin", out), ">u4").reshape(45, 60)
    np.testing.assert_array_equal(
        android_mirror.argb_to_rgb(frame.astype(np.uint32)), expected_frame
    )
    in_h, in_w = json.loads(read("meta.json"))["input"]["shape"][1:3]
    sizes = {
        "input_rgb.bin": in_h * in_w * 3,
        "output.bin": in_h * in_w,
        "class_map.bin": in_h * in_w,
        "overlay_argb.bin": 45 * 60 * 4,
    }
    for name, size in sizes.items():
        assert len(read(name, out)) == size, name
    assert (out / "labels.txt").read_bytes() == read("labels.txt")
    with open(GOLDEN_MODEL, "rb") as f:
        assert (out / android.GOLDEN_MODEL).read_bytes() == f.read()

    # A refresh of vectors written unpacked before removes the old files; a folder that holds
    # no vectors of this command's (no meta.json) keeps a file of the same name.
    (out / "output.bin").write_bytes(b"old")
    model = out.parent / "export" / "model_int8_mask.tflite"  # model_dir's copy above
    android.make_golden(model, image, out, frame_size=(45, 60))
    assert not (out / "output.bin").exists() and (out / "output.bin.gz").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "output.bin").write_bytes(b"mine")
    android.make_golden(model, image, other, frame_size=(45, 60))
    assert (other / "output.bin").read_bytes() == b"mine"


@needs_model
def test_copy_assets_puts_model_and_labels_in_place(tmp_path):
    model = model_dir(tmp_path)
    assets = tmp_path / "app" / "src" / "main" / "assets"
    (assets.parent).mkdir(parents=True)
    written = android.copy_assets(model, assets)
    assert written == (str(assets / "fastscnn_int8.tflite"), str(assets / "labels.txt"))
    assert (assets / "fastscnn_int8.tflite").read_bytes() == model.read_bytes()
    assert (assets / "labels.txt").read_bytes() == read("labels.txt")

    # A second copy replaces the files and leaves no temporary files behind.
    (assets / "labels.txt").write_text("stale\n")
    android.copy_assets(model, assets)
    assert (assets / "labels.txt").read_bytes() == read("labels.txt")
    assert sorted(os.listdir(assets)) == ["fastscnn_int8.tflite", "labels.txt"]


@needs_model
def test_android_assets_command(tmp_path, capsys):
    config = android.AssetsConfig(model=str(model_dir(tmp_path)), dest=str(tmp_path / "assets"))
    assert android.run(config) == 0
    assert "fastscnn_int8.tflite" in capsys.readouterr().out
    assert (tmp_path / "assets" / "labels.txt").exists()
    with pytest.raises(ValueError, match="--model is required"):
        android.run(android.AssetsConfig())


def test_copy_assets_explains_missing_or_wrong_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        android.copy_assets(tmp_path / "nope.tflite", tmp_path / "assets")
    not_a_model = tmp_path / "notes.tflite"
    not_a_model.write_bytes(b"hello, world")
    with pytest.raises(ValueError, match="is not a TFLite model"):
        android.copy_assets(not_a_model, tmp_path / "assets")
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"\0\0\0\0TFL3")
    with pytest.raises(FileNotFoundError, match="no labels file beside it"):
        android.copy_assets(fake, tmp_path / "assets")
    assert not (tmp_path / "assets").exists()


@needs_model
def test_copy_assets_rejects_labels_the_model_cannot_use(tmp_path):
    too_many = "# ignore_index=1000\n" + "".join(f"class {i}\n" for i in range(300))
    with pytest.raises(ValueError, match="the labels file belongs to another model"):
        android.copy_assets(model_dir(tmp_path, too_many), tmp_path / "assets")
    assert not (tmp_path / "assets").exists()
    # Without class names inside the file, the uint8 mask's limit is what refuses them.
    with pytest.raises(ValueError, match="256 classes, but labels.txt has 300"):
        android.output_kind(info((1, 8, 8, 3), "uint8"), info((1, 8, 8), "uint8"), 300)


def info(shape, dtype, scale=0.0):
    return {"shape": list(shape), "dtype": dtype, "scale": scale, "zero_point": 0}


def test_output_kind_matches_the_kotlin_model_spec():
    image = info((1, 96, 128, 3), "uint8", 1.0)
    assert android.output_kind(image, info((1, 96, 128), "uint8"), 11) == "mask"
    assert android.output_kind(image, info((1, 12, 16, 11), "float32"), 11) == "logits"
    assert android.output_kind(image, info((1, 12, 16, 11), "int8", 0.1), 11) == "logits"
    cases = [
        (info((1, 96, 128, 3), "float32"), info((1, 96, 128), "uint8"), 11, "uint8 input"),
        (image, info((1, 12, 16, 19), "float32"), 11, "scores 19 classes but labels.txt has 11"),
        (image, info((1, 12, 16, 11), "uint8"), 11, "scale > 0"),
        (image, info((1, 96, 128), "int32"), 11, r"\[1, H, W\] uint8 mask or"),
    ]
    for input_info, output_info, num_labels, message in cases:
        with pytest.raises(ValueError, match=message):
            android.output_kind(input_info, output_info, num_labels)


def test_fallback_palette_matches_the_kotlin_core():
    # Kotlin LabelsTest pins fallbackColor(0, 1, 2, 3, 7, 8) to these PASCAL VOC colours of
    # index + 1; labels.txt lines without a colour get them on both sides.
    colors = labels_lib.default_colors(9)
    expected = [(128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (64, 0, 0), (192, 0, 0)]
    assert [colors[i] for i in (0, 1, 2, 3, 7, 8)] == expected
    parsed = labels_lib.parse_labels("a\nb\t#010203\nc\t\n")
    assert parsed.colors == (colors[0], (1, 2, 3), colors[2])


@needs_model
def test_android_golden_command_reproduces_the_committed_vectors(tmp_path):
    from fastscnn_tf import cli

    meta = json.loads(read("meta.json"))
    image = os.path.join(ROOT, "fastscnn_tf", "presets", "camvid", "samples", meta["source_image"])
    if not os.path.isfile(image):
        pytest.skip("the golden vectors' photo is not a shipped sample")
    out = tmp_path / "golden"
    frame = f"{meta['frame']['height']}x{meta['frame']['width']}"
    argv = ["android-golden", GOLDEN_MODEL, image, "--out", str(out), "--frame-size", frame,
            "--opacity", str(meta["opacity"])]  # fmt: skip
    if "model" in meta:
        argv += ["--model-ref", meta["model"]]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == sorted(os.listdir(GOLDEN))
    for name in sorted(os.listdir(GOLDEN)):
        assert (out / name).read_bytes() == read(name), name
