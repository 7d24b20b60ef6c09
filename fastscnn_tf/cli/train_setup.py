"""`fastscnn train` before the first step: strategy, precision, data, checks and the model."""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from fastscnn_tf import callbacks as callbacks_lib
from fastscnn_tf import data as data_lib
from fastscnn_tf import training, transfer
from fastscnn_tf.cli import compat
from fastscnn_tf.cli.config import load_config
from fastscnn_tf.geometry import check_size
from fastscnn_tf.model import FastSCNN, init_like_pytorch

STRATEGIES = ("default", "mirrored", "multi-worker")
BACKUP_STATE = callbacks_lib.BACKUP_STATE


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi-worker needs the TF_CONFIG environment variable.")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        compat.patch_keras_multi_worker_logs()
        return strategy
    raise ValueError(f"--strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")


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
    for name in ("inter_op_threads", "intra_op_threads"):
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be 0 or more, got {value}.")
    for name in ("steps_per_epoch", "val_steps"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")
    if not config.lr > 0:
        raise ValueError(f"--lr must be positive, got {config.lr}.")
    check_size(config.crop, "--crop")  # the rule of every command: sides of 64 or more
    if config.class_weight_c <= 1:
        raise ValueError(f"--class-weight-c must be above 1, got {config.class_weight_c}.")
    if config.warmup_steps < 0 or config.weight_decay < 0 or config.aux_weight < 0:
        raise ValueError("--warmup-steps, --weight-decay and --aux-weight must not be negative.")
    if config.init_from:
        try:
            transfer.check_source(config.init_from)
        except ValueError as error:
            raise ValueError(f"--init-from {error}") from None


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
    if not os.path.exists(os.path.join(out, "backup", BACKUP_STATE)):
        if os.path.exists(os.path.join(out, "model.keras")):
            raise ValueError(f"--out {out} holds a finished run (model.keras); use a new --out.")
        return
    previous = load_config(type(config), saved)
    # The folder is the run: the same folder spelled otherwise (./runs/a/, an absolute path,
    # a folder moved since) is the same run; data paths compare as the files they name.
    ignore = {"verbose", "out", "inter_op_threads", "intra_op_threads"}  # not the math
    changed = [
        f.name
        for f in dataclasses.fields(config)
        if f.name not in ignore
        and _comparable(getattr(previous, f.name)) != _comparable(getattr(config, f.name))
    ]
    if changed:
        raise ValueError(
            f"--out {out} holds a run started with different options ({', '.join(changed)}); "
            "resume it with the same options or use a new --out."
        )


def _comparable(value):
    """A config value with the paths in it resolved: `folder:../data/` and
    `folder:/abs/data` name the same data."""
    if not isinstance(value, str):
        return value
    kind, sep, rest = value.partition(":")
    if sep and kind in ("folder", "cityscapes") and os.path.exists(rest):
        return f"{kind}:{os.path.realpath(rest)}"
    if not sep and os.path.sep in value and os.path.exists(value):
        return os.path.realpath(value)
    return value


def first_examples(source, count):
    images, masks = [], []
    for example in source.dataset.take(count).as_numpy_iterator():
        images.append(example["image"])
        masks.append(example["mask"])
    if not images or any(i.shape != images[0].shape for i in images):
        return None, None
    return np.stack(images), np.stack(masks).astype(np.int32)


def recipe_of(config, class_weights=None):
    """The `training.Recipe` the options describe."""
    return training.Recipe(
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        weight_decay_all=config.weight_decay_all,
        poly_power=config.poly_power,
        warmup_steps=config.warmup_steps,
        aux_weight=config.aux_weight,
        ohem=config.ohem,
        ohem_min_kept=config.ohem_min_kept,
        class_weights=None if class_weights is None else tuple(class_weights),
        ignore_index=config.ignore_index,
        jit=config.jit,
    )


def build_training_model(config, num_classes, total_steps, class_weights=None, model=None):
    """Fast-SCNN with the configured aux heads (or `model`, built to match them), compiled
    with the configured recipe (`training.compile`)."""
    if model is None:
        model = FastSCNN(
            num_classes, aux=config.aux, aux2=config.aux2, align_corners=config.align_corners
        )
        if config.init == "pytorch":  # --init-from and a resumed backup load over it
            init_like_pytorch(model, config.seed)
    return training.compile(model, recipe_of(config, class_weights), total_steps=total_steps)
