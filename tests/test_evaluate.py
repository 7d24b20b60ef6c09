import json

import numpy as np
import pytest
from PIL import Image

from fastscnn_tf import data, evaluation, labels, viz
from fastscnn_tf.cli import evaluate
from fastscnn_tf.model import FastSCNN

NUM_CLASSES, CONSTANT = 4, 2
DATASET = "synthetic:6:64x80"


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory):
    """A Fast-SCNN whose classifier predicts class 2 everywhere (zero kernel, one-hot bias)."""
    folder = tmp_path_factory.mktemp("model")
    model = FastSCNN(NUM_CLASSES)
    kernel, bias = model.get_layer("cls_conv").get_weights()
    bias = np.zeros_like(bias)
    bias[CONSTANT] = 10.0
    model.get_layer("cls_conv").set_weights([np.zeros_like(kernel), bias])
    path = folder / "model.keras"
    model.save(path)
    labels.write_labels(folder / "labels.txt", labels.generic(NUM_CLASSES))
    return model, path


def _expected():
    """Scores of a constant prediction, from the label maps alone."""
    source = data.load_source(DATASET, "val", num_classes=NUM_CLASSES)
    masks = np.stack([e["mask"] for e in source.dataset.as_numpy_iterator()])
    valid = masks != source.labels.ignore_index
    counts = np.array([np.sum(valid & (masks == c)) for c in range(NUM_CLASSES)])
    iou = np.where(counts > 0, 0.0, np.nan)
    iou[CONSTANT] = counts[CONSTANT] / valid.sum()  # union = every valid pixel
    return iou, counts, counts[CONSTANT] / valid.sum()


def _check(report, png):
    iou, counts, accuracy = _expected()
    got = np.array([np.nan if c["iou"] is None else c["iou"] for c in report["classes"]])
    np.testing.assert_allclose(got, iou, rtol=1e-9)
    assert report["miou"] == pytest.approx(np.nanmean(iou))
    assert report["pixel_accuracy"] == pytest.approx(accuracy)
    assert [c["pixels"] for c in report["classes"]] == counts.tolist()
    assert report["images"] == 6
    with Image.open(png) as image:
        assert image.mode == "RGB" and min(image.size) > 100


def test_library_evaluation_of_a_runtime_against_label_counts(constant_model):
    """The Python API without the job: a runtime, a source, a report (no files written)."""
    from fastscnn_tf.runtime import KerasRuntime

    model, path = constant_model
    source = data.load_source(DATASET, "val", num_classes=NUM_CLASSES)
    confusion, count = evaluation.evaluate(KerasRuntime(str(path), model=model), source, 4)
    report = evaluation.report(confusion, count, source.labels.names)
    iou, counts, accuracy = _expected()
    got = np.array([np.nan if c["iou"] is None else c["iou"] for c in report["classes"]])
    np.testing.assert_allclose(got, iou, rtol=1e-9)
    assert report["pixel_accuracy"] == pytest.approx(accuracy) and report["images"] == 6
    table = evaluation.format_table(report).splitlines()
    assert sum(line.endswith("    n/a" + f"{0:>13,}") for line in table) == int((counts == 0).sum())
    assert table[-2].split()[-1] == f"{np.nanmean(iou):.4f}"


def test_evaluate_keras_model_against_label_counts(constant_model, tmp_path):
    _, path = constant_model
    config = evaluate.EvaluateConfig(
        model=str(path), dataset=DATASET, out=str(tmp_path), batch_size=4
    )
    report = evaluate.run_evaluation(config)
    with open(tmp_path / "model.val.eval.json") as f:
        assert json.load(f)["miou"] == report["miou"]
    _check(report, tmp_path / "model.val.confusion.png")


def test_evaluate_tflite_model_through_the_same_runtime(constant_model, tmp_path):
    from fastscnn_tf.export import export_tflite

    model, _ = constant_model
    tflite = tmp_path / "constant.tflite"
    export_tflite(
        model,
        str(tflite),
        size=(64, 80),
        precision="float32",
        output_kind="mask",
        labels=labels.generic(NUM_CLASSES),
        metadata=False,
    )
    config = evaluate.EvaluateConfig(model=str(tflite), dataset=DATASET, out=str(tmp_path))
    _check(evaluate.run_evaluation(config), tmp_path / "constant.val.confusion.png")


def test_class_count_mismatch_names_model_and_data(constant_model):
    _, path = constant_model
    config = evaluate.EvaluateConfig(model=str(path), dataset=DATASET, num_classes=5)
    with pytest.raises(ValueError, match="predicts 4 classes"):
        evaluate.run_evaluation(config)


def test_confusion_image_shades_rows():
    image = viz.confusion_image(np.array([[5, 5], [0, 10]]), ["a", "long class name"])
    assert image.size[0] > 2 * 36 and image.mode == "RGB"


def test_evaluate_with_scales_and_flips_writes_its_own_report(constant_model, tmp_path):
    _, path = constant_model
    config = evaluate.EvaluateConfig(
        model=str(path), dataset=DATASET, out=str(tmp_path), scales=(1.0, 1.5), flip=True
    )
    report = evaluate.run_evaluation(config)
    assert report["scales"] == [1.0, 1.5] and report["flip"] is True
    with open(tmp_path / "model.aug.val.eval.json") as f:  # beside the plain report, not over it
        assert json.load(f)["scales"] == [1.0, 1.5]
    _check(report, tmp_path / "model.aug.val.confusion.png")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--scales", "0,1"], "each must be a positive number"),
        (["--scales", "one"], "are not numbers"),
    ],
)
def test_bad_scales_are_refused(constant_model, capsys, flags, message):
    from fastscnn_tf import cli

    _, path = constant_model
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--model", str(path), "--dataset", DATASET, *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_scales_on_a_mask_model_are_refused_before_the_work(constant_model, tmp_path, capsys):
    from fastscnn_tf import cli
    from fastscnn_tf.export import export_tflite

    model, _ = constant_model
    tflite = tmp_path / "mask.tflite"
    export_tflite(
        model, str(tflite), size=(64, 80), precision="float32", output_kind="mask",
        labels=labels.generic(NUM_CLASSES), metadata=False,
    )  # fmt: skip
    argv = ["evaluate", "--model", str(tflite), "--dataset", DATASET, "--flip"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--scales/--flip" in err and "outputs a class mask" in err
    assert not list(tmp_path.glob("*.eval.json"))
