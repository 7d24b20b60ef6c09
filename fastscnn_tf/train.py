"""`fastscnn train`: the paper's recipe on `model.fit`, with exact resume and tf.distribute.

Recipe (Poudel et al. 2019, Sec. 4.1): SGD with momentum 0.9, batch 12, base learning rate
0.045 with poly decay (power 0.9) over all steps, weight decay 4e-5 on convolution kernels
(not depthwise kernels, BN or biases), auxiliary losses at weight 0.4.

Weight decay is *coupled* (L2 added to the gradient before momentum, as PyTorch's
`SGD(weight_decay=...)` and the TF-slim regularisers the paper's value comes from), not Keras'
decoupled `weight_decay` (`w -= lr * wd * w` after the step): with momentum 0.9 a coupled decay
acts about 10x stronger than a decoupled one of the same coefficient, so 4e-5 only means what
the paper means when it is coupled.

A run writes to `--out`: `config.json` (the resolved config), `best.keras` (inference model at
the best val mIoU) and `best.json`, `last.keras` (the training model with aux heads and
optimizer state, after the last epoch), `model.keras` (the final inference model: no aux heads,
any input size) with `labels.txt`, `log.csv`, TensorBoard logs in `logs/`, and while running a
`backup/` that lets the same command resume a killed run at the exact step.
"""

import dataclasses
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from fastscnn_tf import data as data_lib
from fastscnn_tf import labels as labels_lib
from fastscnn_tf import losses as losses_lib
from fastscnn_tf import metrics as metrics_lib
from fastscnn_tf import transfer
from fastscnn_tf.config import (
    field,
    load_config,
    parse_range,
    parse_size,
    save_config,
    to_json,
)
from fastscnn_tf.files import atomic_path, write_text_atomic
from fastscnn_tf.model import FastSCNN
from fastscnn_tf.predict import blend, colorize

STRATEGIES = ("default", "mirrored", "multi-worker")
MONITOR = "val_miou"


@dataclasses.dataclass
class TrainConfig:
    dataset: str = field(
        "synthetic",
        "training data: synthetic[:N[:HxW]] | folder:PATH | cityscapes:PATH | tfds:NAME",
    )
    out: str = field("runs/fastscnn", "output folder (the same command resumes a killed run)")
    split: str = field("train", "training split")
    val_dataset: str | None = field(None, "validation data spec (default: --dataset)")
    val_split: str = field("val", "validation split")
    epochs: int = field(100, "number of epochs")
    steps_per_epoch: int | None = field(None, "steps per epoch (default: examples // batch)")
    val_steps: int | None = field(None, "validation batches per epoch (default: all)")
    batch_size: int = field(12, "global batch size (split across replicas)")
    val_batch_size: int = field(1, "validation batch size (full images)")
    crop: tuple[int, int] = field((512, 512), "random crop HxW after scaling", parse=parse_size)
    augment: bool = field(True, "random scale, crop and flip (and --colour-jitter)")
    scale_range: tuple[float, float] = field(
        (0.5, 2.0), "random scale range LO,HI of the augmentation", parse=parse_range
    )
    colour_jitter: bool = field(
        False, "brightness/contrast/colour-channel noise (off: the reference's recipe)"
    )
    antialias: bool = field(True, "filter images when the random scale shrinks them")
    lr: float = field(0.045, "base learning rate")
    momentum: float = field(0.9, "SGD momentum")
    weight_decay: float = field(4e-5, "L2 on conv kernels (not depthwise, BN or biases)")
    weight_decay_all: bool = field(
        False, "L2 on every parameter, as PyTorch's SGD(weight_decay=) in the reference"
    )
    poly_power: float = field(0.9, "poly learning-rate decay power")
    warmup_steps: int = field(0, "linear learning-rate warm-up steps")
    aux: bool = field(True, "auxiliary loss on the learning-to-downsample output")
    aux2: bool = field(True, "auxiliary loss on the global-feature-extractor output")
    aux_weight: float = field(0.4, "weight of each auxiliary loss")
    ohem: bool = field(False, "online hard example mining (threshold 0.7)")
    ohem_min_kept: int = field(100_000, "OHEM keeps at least this many pixels per batch")
    class_weighting: bool = field(False, "median-frequency class weights from the training masks")
    num_classes: int | None = field(None, "number of classes (default: from the data)")
    ignore_index: int | None = field(None, "label value to ignore (default: from the data)")
    class_names: str | None = field(None, "labels.txt with class names and colours")
    allow_extra_classes: bool = field(
        False, "let --num-classes exceed the classes the training masks hold, on purpose"
    )
    strategy: str = field("default", "tf.distribute strategy", choices=STRATEGIES)
    mixed_precision: bool = field(False, "mixed precision (float16 on GPU, bfloat16 on CPU)")
    jit: bool = field(False, "compile the train step with XLA")
    seed: int = field(0, "seed of weights, shuffling and augmentation")
    init_from: str | None = field(
        None,
        "start from trained weights: a preset (camvid), a .keras model or a PyTorch "
        ".pth/.npz checkpoint; layers whose shape differs (another class count) start fresh",
    )
    backup_every: int = field(50, "steps between backups for resuming a killed run")
    overlays: int = field(3, "validation images drawn with predictions in TensorBoard")
    verbose: int = field(1, "Keras progress output: 0 silent, 1 progress bar, 2 one line/epoch")


# --- the recipe ------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr = base * (1 - step / total) ** power`, times a linear warm-up `(step+1) / warmup`
    over the first `warmup_steps` steps."""

    def __init__(self, base_lr, total_steps, power=0.9, warmup_steps=0):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step / float(max(self.total_steps, 1)), 1.0)
        lr = self.base_lr * ops.power(1.0 - progress, self.power)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum((step + 1.0) / float(self.warmup_steps), 1.0)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="fastscnn_tf")
class SGDWithL2(keras.optimizers.SGD):
    """SGD whose weight decay is coupled L2 (`grad += l2 * w` before momentum, as PyTorch's
    SGD) and limited to the variables named in `decay_paths`.

    Args:
        l2: L2 coefficient.
        decay_paths: `variable.path`s that decay (see `decayed_paths`).
        **kwargs: `keras.optimizers.SGD` arguments.
    """

    def __init__(self, learning_rate=0.045, momentum=0.9, l2=4e-5, decay_paths=(), **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.l2 = float(l2)
        self.decay_paths = tuple(decay_paths)

    def apply(self, grads, trainable_variables=None):
        variables = (
            self._trainable_variables if trainable_variables is None else trainable_variables
        )
        if self.l2 and self.decay_paths:
            paths = set(self.decay_paths)
            # Gradients are summed over replicas after this point; each adds its share.
            scale = self.l2 / tf.distribute.get_strategy().num_replicas_in_sync
            grads = [
                g + ops.cast(scale, g.dtype) * ops.cast(v, g.dtype)
                if g is not None and v.path in paths
                else g
                for g, v in zip(grads, variables, strict=True)
            ]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "decay_paths": list(self.decay_paths)}


def decayed_paths(model):
    """Paths of the kernels that weight decay applies to: ordinary convolutions only, not
    depthwise kernels, BN parameters or biases (the paper, following MobileNet)."""
    return [
        layer.kernel.path
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]


def output_names(config):
    return (
        ["logits"]
        + (["aux_logits"] if config.aux else [])
        + (["aux2_logits"] if config.aux2 else [])
    )


def build_training_model(config, num_classes, total_steps, class_weights=None, model=None):
    """Fast-SCNN with the configured aux heads (or `model`, built to match them), compiled
    with the paper's recipe."""
    if model is None:
        model = FastSCNN(num_classes, aux=config.aux, aux2=config.aux2)
    names = output_names(config)
    loss = losses_lib.SegmentationCrossEntropy(
        ignore_index=config.ignore_index,
        class_weights=class_weights,
        ohem_threshold=0.7 if config.ohem else None,
        ohem_min_kept=config.ohem_min_kept,
    )
    optimizer = SGDWithL2(
        learning_rate=PolyDecay(config.lr, total_steps, config.poly_power, config.warmup_steps),
        momentum=config.momentum,
        l2=config.weight_decay,
        decay_paths=(
            [v.path for v in model.trainable_variables]
            if config.weight_decay_all
            else decayed_paths(model)
        ),
    )
    metrics = [
        metrics_lib.MeanIoU(num_classes, config.ignore_index),
        metrics_lib.PixelAccuracy(num_classes, config.ignore_index),
    ]
    if len(names) == 1:
        model.compile(optimizer, loss=loss, metrics=metrics, jit_compile=config.jit)
    else:
        model.compile(
            optimizer,
            loss={name: loss for name in names},
            loss_weights={name: 1.0 if name == "logits" else config.aux_weight for name in names},
            metrics={"logits": metrics},
            jit_compile=config.jit,
        )
    return model


def inference_model(model, num_classes):
    """The deployable network: no aux heads, any input size, float32; weights copied by layer
    name from the training model."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        result = FastSCNN(num_classes)
    finally:
        keras.config.set_dtype_policy(previous)
    for layer in result.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return result


def targets(names):
    """Map `(images, masks)` to the target structure of a model with these outputs."""
    if len(names) == 1:
        return lambda images, masks: (images, masks)
    return lambda images, masks: (images, {name: masks for name in names})


# --- callbacks -------------------------------------------------------------------------------


def save_model_atomic(model, path, include_optimizer=True):
    with atomic_path(path) as tmp:
        model.save(tmp, include_optimizer=include_optimizer)


def random_states(model):
    """The model's random-number states (dropout's seed generators), which `save_weights`
    leaves out: without them a resumed run draws other dropout masks."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class Backup(keras.callbacks.Callback):
    """Backs up weights and optimizer state every `save_freq` steps and at each epoch end, so
    the same command resumes a killed run at the exact step.

    Why not `keras.callbacks.BackupAndRestore` itself: Keras 3.15's restores only the epoch
    number, so after a mid-epoch kill it re-runs the whole epoch from the mid-epoch weights
    (more steps than asked, the poly schedule overruns, the data stream shifts), and it
    overwrites its one file in place, so a SIGKILL during the write leaves nothing loadable.
    This one records the global step (the optimizer's `iterations`), writes to a temporary file
    and renames it, and `run` restarts the data stream and the epoch where they were.
    """

    STATE = "state.json"

    def __init__(self, backup_dir, save_freq):
        super().__init__()
        self.backup_dir = backup_dir
        self.save_freq = max(1, int(save_freq))

    def on_train_batch_end(self, batch, logs=None):
        if self.model.stop_training:  # e.g. TerminateOnNaN: keep the last good state
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.save_freq == 0:
            self.save(step)

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training:
            self.save(int(self.model.optimizer.iterations.numpy()))

    def save(self, step):
        # Weights go to a new file first; state.json, renamed into place last, is the commit
        # that points to it. A kill at any moment leaves a consistent pair.
        name = f"step-{step}.weights.h5"
        with atomic_path(os.path.join(self.backup_dir, name)) as tmp:
            self.model.save_weights(tmp)
        rng = [ops.convert_to_numpy(v).tolist() for v in random_states(self.model)]
        state = {"step": step, "weights": name, "rng": rng}
        write_text_atomic(os.path.join(self.backup_dir, self.STATE), json.dumps(state) + "\n")
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.backup_dir, old))

    @classmethod
    def restore(cls, backup_dir, model):
        """Load a backup into a compiled model; returns the step it was taken at, or 0."""
        state_path = os.path.join(backup_dir, cls.STATE)
        if not os.path.exists(state_path):
            return 0
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        step = int(state["step"])
        model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(backup_dir, state["weights"]))
        restored = int(model.optimizer.iterations.numpy())
        variables = random_states(model)
        if restored != step or len(variables) != len(state["rng"]):
            raise ValueError(f"{backup_dir}: the backup does not match this run's model.")
        for variable, value in zip(variables, state["rng"], strict=True):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        return step


class SyncBatchNormStatistics(keras.callbacks.Callback):
    """Averages the BN moving statistics over all replicas at each epoch end (before the
    checkpoints). Keras 3 creates them with aggregation "none", so under a multi-replica
    strategy each replica's copy follows only its own share of the data and the workers'
    models drift apart (the trainable weights stay in sync through the gradient all-reduce)."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy
        self._sync = None

    def _build(self):
        variables = [
            v.value
            for layer in self.model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)
        ]

        def replica_fn():
            context = tf.distribute.get_replica_context()
            means = context.all_reduce("MEAN", [tf.identity(v) for v in variables])
            for variable, mean in zip(variables, means, strict=True):
                variable.assign(mean)

        return tf.function(lambda: self.strategy.run(replica_fn))

    def on_epoch_end(self, epoch, logs=None):
        if self._sync is None:
            self._sync = self._build()
        self._sync()


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the inference model as `best.keras` when val mIoU improves (and `best.json`)."""

    def __init__(self, out, num_classes, monitor):
        super().__init__()
        self.path = os.path.join(out, "best.keras")
        self.record = os.path.join(out, "best.json")
        self.num_classes = num_classes
        self.monitor = monitor
        self.best = -math.inf
        if os.path.exists(self.record):
            with open(self.record, encoding="utf-8") as f:
                self.best = float(json.load(f)[MONITOR])

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self.best:
            return
        self.best = float(value)
        save_model_atomic(inference_model(self.model, self.num_classes), self.path)
        write_text_atomic(self.record, json.dumps({MONITOR: self.best, "epoch": epoch + 1}) + "\n")


class LastCheckpoint(keras.callbacks.Callback):
    """Saves the training model (aux heads, optimizer state) as `last.keras` every epoch."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomic(self.model, self.path)


class EpochStats(keras.callbacks.Callback):
    """Adds the learning rate, the global step and the epoch's wall time to the logs (so the
    CSV log and TensorBoard show them), and renames `logits_miou`-style metrics of a model
    with aux heads to the plain `miou`."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key in list(logs):
            for prefix in ("logits_", "val_logits_"):
                if key.startswith(prefix) and not key.endswith("_loss"):
                    logs[key.replace("logits_", "", 1)] = logs.pop(key)
        logs["learning_rate"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["step"] = int(self.model.optimizer.iterations.numpy())
        logs["epoch_seconds"] = time.perf_counter() - self._start


def overlay(image, classes, colors, alpha=0.5, ignore_index=None):
    """`predict`'s overlay without the legend; ignored pixels stay unblended."""
    ignored = classes == ignore_index if ignore_index is not None else np.zeros(classes.shape, bool)
    mixed = blend(image, colorize(np.where(ignored, 0, classes), colors), alpha)
    return np.where(ignored[..., None], image, mixed)


class PredictionImages(keras.callbacks.Callback):
    """Writes `image | ground truth | prediction` overlays of a few validation images to
    TensorBoard after every epoch."""

    def __init__(self, log_dir, images, masks, labels):
        super().__init__()
        self.images, self.masks, self.labels = images, masks, labels
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model(self.images.astype(np.float32), training=False)
        logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        predictions = np.argmax(ops.convert_to_numpy(logits), axis=-1)
        colors = self.labels.colors
        rows = [
            np.concatenate(
                [
                    image,
                    overlay(image, mask, colors, ignore_index=self.labels.ignore_index),
                    overlay(image, prediction, colors),
                ],
                axis=1,
            )
            for image, mask, prediction in zip(self.images, self.masks, predictions, strict=True)
        ]
        with self.writer.as_default():
            tf.summary.image(
                "val/image_truth_prediction", np.stack(rows), step=epoch + 1, max_outputs=len(rows)
            )
        self.writer.flush()


# --- the job ---------------------------------------------------------------------------------


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi-worker needs the TF_CONFIG environment variable.")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        patch_keras_multi_worker_logs()
        return strategy
    raise ValueError(f"--strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")


def patch_keras_multi_worker_logs():
    """Let `model.fit` run under MultiWorkerMirroredStrategy.

    Keras 3.15 averages each step's logs across workers with `strategy.reduce("MEAN", v,
    axis=0)`, which fails for the scalar losses and metrics every model logs
    (keras-team/keras#20585: `fit` under this strategy fails for any model). This wraps its
    `reduce_per_replica` to average scalars with `axis=None` (the same mean over all replicas
    of all workers); everything else goes to the original.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

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


def worker_out(out, strategy):
    """The chief (or the only worker) writes to `out`; other workers to `out/worker-N`."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return out
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    cluster = resolver.cluster_spec().as_dict()
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster
    )
    return out if is_chief else os.path.join(out, f"worker-{task_type}-{task_id}")


def set_precision(config):
    if not config.mixed_precision:
        keras.config.set_dtype_policy("float32")
        return "float32"
    policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    keras.config.set_dtype_policy(policy)
    return policy


def check_config(config):
    positive = ("epochs", "batch_size", "val_batch_size", "backup_every")
    for name in positive:
        if getattr(config, name) <= 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}."
            )
    for name in ("steps_per_epoch", "val_steps"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")
    if not config.lr > 0:
        raise ValueError(f"--lr must be positive, got {config.lr}.")
    if config.warmup_steps < 0 or config.weight_decay < 0 or config.aux_weight < 0:
        raise ValueError("--warmup-steps, --weight-decay and --aux-weight must not be negative.")
    if config.init_from:
        transfer.check_source(config.init_from)


def load_data(config):
    """Open the training and validation sources and check that they agree."""
    common = {
        "num_classes": config.num_classes,
        "ignore_index": config.ignore_index,
        "class_names": config.class_names,
        "seed": config.seed,
    }
    train = data_lib.load_source(config.dataset, config.split, **common)
    present = train.classes_present
    if config.num_classes and present and config.num_classes > present:
        if not config.allow_extra_classes:  # e.g. CamVid's void (11) would become a class
            raise ValueError(
                f"--num-classes {config.num_classes} is more than the {present} classes "
                f"(0..{present - 1}) that the masks of {train.name} hold besides the ignore "
                f"index {train.labels.ignore_index}; pass a matching --num-classes (or none, for "
                "the data's own classes), or --allow-extra-classes if the extra ones are meant."
            )
    val = data_lib.load_source(config.val_dataset or config.dataset, config.val_split, **common)
    if train.labels.num_classes != val.labels.num_classes:
        raise ValueError(
            f"--val-dataset {val.name} has {val.labels.num_classes} classes but --dataset "
            f"{train.name} has {train.labels.num_classes}."
        )
    if train.labels.ignore_index != val.labels.ignore_index:
        raise ValueError(
            f"--val-dataset {val.name} ignores {val.labels.ignore_index} but --dataset "
            f"{train.name} ignores {train.labels.ignore_index}."
        )
    if train.num_examples == 0 or val.num_examples == 0:
        raise ValueError(f"{train.name if train.num_examples == 0 else val.name} is empty.")
    return train, val


def median_frequency_class_weights(source, num_classes, ignore_index, max_examples=2000):
    histograms = [
        losses_lib.class_histogram(example["mask"], num_classes, ignore_index)
        for example in source.dataset.take(max_examples).as_numpy_iterator()
    ]
    return losses_lib.median_frequency_weights(np.stack(histograms)).tolist()


def resolve(config, train):
    """The config with everything the data decides filled in (written as config.json)."""
    steps = config.steps_per_epoch
    if steps is None:
        if not train.num_examples:
            raise ValueError(f"{train.name}: size unknown; pass --steps-per-epoch.")
        steps = max(1, train.num_examples // config.batch_size)
    return dataclasses.replace(
        config,
        steps_per_epoch=steps,
        num_classes=train.labels.num_classes,
        ignore_index=train.labels.ignore_index,
    )


def check_resumable(config, out):
    """A run folder holds one run: resume it only with the same config; never overwrite a
    finished run."""
    saved = os.path.join(out, "config.json")
    if not os.path.exists(saved):
        return
    if not os.path.exists(os.path.join(out, "backup", Backup.STATE)):
        if os.path.exists(os.path.join(out, "model.keras")):
            raise ValueError(f"--out {out} holds a finished run (model.keras); use a new --out.")
        return
    previous = load_config(TrainConfig, saved)
    ignore = {"verbose"}
    changed = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.name not in ignore and getattr(previous, f.name) != getattr(config, f.name)
    ]
    if changed:
        raise ValueError(
            f"--out {out} holds a run started with different options ({', '.join(changed)}); "
            "resume it with the same options or use a new --out."
        )


def first_examples(source, count):
    images, masks = [], []
    for example in source.dataset.take(count).as_numpy_iterator():
        images.append(example["image"])
        masks.append(example["mask"])
    if not images or any(i.shape != images[0].shape for i in images):
        return None, None
    return np.stack(images), np.stack(masks).astype(np.int32)


class EpochsShown(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, but its "Epoch i/N" names the run's `epochs`, not the `epochs` of
    the `fit` call (which for the rest of a resumed epoch is that epoch + 1)."""

    def __init__(self, epochs):
        super().__init__()
        self.total_epochs = int(epochs)

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs


def fit_from(model, step, config, train_data, val_data, callbacks):
    """`model.fit` from global step `step`: finish a partly done epoch first, so every
    epoch ends (validation, checkpoints) where it would have without the interruption."""
    spe = config.steps_per_epoch
    epoch, done = divmod(step, spe)
    history = []
    if done:
        history.append(
            model.fit(
                train_data(step),
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=spe - done,
                validation_data=val_data,
                validation_steps=config.val_steps,
                callbacks=[*callbacks, EpochsShown(config.epochs)],
                shuffle=False,
                verbose=config.verbose,
            )
        )
        epoch, step = epoch + 1, (epoch + 1) * spe
        if model.stop_training:
            return history
    if epoch < config.epochs:
        history.append(
            model.fit(
                train_data(step),
                initial_epoch=epoch,
                epochs=config.epochs,
                steps_per_epoch=spe,
                validation_data=val_data,
                validation_steps=config.val_steps,
                callbacks=callbacks,
                shuffle=False,
                verbose=config.verbose,
            )
        )
    return history


def train(config):
    """Run (or resume) one training job; returns a summary dict."""
    check_config(config)
    strategy = make_strategy(config.strategy)
    out = worker_out(config.out, strategy)
    policy = set_precision(config)
    keras.utils.set_random_seed(config.seed)
    train_source, val_source = load_data(config)
    config = resolve(config, train_source)
    check_resumable(config, out)
    os.makedirs(out, exist_ok=True)
    save_config(config, os.path.join(out, "config.json"))
    labels = train_source.labels
    labels_lib.write_labels(os.path.join(out, "labels.txt"), labels)  # beside best.keras
    num_classes, total_steps = labels.num_classes, config.epochs * config.steps_per_epoch
    if config.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--batch-size {config.batch_size} does not split evenly over "
            f"{strategy.num_replicas_in_sync} replicas."
        )
    class_weights = None
    if config.class_weighting:
        class_weights = median_frequency_class_weights(
            train_source, num_classes, labels.ignore_index
        )
        print("median-frequency class weights: " + ", ".join(f"{w:.3g}" for w in class_weights))

    names = output_names(config)
    with strategy.scope():
        model = build_training_model(config, num_classes, total_steps, class_weights)
        start_step = Backup.restore(os.path.join(out, "backup"), model)
        if config.init_from and start_step == 0:  # a resumed run continues from its backup
            print(transfer.init_from(model, config.init_from))
    # Keras 3.15 starts `fit` under a model-level strategy by pulling one batch and reducing it
    # across replicas to build the metrics: that fails under MultiWorkerMirroredStrategy
    # (keras-team/keras#20585) and silently drops a batch (breaking exact resume). Without it,
    # Keras builds while tracing, and `fit` inside `strategy.scope()` still distributes.
    model._distribute_strategy = None

    def train_data(step):
        ds = data_lib.make_pipeline(
            train_source,
            batch_size=config.batch_size,
            crop=config.crop,
            augment=config.augment,
            shuffle=True,
            repeat=True,
            seed=config.seed,
            # The stream is a pure function of (seed, position): starting after the batches
            # already trained on puts a resumed run exactly where the killed one was, without
            # decoding or augmenting the skipped examples.
            start=step,
            colour=config.colour_jitter,
            scale_range=config.scale_range,
            antialias=config.antialias,
        )
        return ds.map(targets(names), num_parallel_calls=tf.data.AUTOTUNE)

    val_data = data_lib.make_pipeline(val_source, batch_size=config.val_batch_size).map(
        targets(names)
    )
    log_dir = os.path.join(out, "logs")
    if start_step == 0:  # a fresh start: drop what an attempt killed before its first backup left
        for name in ("log.csv", "best.json", "best.keras", "last.keras"):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    callbacks = [EpochStats(), keras.callbacks.TerminateOnNaN()]
    if strategy.num_replicas_in_sync > 1:
        callbacks.append(SyncBatchNormStatistics(strategy))
    callbacks += [
        BestCheckpoint(out, num_classes, MONITOR),
        LastCheckpoint(os.path.join(out, "last.keras")),
        keras.callbacks.CSVLogger(os.path.join(out, "log.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0),
    ]
    images, masks = first_examples(val_source, config.overlays)
    if config.overlays and images is not None:
        callbacks.append(PredictionImages(log_dir, images, masks, labels))
    # Last, so that an epoch's checkpoints and logs are written before the backup that marks
    # it done: a run killed in between redoes the end of that epoch rather than skipping them.
    callbacks.append(Backup(os.path.join(out, "backup"), config.backup_every))

    resumed = f" (resuming at step {start_step})" if start_step else ""
    print(
        f"training on {train_source.name}, validating on {val_source.name}: {num_classes} "
        f"classes, {config.epochs} epochs x {config.steps_per_epoch} steps, batch "
        f"{config.batch_size}, {strategy.num_replicas_in_sync} replica(s), {policy}{resumed}"
    )
    start = time.perf_counter()
    with strategy.scope():
        history = fit_from(model, start_step, config, train_data, val_data, callbacks)
    seconds = time.perf_counter() - start
    steps = int(model.optimizer.iterations.numpy())
    if model.stop_training and steps < total_steps:
        raise ValueError(
            f"training stopped at step {steps}: the loss became NaN "
            f"(try a lower --lr); the last good epoch is in {out}/last.keras."
        )

    final = inference_model(model, num_classes)
    save_model_atomic(final, os.path.join(out, "model.keras"))
    shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)
    last_logs = {}
    for h in history:
        if h.history:
            last_logs = {k: v[-1] for k, v in h.history.items()}
    best = None
    if os.path.exists(os.path.join(out, "best.json")):
        with open(os.path.join(out, "best.json"), encoding="utf-8") as f:
            best = json.load(f)
    summary = {
        "out": out,
        "steps": steps,
        "seconds_this_session": round(seconds, 1),
        "steps_this_session": steps - start_step,
        "final_val_miou": last_logs.get(MONITOR),
        "best_val_miou": None if best is None else best[MONITOR],
        "best_epoch": None if best is None else best["epoch"],
    }
    write_text_atomic(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return summary


def run(config):
    summary = train(config)
    per_step = summary["seconds_this_session"] / max(summary["steps_this_session"], 1)
    best = summary["best_val_miou"]
    print(
        f"done: {summary['steps']} steps ({summary['steps_this_session']} this session in "
        f"{summary['seconds_this_session']:.0f} s, {per_step:.2f} s/step); best val mIoU "
        f"{'n/a' if best is None else f'{best:.4f}'} (epoch {summary['best_epoch']}); "
        f"model: {os.path.join(summary['out'], 'model.keras')}"
    )
    return 0


__all__ = ["TrainConfig", "run", "train", "to_json"]
