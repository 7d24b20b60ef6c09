"""Workarounds for Keras internals, in one place: each names its issue and checks that the
private code it patches is still there, so a Keras upgrade fails loudly here instead of
somewhere inside `fit`. Tested with Keras 3.15."""

import keras
import tensorflow as tf

TESTED = "3.15"


def _require(condition, what, issue):
    if not condition:
        raise RuntimeError(
            f"Keras {keras.version()} no longer has {what}, which fastscnn_tf patches for {issue} "
            f"(tested with Keras {TESTED}); see fastscnn_tf/cli/compat.py."
        )


def patch_keras_multi_worker_logs():
    """Let `model.fit` run under MultiWorkerMirroredStrategy.

    Keras 3.15 averages each step's logs across workers with `strategy.reduce("MEAN", v,
    axis=0)`, which fails for the scalar losses and metrics every model logs
    (keras-team/keras#20585: `fit` under this strategy fails for any model). This wraps its
    `reduce_per_replica` to average scalars with `axis=None` (the same mean over all replicas
    of all workers); everything else goes to the original.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    _require(
        hasattr(tf_trainer, "reduce_per_replica")
        and hasattr(tf_trainer, "_collective_all_reduce_multi_worker"),
        "keras.src.backend.tensorflow.trainer.reduce_per_replica",
        "keras-team/keras#20585",
    )
    original = tf_trainer.reduce_per_replica
    if getattr(original, "_fastscnn_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        multi_worker = tf_trainer._collective_all_reduce_multi_worker(strategy)
        if not multi_worker or reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)

        def mean(value):
            if isinstance(value, tf.distribute.DistributedValues):
                rank = strategy.experimental_local_results(value)[0].shape.rank
                return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)
            return value

        return tf.nest.map_structure(mean, values)

    reduce_per_replica._fastscnn_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_metrics_while_tracing(model):
    """Let `fit` build the metrics while tracing, under any strategy.

    Keras 3.15 starts `fit` under a model-level strategy by pulling one batch and reducing it
    across replicas to build the metrics: that fails under MultiWorkerMirroredStrategy
    (keras-team/keras#20585) and silently drops a batch (breaking exact resume). Without the
    model-level strategy Keras builds while tracing, and `fit` inside `strategy.scope()` still
    distributes.
    """
    _require(
        hasattr(model, "_distribute_strategy"),
        "Model._distribute_strategy",
        "keras-team/keras#20585",
    )
    model._distribute_strategy = None
