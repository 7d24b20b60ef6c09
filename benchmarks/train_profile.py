"""Where a training epoch of `fastscnn train` goes: the step's ops by pass, stage and kind,
tf.data, validation, checkpoints and idle time, from TensorFlow's own profiler.

The protocol's recipe (batch 8, one aux head, SGD with weight decay, poly lr, no colour jitter)
on CamVid train, through the library's own path: `FastSCNN`, `training.compile`,
`data.make_pipeline` (JPEG/PNG decode, antialiased scale, crop, flip), `model.fit` with
`training.callbacks` (checkpoints, backup, CSV log) and one validation batch an epoch, as
`fastscnn train --val-steps 1` runs it. The first epoch (tracing) is left out; the second is
traced with `tf.profiler`, and every op that ran on TensorFlow's compute threads is filed by

- pass: forward, backward (`gradient_tape/`), loss (forward and backward of the losses),
  optimizer (the SGD update), metrics (training mIoU and pixel accuracy);
- stage: the paper's (learning to downsample, GFE bottlenecks, pyramid pooling, feature
  fusion, classifier, aux head) and the two full-size upsamplings of the logits;
- kind: depthwise conv, 3x3 conv, 1x1 conv, batch norm, bilinear resize, cross-entropy,
  ReLU and other element-wise ops.

An op's time is its wall time on the compute thread that ran it (its intra-op threads work
inside it), so the shares are of op time; "idle" is the share of the epoch's steps when no op
ran on any compute thread (Python, dispatch, waiting for data).

    python benchmarks/train_profile.py                        # crop 320x320, 20 steps traced
    python benchmarks/train_profile.py --crop 360x480 --steps 10
"""

import argparse
import collections
import glob
import os
import re
import tempfile
import time

from train_end_to_end import cpu_family

HERE = os.path.dirname(os.path.abspath(__file__))
CAMVID = os.path.join(HERE, "..", "..", "shared", "data", "camvid")
STAGES = (  # (layer-name prefix, stage); the first match wins
    ("ltd_", "learning to downsample"),
    ("gfe_ppm", "pyramid pooling"),
    ("gfe_b", "GFE bottlenecks"),
    ("ffm_", "feature fusion"),
    ("cls_", "classifier"),
    ("aux_logits", "full-size upsampling"),
    ("aux", "aux head"),
    ("logits", "full-size upsampling"),
    ("preprocess", "input"),
    ("align", "input"),
)
THREE_BY_THREE = ("ltd_conv", "aux_conv")  # every other Conv2D of the network is 1x1


def op_type(name):
    """`scope/op:_MklNativeConv2DBackpropFilter` -> `Conv2DBackpropFilter`."""
    kind = name.rsplit(":", 1)[-1]
    return re.sub(r"^_(MklNative|Mkl|_MklDummy)", "", kind)


def layer_of(path):
    """The Keras layer an op belongs to, from its name scope (`fast_scnn_1/gfe_b1_2_dw_1/...`)."""
    match = re.search(r"fast_scnn(?:_\d+)?/([a-z0-9_]+?)(?:_\d+)?/", path)
    return match.group(1) if match else None


def classify(name):
    """(pass, stage, kind) of one profiled op name `scope/.../op:Type`."""
    path, kind = name.rsplit(":", 1)[0], op_type(name)
    layer = layer_of(path + "/")
    if "compile_loss" in path or "SparseSoftmaxCrossEntropy" in kind:
        step = "loss"
    elif re.search(r"(^|/)(SGD|sgd|optimizer)", path) or "ResourceApply" in kind:
        step = "optimizer"
    elif "gradient_tape/" in path:
        step = "backward"
    elif layer is None and re.search(r"(miou|accuracy|metric|confusion)", path, re.I):
        step = "metrics"
    elif layer is None:
        step = "metrics and glue"  # the mIoU confusion matrix, pixel accuracy, loss seeds
    else:
        step = "forward"
    stage = "losses (full size)" if step == "loss" else "-"
    if layer is not None and step != "loss":
        stage = next((s for prefix, s in STAGES if layer.startswith(prefix)), "other layers")
    if step == "loss":
        category = "cross-entropy"
    elif "Depthwise" in kind:
        category = "depthwise conv"
    elif "Conv2D" in kind:
        category = "3x3 conv" if layer in THREE_BY_THREE else "1x1 conv"
    elif "BatchNorm" in kind:
        category = "batch norm"
    elif "Resize" in kind:
        category = "bilinear resize"
    elif kind.startswith("Relu"):
        category = "ReLU"
    elif kind in ("ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "NoOp"):
        category = "variables"
    else:
        category = "element-wise / other"
    return step, stage, category


def op_events(xspace_path):
    """[(name, start_ps, end_ps)] of every op on the host's TensorFlow compute threads, and
    {line name: busy ps} of the tf.data threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as f:
        space.ParseFromString(f.read())
    ops, data_busy = [], collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            start = line.timestamp_ns * 1000
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                begin = start + event.offset_ps
                if line.name.startswith("tf_Compute") and ":" in name and "::" not in name:
                    ops.append((name, begin, begin + event.duration_ps))
                elif line.name.startswith("tf_data") and name.startswith("Iterator::"):
                    data_busy[line.name.split("/")[0]] += event.duration_ps
    return ops, data_busy


def union_ps(intervals):
    """Total length of the union of (start, end) intervals."""
    total, end = 0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def timeline(trace_epoch, logdir):
    """A Keras callback that records step, validation and epoch times in its `times`
    (`{epoch: {"begin", "steps": [(start, end)], "test_begin", "test_end", "end"}}`) and
    traces the training steps of epoch `trace_epoch` into `logdir`."""
    import keras  # here, so that `--help` and the tests of the pure functions stay light
    import tensorflow as tf

    class Timeline(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.epoch, self.step_start = {}, None, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.times[epoch] = {"begin": time.perf_counter(), "steps": []}
            if epoch == trace_epoch:
                tf.profiler.experimental.start(logdir)

        def on_train_batch_begin(self, batch, logs=None):
            self.step_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times[self.epoch]["steps"].append((self.step_start, time.perf_counter()))

        def on_test_begin(self, logs=None):
            if self.epoch == trace_epoch:
                tf.profiler.experimental.stop()  # the training steps only
            self.times[self.epoch]["test_begin"] = time.perf_counter()

        def on_test_end(self, logs=None):
            self.times[self.epoch]["test_end"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times[epoch]["end"] = time.perf_counter()

    return Timeline()


def train(args, logdir, out):
    import keras

    from fastscnn_tf import FastSCNN, data, training

    keras.utils.set_random_seed(0)
    source = data.load_source(f"folder:{args.data}", "train")
    val = data.load_source(f"folder:{args.data}", "val")
    model = FastSCNN(source.labels.num_classes, aux=True)
    steps = args.steps
    recipe = training.Recipe(ignore_index=source.labels.ignore_index)
    training.compile(model, recipe, total_steps=3 * steps)
    batches = data.make_pipeline(
        source, batch_size=args.batch, crop=args.crop, augment=True, shuffle=True, repeat=True,
        colour=False,
    )  # fmt: skip
    recorder = timeline(trace_epoch=1, logdir=logdir)
    model.fit(
        batches.map(training.targets(model)),
        epochs=3,
        steps_per_epoch=steps,
        validation_data=training.validation_data(val, model, batch_size=4, steps=1),
        callbacks=[*training.callbacks(out, num_classes=source.labels.num_classes),
                   recorder],
        verbose=0,
    )  # fmt: skip
    return recorder.times


def report(times, logdir, batch):
    files = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    ops, data_busy = op_events(files[-1])
    epoch = times[1]
    steps = epoch["steps"]
    n = len(steps)
    wall = (steps[-1][1] - steps[0][0]) * 1e12  # ps, the traced steps
    busy = union_ps([(b, e) for _, b, e in ops])
    total = sum(e - b for _, b, e in ops)
    by = {key: collections.Counter() for key in ("pass", "stage", "kind", "pass/kind")}
    for name, b, e in ops:
        step, stage, kind = classify(name)
        by["pass"][step] += e - b
        by["stage"][stage] += e - b
        by["kind"][kind] += e - b
        by["pass/kind"][(step, kind)] += e - b
    ms = 1e-9  # ps -> ms
    print(
        f"\n{n} steps traced, batch {batch}: {wall * ms / n:.0f} ms a step "
        f"({batch * n / (wall * 1e-12):.2f} img/s); op time {total * ms / n:.0f} ms a step on "
        f"the compute threads; no op running {100 * max(0, wall - busy) / wall:.1f} % of the "
        "steps' wall time"
    )
    for key in ("pass", "stage", "kind"):
        print(f"\n| {key} | ms a step | share of op time |\n|---|---:|---:|")
        for name, value in by[key].most_common():
            print(f"| {name} | {value * ms / n:.1f} | {100 * value / total:.1f} % |")
    print("\n| pass / kind (top 12) | ms a step | share |\n|---|---:|---:|")
    for (step, kind), value in by["pass/kind"].most_common(12):
        print(f"| {step} / {kind} | {value * ms / n:.1f} | {100 * value / total:.1f} % |")
    print("\n| epoch part (epochs 2 and 3, s) | " + " | ".join(f"epoch {e + 1}" for e in (1, 2)))
    print("|---|---:|---:|")
    rows = collections.OrderedDict()
    for e in (1, 2):
        t = times[e]
        s = t["steps"]
        rows.setdefault("steps", []).append(s[-1][1] - s[0][0])
        rows.setdefault("validation (1 batch of 4)", []).append(t["test_end"] - t["test_begin"])
        rows.setdefault("before the first step", []).append(s[0][0] - t["begin"])
        rows.setdefault("checkpoints, backup, logs", []).append(t["end"] - t["test_end"])
        rows.setdefault("whole epoch", []).append(t["end"] - t["begin"])
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    producing = sum(data_busy.values())
    print(
        f"\ntf.data threads busy {producing * ms / n:.0f} ms a step (decode, scale, crop, flip; "
        "beside the step, on the same cores)"
    )


def main():
    from fastscnn_tf.geometry import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=CAMVID, help="CamVid folder (train, val)")
    parser.add_argument("--crop", type=parse_size, default=(320, 320), help="HxW")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="steps an epoch (one is traced)")
    parser.add_argument("--trace", help="keep the trace in this folder (TensorBoard reads it)")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        parser.error(f"--data {args.data}: not a folder (the shared CamVid data)")
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}; {cpu_family()}")
    with tempfile.TemporaryDirectory() as tmp:  # the trace is only read here
        logdir, out = args.trace or os.path.join(tmp, "trace"), os.path.join(tmp, "run")
        times = train(args, logdir, out)
        report(times, logdir, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
