import keras
import numpy as np
import pytest
from PIL import Image

from fastscnn_tf import cli, export, predict, synthetic
from fastscnn_tf import labels as labels_lib
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
    assert predict.classes_by_area(classes, 4) == [(2, 0.5), (3, 1 / 3), (0, 1 / 6)]


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


def test_small_image_for_a_dynamic_keras_model_names_the_file(tmp_path):
    path = tmp_path / "dynamic.keras"
    FastSCNN(3).save(path)
    Image.fromarray(np.zeros((40, 90, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ValueError, match="tiny.png: image 40x90 is smaller than the 64x64"):
        predict.predict_file(
            load_runtime(path), str(tmp_path / "tiny.png"), str(tmp_path), labels_lib.generic(3)
        )


def test_model_and_labels_that_disagree(model_path, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "m.tflite").write_bytes(open(model_path, "rb").read())
    labels_lib.write_labels(folder / "labels.txt", labels_lib.generic(7))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    argv = ["predict", str(tmp_path / "a.png"), "--model", str(folder / "m.tflite"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "labels.txt lists 7 classes but the model" in capsys.readouterr().err


def test_missing_inputs(model_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        predict.find_images([str(tmp_path / "nothing.png")])
    with pytest.raises(ValueError, match="holds no images"):
        predict.find_images([str(tmp_path)])
