"""The library trains on its own (#23): preset with a new class count, compile, fit, resume,
int8 export, all in plain Python, no `fastscnn_tf.cli`."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from fastscnn_tf import FastSCNN, cli, data, export, losses, training
from fastscnn_tf.runtime import load_runtime


@pytest.mark.slow
def test_preset_with_new_classes_compile_fit_and_int8_export(tmp_path):
    keras.utils.set_random_seed(0)
    model = FastSCNN.from_preset("camvid", num_classes=6, aux=True)
    preset = FastSCNN.from_preset("camvid")
    # Everything but the classifiers is the preset's; the new heads start fresh.
    np.testing.assert_array_equal(
        model.get_layer("gfe_ppm_out").get_weights()[0],
        preset.get_layer("gfe_ppm_out").get_weights()[0],
    )
    assert model.get_layer("cls_conv").get_weights()[0].shape[-1] == 6
    assert model.output_names == ["logits", "aux_logits"]

    recipe = training.Recipe(ignore_index=255)
    training.compile(model, recipe, total_steps=4)
    source = data.load_source("synthetic:16:64x80", "train", num_classes=6)
    batches = data.make_pipeline(
        source, batch_size=2, crop=(64, 64), augment=True, shuffle=True, repeat=True
    )
    val = data.make_pipeline(data.load_source("synthetic:4:64x80", "val", num_classes=6),
                             batch_size=2)  # fmt: skip
    before = model.get_layer("cls_conv").get_weights()[0].copy()
    history = model.fit(
        batches.map(training.targets(model)),
        epochs=2,
        steps_per_epoch=2,
        validation_data=val.map(training.targets(model)),
        callbacks=training.callbacks(str(tmp_path / "run"), backup_every=1),
        verbose=0,
    )
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(before, model.get_layer("cls_conv").get_weights()[0])
    assert int(model.optimizer.iterations.numpy()) == 4
    for name in ("last.keras", "best.keras", "log.csv"):
        assert (tmp_path / "run" / name).exists(), name

    # A fresh process would resume from the backup at the exact step.
    again = training.compile(FastSCNN(6, aux=True), recipe, total_steps=4)
    assert training.restore(again, str(tmp_path / "run")) == 4
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    final = training.inference_model(model)
    assert final.output_names == ["logits"] and final.input_shape == (None, None, None, 3)
    path = export.export_tflite(final, tmp_path / "mine.tflite", size=(64, 96),
                                precision="int8", representative="synthetic:8:64x96",
                                calibration_images=4, metadata=False)  # fmt: skip
    image = next(iter(source.dataset))["image"].numpy()
    classes = load_runtime(path).segment(image[None])[0]
    assert classes.shape == image.shape[:2] and classes.max() < 6
    assert os.path.exists(tmp_path / "mine.labels.txt")


def test_recipe_reaches_the_compiled_model():
    """Aux weights, OHEM, class weights and the poly schedule come from the Recipe."""
    model = FastSCNN(3, aux=True, aux2=True)
    recipe = training.Recipe(lr=0.01, aux_weight=0.25, ohem=True, class_weights=(1.0, 2.0, 3.0),
                             ignore_index=7, poly_power=1.0)  # fmt: skip
    training.compile(model, recipe, total_steps=10)
    weights = model._compile_loss._user_loss_weights
    assert weights == {"logits": 1.0, "aux_logits": 0.25, "aux2_logits": 0.25}
    loss = model.loss["logits"]
    assert isinstance(loss, losses.SegmentationCrossEntropy)
    assert loss.class_weights == [1.0, 2.0, 3.0] and loss.ignore_index == 7
    assert loss.ohem_threshold == 0.7
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)  # step 0
    model.optimizer.iterations.assign(5)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)  # power 1: linear
    with pytest.raises(ValueError, match="total_steps"):
        training.compile(FastSCNN(3), total_steps=0)


def test_configure_threads_applies_before_tensorflow_runs_and_reports_after():
    """A fresh process takes the thread settings; once TensorFlow has run an op they are fixed,
    and the function says so instead of raising (the same settings count as applied)."""
    code = (
        "import tensorflow as tf\n"
        "from fastscnn_tf import training\n"
        "first = training.configure_threads(1, 2)\n"
        "tf.constant(1.0) + 1.0\n"
        "t = tf.config.threading\n"
        "print(first, t.get_inter_op_parallelism_threads(), t.get_intra_op_parallelism_threads(),"
        " training.configure_threads(3, 0), training.configure_threads(1, 2))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "1", "2", "False", "True"]


def test_train_refuses_negative_thread_counts(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic", "--inter-op-threads", "-1",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--inter-op-threads must be 0 or more" in err
    assert not (tmp_path / "run").exists()


def test_validation_data_is_cut_to_the_steps_read():
    source = data.load_source("synthetic:10", "val")
    names = training.output_names(aux=True)
    whole = list(training.validation_data(source, names, batch_size=4))
    cut = list(training.validation_data(source, names, batch_size=4, steps=2))
    assert [len(x) for x, _ in whole] == [4, 4, 2] and len(cut) == 2
    for (x, y), (x_cut, y_cut) in zip(whole, cut, strict=False):  # the same first batches
        np.testing.assert_array_equal(x, x_cut)
        assert sorted(y_cut) == sorted(names)
        np.testing.assert_array_equal(y["aux_logits"], y_cut["logits"])


def test_class_weights_of_a_source_are_ennets_log_weights():
    source = data.load_source("synthetic:6:64x80", "train", num_classes=4)
    masks = np.stack([e["mask"] for e in source.dataset.as_numpy_iterator()])
    labelled = masks[masks != source.labels.ignore_index]
    share = np.array([np.mean(labelled == c) for c in range(4)])
    expected = np.where(share > 0, 1 / np.log(1.10 + share), 0.0)
    got = training.class_weights(source, 4, source.labels.ignore_index, kind="log", c=1.10)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="'median' or 'log'"):
        training.class_weights(source, 4, source.labels.ignore_index, kind="inverse")
