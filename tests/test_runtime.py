import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fastscnn_tf import cli, presets
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.model import FastSCNN
from fastscnn_tf.modelfile import load_keras_model
from fastscnn_tf.runtime import load_runtime

SAMPLES = pathlib.Path(__file__).parents[1] / "fastscnn_tf" / "presets" / "camvid" / "samples"


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def dynamic_model_path(tmp_path_factory):
    model = FastSCNN(5)
    path = tmp_path_factory.mktemp("dynamic") / "model.keras"
    model.save(path)
    return path, model


def test_keras_runtime_matches_model(dynamic_model_path):
    path, model = dynamic_model_path
    runtime = load_runtime(path)
    assert runtime.kind == "keras"
    assert runtime.input_size is None
    assert runtime.num_classes == 5
    assert runtime.labels is None
    images = _images(2, 64, 96)
    # One image at a time: the reference must not share the runtime's batching.
    expected_logits = np.concatenate([model(images[i : i + 1].astype("float32")) for i in range(2)])
    np.testing.assert_allclose(runtime.logits(images), expected_logits, atol=1e-4)
    classes = runtime.segment(images)
    assert classes.dtype == np.int32 and classes.shape == (2, 64, 96)
    np.testing.assert_array_equal(classes, np.argmax(expected_logits, -1))


def test_static_keras_runtime_resizes_in_and_out(tmp_path):
    model = FastSCNN(3, input_shape=(64, 64, 3))
    path = tmp_path / "static.keras"
    model.save(path)
    runtime = load_runtime(path)
    assert runtime.input_size == (64, 64)
    images = _images(1, 96, 128, seed=1)
    classes = runtime.segment(images)
    assert classes.shape == (1, 96, 128)
    small = tf.image.resize(images.astype("float32"), (64, 64)).numpy()
    logits = model(np.clip(np.round(small), 0, 255)).numpy()
    expected = np.argmax(tf.image.resize(logits, (96, 128)).numpy(), -1)
    assert np.mean(classes == expected) > 0.999


def test_labels_beside_model_are_read_and_checked(tmp_path):
    model = FastSCNN(3, input_shape=(64, 64, 3))
    path = tmp_path / "model.keras"
    model.save(path)
    labels_lib.write_labels(tmp_path / "labels.txt", labels_lib.generic(3))
    assert load_runtime(path).labels.names == ("class_0", "class_1", "class_2")
    labels_lib.write_labels(tmp_path / "labels.txt", labels_lib.generic(4))
    with pytest.raises(ValueError, match="labels.txt lists 4 classes .* predicts 3"):
        load_runtime(path)


def test_bad_model_paths(tmp_path):
    with pytest.raises(ValueError, match="expected a .keras or .tflite"):
        load_runtime(tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        load_runtime(tmp_path / "missing.tflite")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="broken.tflite"):
        load_runtime(broken)


def test_bad_images(dynamic_model_path):
    runtime = load_runtime(dynamic_model_path[0])
    with pytest.raises(ValueError, match="uint8"):
        runtime.segment(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        runtime.segment(np.zeros((1, 64, 64, 4), np.uint8))


def test_load_errors_say_what_is_wrong_with_the_model_file(dynamic_model_path, tmp_path):
    payload = dynamic_model_path[0].read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(payload[: len(payload) // 2])  # a download or copy cut short
    with pytest.raises(ValueError, match=r"truncated.keras: not a valid \.keras archive"):
        load_runtime(truncated)
    foreign = tmp_path / "foreign.keras"
    foreign.write_text("an HDF5 file or a web page saved under the wrong name")
    with pytest.raises(ValueError, match=r"foreign.keras: not a valid \.keras archive"):
        load_runtime(foreign)
    for name in ("folder.keras", "folder.tflite"):
        (tmp_path / name).mkdir()
        with pytest.raises(ValueError, match=f"{name} is a directory, not a file"):
            load_runtime(tmp_path / name)
    # The exporter opens .keras files with the same checks.
    with pytest.raises(ValueError, match=r"not a valid \.keras archive"):
        load_keras_model(truncated)


def _averaged_by_hand(model, image, scales, flip):
    """Test-time augmentation written out: each scaled (and mirrored) view through the model,
    its logits back at the image size, softmax, then the mean."""
    h, w = image.shape[1:3]
    views = [image] + ([image[:, :, ::-1]] if flip else [])
    probabilities = []
    for scale in scales:
        size = (round(h * scale), round(w * scale))
        for k, view in enumerate(views):
            seen = tf.image.resize(view.astype("float32"), size).numpy()
            logits = model(np.clip(np.round(seen), 0, 255)).numpy()
            p = tf.nn.softmax(tf.image.resize(logits, (h, w))).numpy()
            probabilities.append(p[:, :, ::-1] if k else p)
    return np.mean(probabilities, axis=0)


def test_multi_scale_and_flip_average_probabilities():
    # The CamVid preset on a street photo, small: a real model that sees several classes.
    runtime = load_runtime("camvid")
    with Image.open(SAMPLES / "0016E5_07959.jpg") as photo:
        image = np.asarray(photo.convert("RGB").resize((96, 72), Image.BILINEAR))[None]
    # Scales are relative to the size the preset reads images at (its "scale", 2 for camvid).
    seen = tuple(scale * runtime.input_scale for scale in (1.0, 1.5))
    expected = _averaged_by_hand(runtime.model, image, seen, flip=True)
    got = runtime.probabilities(image, scales=(1, 1.5), flip=True)
    assert got.shape == (1, 72, 96, 11) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    classes = runtime.segment(image, scales=(1, 1.5), flip=True)
    assert len(np.unique(classes)) > 3
    assert np.mean(classes == np.argmax(expected, -1)) > 0.999
    # Averaging over a view and its mirror is itself mirror-symmetric.
    mirrored = runtime.segment(image[:, :, ::-1].copy(), scales=(1, 1.5), flip=True)
    assert np.mean(mirrored[:, :, ::-1] == classes) > 0.999
    # One scale of 1 without flips is the plain pass.
    np.testing.assert_array_equal(runtime.segment(image, scales=[1.0]), runtime.segment(image))


def test_a_preset_trained_at_twice_its_data_size_reads_images_at_that_scale(
    dynamic_model_path, tmp_path, monkeypatch, capsys
):
    path, model = dynamic_model_path
    folder = tmp_path / "street"
    folder.mkdir()
    (folder / "street.keras").write_bytes(path.read_bytes())
    info = {"description": "test", "num_classes": 5, "input_size": [64, 96], "scale": 2,
            "files": {"float": "street.keras", "int8": "street_int8.tflite"},
            "metric": "none", "float": 0.0, "int8": 0.0}  # fmt: skip
    (folder / "preset.json").write_text(json.dumps(info))
    monkeypatch.setattr(presets, "ROOT", str(tmp_path))
    assert presets.input_scale("street") == 2.0
    assert presets.input_scale("street:int8") == 1.0  # its input size says it
    assert presets.input_scale(str(folder / "street.keras")) == 1.0  # a path is read as it is
    assert "float: images at 2x" in presets.describe()

    runtime = load_runtime("street")
    assert runtime.input_scale == 2.0
    images = _images(2, 32, 48, seed=3)
    # By hand: the images at 64x96 (bilinear, rounded to uint8), the logits back at 32x48.
    seen = np.clip(np.round(tf.image.resize(images.astype("float32"), (64, 96)).numpy()), 0, 255)
    logits = tf.image.resize(model(seen), (32, 48)).numpy()
    classes = runtime.segment(images)
    assert classes.shape == (2, 32, 48)
    assert np.mean(classes == np.argmax(logits, -1)) > 0.999
    assert runtime.logits(images).shape[1:3] == (64, 96)  # its own resolution
    expected = _averaged_by_hand(model, images, (2.0, 3.0), flip=False)
    np.testing.assert_allclose(runtime.probabilities(images, scales=(1, 1.5)), expected, atol=1e-5)

    # Exporting it by name says at what size to export it for the frames it will see.
    output = tmp_path / "street_64x96.tflite"
    argv = ["export", "street", "--size", "64x96", "--precision", "float32", "--output", output]
    assert cli.main([str(v) for v in argv]) == 0 and output.is_file()
    printed = capsys.readouterr().out
    assert "reads images at 2x their size" in printed and "64x96 suits 32x48 frames" in printed


def test_input_scale_needs_a_model_of_any_size(tmp_path):
    from fastscnn_tf.runtime import KerasRuntime

    model = FastSCNN(3, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="input_scale=2 needs a model of any input size"):
        KerasRuntime(str(tmp_path / "static.keras"), model=model, input_scale=2)


def test_augmentation_errors_name_what_is_wrong(tmp_path):
    model = FastSCNN(3, input_shape=(64, 64, 3))
    path = tmp_path / "static.keras"
    model.save(path)
    runtime = load_runtime(path)
    image = _images(1, 64, 64)
    assert runtime.segment(image, flip=True).shape == (1, 64, 64)  # flips need no other size
    with pytest.raises(ValueError, match="fixed input size 64x64"):
        runtime.segment(image, scales=(1, 2))
    for scales, message in [((), "at least one scale"), ((0,), "0 is not a positive")]:
        with pytest.raises(ValueError, match=message):
            runtime.segment(image, scales=scales)
