"""`fastscnn train`: the paper's recipe on `model.fit`, with exact resume and tf.distribute.

Recipe (Poudel et al. 2019, Sec. 4.1): SGD with momentum 0.9, batch 12, base learning rate
0.045 with poly decay (power 0.9) over all steps, weight decay 4e-5 on convolution kernels
(not depthwise kernels, BN or biases), auxiliary losses at weight 0.4.

Weight decay is coupled L2, as in PyTorch's SGD (see `fastscnn_tf.optim` for why it matters).

A run writes to `--out`: `config.json` (the resolved config), `best.keras` (inference model at
the best val mIoU) and `best.json`, `last.keras` (the training model with aux heads and
optimizer state, after the last epoch), `model.keras` (the final inference model: no aux heads,
any input size) with `labels.txt`, `log.csv`, TensorBoard logs in `logs/`, and while running a
`backup/` that lets the same command resume a killed run at the exact step.

`train` runs four stages: `setup` (data, checks, the compiled model, a backup restored),
`make_callbacks`, `fit` (from the restored step) and `finalise` (model.keras and summary.json).
"""

import dataclasses
import json
import os
import shutil
import time

import keras
import tensorflow as tf

from fastscnn_tf import callbacks as cb
from fastscnn_tf import data as data_lib
from fastscnn_tf import labels as labels_lib
from fastscnn_tf import training, transfer
from fastscnn_tf.cli import compat
from fastscnn_tf.cli import train_setup as setup_lib
from fastscnn_tf.cli.config import field, parse_range, parse_size, save_config
from fastscnn_tf.files import write_text_atomic
from fastscnn_tf.modelfile import save_model_atomic

STRATEGIES = setup_lib.STRATEGIES
MONITOR = cb.MONITOR


@dataclasses.dataclass
class TrainConfig:
    dataset: str = field(
        "synthetic",
        "training data: synthetic[:N[:HxW]] | folder:PATH | cityscapes:PATH | tfds:NAME",
    )
    out: str = field("runs/fastscnn", "output folder (the same command resumes a killed run)")
    split: str = field(
        "train",
        "training split expression: train, train+val, train[-0006R0]+val (folder: hold out "
        "file-name prefixes), train[@list.txt]",
    )
    val_dataset: str | None = field(None, "validation data spec (default: --dataset)")
    val_split: str = field("val", "validation split expression, e.g. val or train[0006R0]")
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
    class_weighting: bool = field(False, "class weights from the training masks (--class-weights)")
    class_weights: str = field(
        "median",
        "with --class-weighting: median frequency, or ENet's log weights 1/ln(c + p)",
        choices=("median", "log"),
    )
    class_weight_c: float = field(1.02, "c of the log class weights (ENet 1.02, CGNet 1.10)")
    num_classes: int | None = field(None, "number of classes (default: from the data)")
    ignore_index: int | None = field(None, "label value to ignore (default: from the data)")
    class_names: str | None = field(None, "labels.txt with class names and colours")
    allow_extra_classes: bool = field(
        False, "let --num-classes exceed the classes the training masks hold, on purpose"
    )
    strategy: str = field("default", "tf.distribute strategy", choices=STRATEGIES)
    mixed_precision: bool = field(False, "mixed precision (float16 on GPU, bfloat16 on CPU)")
    jit: bool = field(False, "compile the train step with XLA")
    inter_op_threads: int = field(0, "TensorFlow ops run side by side (0: TensorFlow's choice)")
    intra_op_threads: int = field(0, "threads of each TensorFlow op (0: one per core)")
    seed: int = field(0, "seed of weights, shuffling and augmentation")
    align_corners: bool = field(
        False,
        "upsample with corner-aligned sampling, as the PyTorch reference (default: half-pixel "
        "centres, what TFLite's delegates prefer)",
    )
    init: str = field(
        "keras",
        "how fresh conv weights are drawn: Keras' defaults, or as PyTorch's nn.Conv2d draws "
        "them in the reference (depthwise kernels up to 8x larger)",
        choices=("keras", "pytorch"),
    )
    init_from: str | None = field(
        None,
        "start from trained weights: a preset (camvid), a .keras model or a PyTorch "
        ".pth/.npz checkpoint; layers whose shape differs (another class count) start fresh",
    )
    backup_every: int = field(50, "steps between backups for resuming a killed run")
    overlays: int = field(3, "validation images drawn with predictions in TensorBoard")
    verbose: int = field(1, "Keras progress output: 0 silent, 1 progress bar, 2 one line/epoch")


@dataclasses.dataclass
class Session:
    """What `setup` hands to the later stages of one training session."""

    config: TrainConfig  # resolved: steps, classes and ignore index filled in from the data
    out: str  # this worker's folder
    strategy: tf.distribute.Strategy
    policy: str
    train_source: data_lib.Source
    val_source: data_lib.Source
    model: keras.Model
    start_step: int  # 0, or the step a backup was taken at

    @property
    def total_steps(self):
        return self.config.epochs * self.config.steps_per_epoch


def setup(config):
    """Check the config and the data, write config.json and labels.txt, and build the model,
    restored from a backup where the run was killed."""
    setup_lib.check_config(config)
    # Before TensorFlow's first op; TensorFlow's own choice (0, 0) was the fastest measured.
    training.configure_threads(config.inter_op_threads, config.intra_op_threads)
    strategy = setup_lib.make_strategy(config.strategy)
    out = setup_lib.worker_out(config.out, strategy)
    policy = setup_lib.set_precision(config)
    keras.utils.set_random_seed(config.seed)
    train_source, val_source = setup_lib.load_data(config)
    config = setup_lib.resolve(config, train_source)
    setup_lib.check_resumable(config, out)
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
        class_weights = training.class_weights(
            train_source,
            num_classes,
            labels.ignore_index,
            config.class_weights,
            config.class_weight_c,
        )
        print(
            f"{config.class_weights} class weights: " + ", ".join(f"{w:.3g}" for w in class_weights)
        )
    with strategy.scope():
        model = setup_lib.build_training_model(config, num_classes, total_steps, class_weights)
        start_step = cb.Backup.restore(os.path.join(out, "backup"), model)
        if config.init_from and start_step == 0:  # a resumed run continues from its backup
            try:
                print(f"--init-from {transfer.init_from(model, config.init_from)}")
            except ValueError as error:
                raise ValueError(f"--init-from {error}") from None
    compat.build_metrics_while_tracing(model)
    if start_step == 0:  # a fresh start: drop what an attempt killed before its first backup left
        for name in ("log.csv", "best.json", "best.keras", "last.keras"):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    return Session(config, out, strategy, policy, train_source, val_source, model, start_step)


def make_callbacks(session):
    config = session.config
    images, masks = setup_lib.first_examples(session.val_source, config.overlays)
    previews = None
    if config.overlays and images is not None:
        previews = (images, masks, session.train_source.labels)
    return training.callbacks(
        session.out, backup_every=config.backup_every,
        num_classes=session.train_source.labels.num_classes, strategy=session.strategy,
        tensorboard=True, previews=previews,
    )  # fmt: skip


def fit(session, callbacks):
    """`model.fit` from the session's start step; returns (histories, seconds)."""
    config = session.config
    names = training.output_names(config.aux, config.aux2)

    def train_data(step):
        ds = data_lib.make_pipeline(
            session.train_source,
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
        return ds.map(training.targets(names), num_parallel_calls=tf.data.AUTOTUNE)

    val_data = training.validation_data(
        session.val_source, names, batch_size=config.val_batch_size, steps=config.val_steps
    )
    resumed = f" (resuming at step {session.start_step})" if session.start_step else ""
    print(
        f"training on {session.train_source.name}, validating on {session.val_source.name}: "
        f"{config.num_classes} classes, {config.epochs} epochs x {config.steps_per_epoch} steps, "
        f"batch {config.batch_size}, {session.strategy.num_replicas_in_sync} replica(s), "
        f"{session.policy}{resumed}"
    )
    start = time.perf_counter()
    with session.strategy.scope():
        history = fit_from(
            session.model, session.start_step, config, train_data, val_data, callbacks
        )
    return history, time.perf_counter() - start


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
                callbacks=[*callbacks, cb.EpochsShown(config.epochs)],
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


def finalise(session, history, seconds):
    """Write model.keras (the inference model) and summary.json, drop the backup; returns the
    summary."""
    model, out = session.model, session.out
    steps = int(model.optimizer.iterations.numpy())
    if model.stop_training and steps < session.total_steps:
        raise ValueError(
            f"training stopped at step {steps}: the loss became NaN "
            f"(try a lower --lr); the last good epoch is in {out}/last.keras."
        )
    final = training.inference_model(model, session.config.num_classes)
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
        "steps_this_session": steps - session.start_step,
        "final_val_miou": last_logs.get(MONITOR),
        "best_val_miou": None if best is None else best[MONITOR],
        "best_epoch": None if best is None else best["epoch"],
    }
    write_text_atomic(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return summary


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `fit`: says where the run stopped and that the same command resumes."""


def train(config):
    """Run (or resume) one training job; returns a summary dict."""
    session = setup(config)
    try:
        history, seconds = fit(session, make_callbacks(session))
    except KeyboardInterrupt:
        step = int(session.model.optimizer.iterations.numpy())
        backup = cb.Backup.saved_step(os.path.join(session.out, "backup"))
        raise Interrupted(
            f"interrupted at step {step}; the same command resumes "
            + (f"from the backup of step {backup}" if backup else "from the start")
            + f" in {session.out}."
        ) from None
    return finalise(session, history, seconds)


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


__all__ = ["TrainConfig", "run", "train"]
