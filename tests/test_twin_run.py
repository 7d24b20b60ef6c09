"""Twin run: `fastscnn train`'s step equals the PyTorch reference's step from identical weights.

The yardstick is the reference in float64; the project (float32) must stray from it no more
than the reference's own float32 run does, step after step (benchmarks/twin_run.py). A large
weight decay makes the decay's scope visible within a step, so the test also proves that it
notices a recipe that differs (the project's default conv-only decay).
"""

import pytest

from fastscnn_tf import training

from helpers import load_script

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def twin():
    return load_script("benchmarks/twin_run.py")


NUM_CLASSES = 5


def config(**overrides):
    values = dict(ignore_index=NUM_CLASSES, weight_decay=0.05, weight_decay_all=True)
    return training.Recipe(**{**values, **overrides})


def worst_ratio(records, quantity):
    """Largest ratio of the project's error to the float32 reference's, over the steps."""
    return max(r["keras"][quantity] / max(r["torch32"][quantity], 1e-7) for r in records)


def test_train_step_matches_reference(twin):
    cfg = config()
    batches = twin.make_batches(3, 8, (64, 64), NUM_CLASSES, cfg.ignore_index)
    records = twin.run_twin(cfg, NUM_CLASSES, batches, total_steps=20, log=lambda line: None)
    first = records[0]
    # Step 1 starts from identical weights: the losses agree to float32 rounding.
    assert first["keras"]["loss"] < 1e-5
    for quantity in ("weights", "bn_means"):
        assert worst_ratio(records, quantity) < 4.0, (quantity, records)


def test_twin_run_notices_another_recipe(twin):
    cfg = config(weight_decay_all=False)  # the project's default: conv kernels only
    batches = twin.make_batches(1, 8, (64, 64), NUM_CLASSES, cfg.ignore_index)
    records = twin.run_twin(cfg, NUM_CLASSES, batches, total_steps=20, log=lambda line: None)
    assert worst_ratio(records, "weights") > 10.0, records
