"""Training Fast-SCNN in plain Python: the recipe, the compile step, targets and callbacks that
`fastscnn train` uses, for `model.fit`.

    from fastscnn_tf import FastSCNN, data, export, training

    model = FastSCNN.from_preset("camvid", num_classes=6, aux=True)   # new classifier
    training.compile(model, training.Recipe(), total_steps=2000)
    source = data.load_source("folder:my_data", "train")
    batches = data.make_pipeline(source, batch_size=8, crop=(320, 320), augment=True,
                                 shuffle=True, repeat=True)
    model.fit(batches.map(training.targets(model)), epochs=10, steps_per_epoch=200,
              callbacks=training.callbacks("runs/mine"))
    export.export_tflite(training.inference_model(model), "mine.tflite", size=(360, 480),
                         precision="int8", representative="folder:my_data")

The recipe is the paper's (Poudel et al. 2019, Sec. 4.1): SGD with momentum 0.9, learning rate
0.045 with poly decay (power 0.9) over all steps, weight decay 4e-5 on convolution kernels
(coupled L2, as PyTorch's SGD; see `optim`), auxiliary losses at weight 0.4.
"""

import dataclasses
import os

import keras

from fastscnn_tf import callbacks as callbacks_lib
from fastscnn_tf import data as data_lib
from fastscnn_tf import losses as losses_lib
from fastscnn_tf import metrics as metrics_lib
from fastscnn_tf.model import inference_model
from fastscnn_tf.optim import PolyDecay, SGDWithL2, decayed_paths

__all__ = [
    "Recipe",
    "callbacks",
    "class_weights",
    "compile",
    "configure_threads",
    "inference_model",
    "targets",
    "validation_data",
]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a Fast-SCNN learns: optimiser, schedule, weight decay and loss.

    Args:
        lr: base learning rate; `poly_power`: its poly decay over all steps after
            `warmup_steps` of linear warm-up.
        momentum: SGD momentum.
        weight_decay: coupled L2 on convolution kernels (not depthwise kernels, BN or
            biases); on every parameter with `weight_decay_all`, as the reference's
            `SGD(weight_decay=)`.
        aux_weight: weight of each auxiliary loss.
        ohem: online hard example mining at `ohem_threshold`, keeping at least
            `ohem_min_kept` pixels a batch.
        class_weights: optional per-class loss weights (`losses.median_frequency_weights`,
            `losses.log_frequency_weights`).
        ignore_index: the label value left out of loss and metrics.
        jit: compile the train step with XLA (slower on CPU).
    """

    lr: float = 0.045
    momentum: float = 0.9
    weight_decay: float = 4e-5
    weight_decay_all: bool = False
    poly_power: float = 0.9
    warmup_steps: int = 0
    aux_weight: float = 0.4
    ohem: bool = False
    ohem_threshold: float = 0.7
    ohem_min_kept: int = 100_000
    class_weights: tuple[float, ...] | None = None
    ignore_index: int = 255
    jit: bool = False


def configure_threads(inter_op=0, intra_op=0):
    """Set TensorFlow's CPU thread pools (`fastscnn train --inter-op-threads/--intra-op-threads`);
    returns False when TensorFlow has already run an op with other settings (they are fixed
    from then on), else True.

    `inter_op`: how many ops of the step run side by side; `intra_op`: threads of each op; 0
    lets TensorFlow choose, the fastest on the 2-core machines measured (inter_op 1 was 9 %
    slower; docs/training-speed.md). Keep inter_op 0 with several replicas: their collective
    ops wait on each other.
    """
    import tensorflow as tf

    threading = tf.config.threading
    try:
        threading.set_inter_op_parallelism_threads(inter_op)
        threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError:  # "... cannot be modified after initialization"
        current = (
            threading.get_inter_op_parallelism_threads(),
            threading.get_intra_op_parallelism_threads(),
        )
        return current == (inter_op, intra_op)
    return True


def output_names(aux=False, aux2=False):
    """The outputs of a Fast-SCNN built with these heads, main output first."""
    return ["logits"] + (["aux_logits"] if aux else []) + (["aux2_logits"] if aux2 else [])


def compile(model, recipe=None, *, total_steps):  # noqa: A001  (Keras' own verb)
    """Compile a Fast-SCNN (any of its heads) for `fit` with `recipe` (default: the paper's)
    over `total_steps` steps of poly decay; returns the model."""
    recipe = recipe or Recipe()
    if total_steps < 1:
        raise ValueError(f"total_steps must be 1 or more, got {total_steps}.")
    num_classes = int(model.outputs[0].shape[-1])
    names = list(model.output_names)
    loss = losses_lib.SegmentationCrossEntropy(
        ignore_index=recipe.ignore_index,
        class_weights=None if recipe.class_weights is None else list(recipe.class_weights),
        ohem_threshold=recipe.ohem_threshold if recipe.ohem else None,
        ohem_min_kept=recipe.ohem_min_kept,
    )
    decay = (
        [v.path for v in model.trainable_variables]
        if recipe.weight_decay_all
        else decayed_paths(model)
    )
    optimizer = SGDWithL2(
        learning_rate=PolyDecay(recipe.lr, total_steps, recipe.poly_power, recipe.warmup_steps),
        momentum=recipe.momentum,
        l2=recipe.weight_decay,
        decay_paths=decay,
    )
    metrics = [
        metrics_lib.MeanIoU(num_classes, recipe.ignore_index),
        metrics_lib.PixelAccuracy(num_classes, recipe.ignore_index),
    ]
    if len(names) == 1:
        model.compile(optimizer, loss=loss, metrics=metrics, jit_compile=recipe.jit)
        return model
    model.compile(
        optimizer,
        loss={name: loss for name in names},
        loss_weights={name: 1.0 if name == "logits" else recipe.aux_weight for name in names},
        metrics={"logits": metrics},
        jit_compile=recipe.jit,
    )
    return model


def targets(model_or_names):
    """Map `(images, masks)` batches to the targets of a model's outputs (the mask for each
    head): `pipeline.map(training.targets(model))`."""
    names = getattr(model_or_names, "output_names", model_or_names)
    names = list(names)
    if len(names) == 1:
        return lambda images, masks: (images, masks)
    return lambda images, masks: (images, {name: masks for name in names})


def validation_data(source, model_or_names, *, batch_size=1, steps=None):
    """The validation batches of `fastscnn train`: whole images of `source` (a `data.Source`)
    padded to the largest in their batch, with the targets of a model's outputs; only the
    first `steps` batches when given. Keras starts a new iterator at each validation, and one
    cut to the batches it reads has no prefetching left in flight when dropped: a longer one
    stalled one epoch in two by 15 s on 2 cores (docs/training-speed.md)."""
    batches = data_lib.make_pipeline(source, batch_size=batch_size)
    batches = batches.map(targets(model_or_names))
    return batches.take(steps) if steps else batches


def callbacks(
    out, *, backup_every=50, best=True, num_classes=None, strategy=None, tensorboard=False,
    previews=None,
):  # fmt: skip
    """The callbacks of `fastscnn train` for a run folder `out`: the learning rate, step and
    epoch time in the logs, `last.keras` (the training model with its optimizer) each epoch,
    `best.keras` at the best val mIoU (with `best=True` and validation data), `log.csv`, and a
    step-exact backup in `out/backup` that `restore` reads back.

    Args:
        num_classes: written beside `best.keras` (default: read from the model).
        strategy: a `tf.distribute` strategy; with several replicas the BatchNorm moving
            statistics are averaged over them after each epoch.
        tensorboard: also log to `out/logs` for TensorBoard.
        previews: `(images, masks, labels)`: validation images drawn with the predictions in
            TensorBoard each epoch (needs `tensorboard`).
    """
    result = [callbacks_lib.EpochStats(), keras.callbacks.TerminateOnNaN()]
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        result.append(callbacks_lib.SyncBatchNormStatistics(strategy))
    if best:
        result.append(callbacks_lib.BestCheckpoint(out, num_classes, callbacks_lib.MONITOR))
    result += [
        callbacks_lib.LastCheckpoint(os.path.join(out, "last.keras")),
        keras.callbacks.CSVLogger(os.path.join(out, "log.csv"), append=True),
    ]
    log_dir = os.path.join(out, "logs")
    if tensorboard:
        result.append(keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0))
    if tensorboard and previews is not None:
        result.append(callbacks_lib.PredictionImages(log_dir, *previews))
    # Last, so that an epoch's checkpoints and logs are written before the backup that marks
    # it done: a run killed in between redoes the end of that epoch rather than skipping them.
    result.append(callbacks_lib.Backup(os.path.join(out, "backup"), backup_every))
    os.makedirs(out, exist_ok=True)
    return result


def class_weights(source, num_classes, ignore_index, kind="median", c=1.02, max_examples=2000):
    """Per-class loss weights from a source's masks, for `Recipe(class_weights=)`: `median`
    frequency (SegNet) or `log`, ENet's 1/ln(c + p)."""
    import numpy as np

    histograms = np.stack(
        [
            losses_lib.class_histogram(example["mask"], num_classes, ignore_index)
            for example in source.dataset.take(max_examples).as_numpy_iterator()
        ]
    )
    if kind == "log":
        return losses_lib.log_frequency_weights(histograms, c).tolist()
    if kind != "median":
        raise ValueError(f"class weights {kind!r}: expected 'median' or 'log'.")
    return losses_lib.median_frequency_weights(histograms).tolist()


def restore(model, out):
    """Load the backup of run folder `out` into a compiled model; returns its global step
    (0 without one). Pass it to the data pipeline's `start` and fit from there."""
    return callbacks_lib.Backup.restore(os.path.join(out, "backup"), model)
