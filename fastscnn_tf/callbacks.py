"""Training callbacks: exact-resume backups, checkpoints, logs and pictures (what `fastscnn
train` runs; `training.callbacks` gives a Python user the same set)."""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from fastscnn_tf import viz
from fastscnn_tf.files import atomic_path, write_text_atomic
from fastscnn_tf.model import inference_model
from fastscnn_tf.modelfile import save_model_atomic

MONITOR = "val_miou"
BACKUP_STATE = "state.json"  # written last by a backup: a run with one is resumable


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

    STATE = BACKUP_STATE

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
        # that points to it. A kill at any moment leaves a consistent pair. The backup before
        # it stays too, so a weights file damaged later (a full disk, a bad copy) costs
        # `save_freq` steps, not the run.
        name = f"step-{step}.weights.h5"
        with atomic_path(os.path.join(self.backup_dir, name)) as tmp:
            self.model.save_weights(tmp)
        rng = [ops.convert_to_numpy(v).tolist() for v in random_states(self.model)]
        previous = self._read_state(self.backup_dir)
        if previous is not None:
            previous.pop("previous", None)
            if previous.get("weights") == name:
                previous = None
        state = {"step": step, "weights": name, "rng": rng, "previous": previous}
        write_text_atomic(os.path.join(self.backup_dir, self.STATE), json.dumps(state) + "\n")
        keep = {name, previous["weights"] if previous else None}
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old not in keep:
                os.remove(os.path.join(self.backup_dir, old))

    @classmethod
    def _read_state(cls, backup_dir):
        state_path = os.path.join(backup_dir, cls.STATE)
        if not os.path.exists(state_path):
            return None
        try:
            with open(state_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{state_path}: unreadable ({error}); remove {backup_dir} to start the run over."
            ) from None

    @classmethod
    def saved_step(cls, backup_dir):
        """The step of the backup in `backup_dir`, 0 where there is none or it is unreadable
        (what a message about a stopped run can say without failing itself)."""
        try:
            state = cls._read_state(backup_dir)
            return int(state["step"]) if state else 0
        except (ValueError, KeyError, TypeError):
            return 0

    @classmethod
    def restore(cls, backup_dir, model):
        """Load a backup into a compiled model; returns the step it was taken at, or 0. A
        weights file that cannot be read falls back to the backup before it, with a note."""
        state = cls._read_state(backup_dir)
        if state is None:
            return 0
        model.optimizer.build(model.trainable_variables)
        failures = []
        for entry in (state, state.get("previous")):
            if not entry:
                continue
            path = os.path.join(backup_dir, entry["weights"])
            try:
                model.load_weights(path)
            except Exception as error:  # h5py and Keras raise many types for a damaged file
                failures.append(f"{path}: {str(error).splitlines()[0] if str(error) else error}")
                continue
            step = int(entry["step"])
            restored = int(model.optimizer.iterations.numpy())
            variables = random_states(model)
            if restored != step or len(variables) != len(entry["rng"]):
                raise ValueError(f"{backup_dir}: the backup does not match this run's model.")
            for variable, value in zip(variables, entry["rng"], strict=True):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            if failures:
                print(f"note: {failures[0]} is unreadable; resuming from the backup of step {step}")
            return step
        raise ValueError(
            "the run's backup is unreadable (" + "; ".join(failures) + f"); remove {backup_dir} "
            "to start the run over."
        )


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
                    viz.overlay(image, mask, colors, ignore_index=self.labels.ignore_index),
                    viz.overlay(image, prediction, colors),
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


class EpochsShown(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, but its "Epoch i/N" names the run's `epochs`, not the `epochs` of
    the `fit` call (which for the rest of a resumed epoch is that epoch + 1)."""

    def __init__(self, epochs):
        super().__init__()
        self.total_epochs = int(epochs)

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.total_epochs
