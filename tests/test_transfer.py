"""`fastscnn train --init-from`: weights copied by layer name, class-dependent layers fresh."""

import numpy as np
import pytest

from fastscnn_tf import cli, transfer, weights
from fastscnn_tf.cli import train
from fastscnn_tf.model import FastSCNN

from helpers import randomize_batchnorm

# The only layers whose shape depends on the class count.
CLASS_LAYERS = {"cls_conv", "aux_cls", "aux2_cls"}


def _trained_like(num_classes, aux=False, seed=1):
    """A model with non-trivial weights everywhere (BN statistics included)."""
    model = FastSCNN(num_classes, aux=aux)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.1, w.shape) for w in layer.get_weights()])
    randomize_batchnorm(model, seed=seed)
    return model


def _assert_copied(target, source, fresh):
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name in fresh:
            continue
        for got, want in zip(layer.get_weights(), source.get_layer(layer.name).get_weights(),
                             strict=True):  # fmt: skip
            np.testing.assert_array_equal(got, want, err_msg=layer.name)


def test_other_class_count_keeps_all_but_the_class_layers(tmp_path):
    source = _trained_like(11)
    path = tmp_path / "source.keras"
    source.save(path)
    target = FastSCNN(5, aux=True, aux2=True)
    fresh = {name: target.get_layer(name).get_weights() for name in CLASS_LAYERS}

    text = transfer.init_from(target, str(path))

    _assert_copied(target, source, fresh=CLASS_LAYERS | {"aux_conv", "aux_conv_bn",
                                                         "aux2_conv", "aux2_conv_bn"})  # fmt: skip
    # The classifier keeps its fresh (5-class) initialisation.
    for got, want in zip(target.get_layer("cls_conv").get_weights(), fresh["cls_conv"],
                         strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, want)
    assert target.get_layer("cls_conv").kernel.shape[-1] == 5
    assert "re-initialised" in text and "cls_conv (source (1, 1, 128, 11)" in text
    # The source has no aux heads: they are reported, not silently left.
    assert "not in the source, kept fresh: aux_conv" in text


def test_reference_checkpoint_in_pytorch_layout(tmp_path):
    """A state dict in the reference's names and layouts (written here with numpy from the
    mapping's own keys, permuted back to OIHW) loads into the matching layers."""
    source = _trained_like(4, aux=True, seed=2)
    state = {}
    for key, variable, perm in weights.weight_plan(source):
        value = np.asarray(variable.numpy())
        state[key] = value if perm is None else np.transpose(value, np.argsort(perm))
    path = tmp_path / "reference.npz"
    np.savez(path, **state)

    target = FastSCNN(4, aux=True)
    text = transfer.init_from(target, str(path))
    _assert_copied(target, source, fresh=set())
    assert "re-initialised" not in text


def test_bad_source_is_one_line_exit_2(tmp_path, capsys):
    argv = ["train", "--dataset", "synthetic:4", "--out", str(tmp_path / "run"),
            "--init-from", str(tmp_path / "missing.keras")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--init-from" in err and "missing.keras" in err
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a preset name"):
        transfer.check_source(str(tmp_path / "notes.txt"))


@pytest.mark.slow
def test_training_starts_from_the_source_and_reports_it(tmp_path, capsys):
    """End to end: a fine-tuning run on generated data with another class count (8 here, 11
    in the source) starts from the source's weights."""
    source = _trained_like(11)
    source.save(tmp_path / "source.keras")
    config = train.TrainConfig(
        dataset="synthetic:4", out=str(tmp_path / "run"), epochs=1, steps_per_epoch=1,
        batch_size=2, crop=(64, 64), val_batch_size=2, lr=1e-9, momentum=0.0,
        init_from=str(tmp_path / "source.keras"), overlays=0, verbose=0,
    )  # fmt: skip
    train.train(config)
    printed = capsys.readouterr().out
    assert "--init-from" in printed and "cls_conv" in printed
    final = train.keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    # lr ~ 0 and no momentum: convolutions still hold the source's weights after one step.
    np.testing.assert_allclose(
        final.get_layer("ltd_conv").get_weights()[0],
        source.get_layer("ltd_conv").get_weights()[0],
        atol=1e-6,
    )
    assert final.get_layer("cls_conv").kernel.shape[-1] == 8
