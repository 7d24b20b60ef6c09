"""The Keras workarounds refuse, naming their issue, when the internals they patch are gone."""

import types

import pytest

from fastscnn_tf.cli import compat


def test_a_model_without_the_patched_attribute_fails_loudly():
    with pytest.raises(RuntimeError, match=r"Model\._distribute_strategy.*keras-team/keras#20585"):
        compat.build_metrics_while_tracing(types.SimpleNamespace())


def test_the_patch_applies_to_a_model_that_has_it():
    model = types.SimpleNamespace(_distribute_strategy="a strategy")
    compat.build_metrics_while_tracing(model)
    assert model._distribute_strategy is None


def test_the_multi_worker_patch_is_applied_once(monkeypatch):
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)  # restored
    compat.patch_keras_multi_worker_logs()
    patched = trainer.reduce_per_replica
    compat.patch_keras_multi_worker_logs()
    assert trainer.reduce_per_replica is patched and patched._fastscnn_patched
