"""Twin run: the project's training step against the PyTorch reference's, from identical weights.

Both sides start from the same random weights (the PyTorch rewrite in `fastscnn_tf.torch_reference`,
copied into Keras with `fastscnn_tf.weights`), take the same batches, and after every step this
compares the loss, the gradients and the updated weights (BN statistics included). The PyTorch
side is the reference's recipe as its code writes it: `CrossEntropyLoss(ignore_index)` on the
main and aux outputs (aux weight 0.4), `SGD(momentum=0.9, weight_decay=4e-5)` on every
parameter, poly learning rate stepped once per batch. The Keras side is `fastscnn train`'s own
compiled model (`build_training_model`) stepped with `train_on_batch`.

Float32 alone makes two runs of this network drift apart (BN over the 1x1 pyramid-pooling map
of a small batch amplifies rounding), so the yardstick is the reference in float64: each
float32 side is scored by its relative error against it, and the project is as faithful as
it can be when its error is that of the reference's own float32 run.

    python benchmarks/twin_run.py                        # 3 steps, 64x64, batch 8
    python benchmarks/twin_run.py --steps 20 --size 128x128 --weight-decay 0.01
    python benchmarks/twin_run.py --weight-decay 0.01 --conv-decay-only   # the project default

Dropout is off on both sides (its masks cannot be shared); everything else is the recipe.
tests/test_twin_run.py keeps the project's error at the float32 reference's.
"""

import argparse
import os

import numpy as np


def load_reference():
    """`fastscnn_tf.torch_reference`, imported on first use (it imports torch)."""
    from fastscnn_tf import torch_reference

    return torch_reference


def make_batches(steps, batch, size, num_classes, ignore_index, seed=0):
    """Images in [0, 255] with structure (smooth blobs the labels follow) and labels with a
    void border, so the ignored pixels matter to the mean."""
    rng = np.random.default_rng(seed)
    h, w = size
    batches = []
    for _ in range(steps):
        base = rng.uniform(0, 255, (batch, h // 8, w // 8, 3)).astype(np.float32)
        images = np.repeat(np.repeat(base, 8, 1), 8, 2)
        images = np.clip(images + rng.normal(0, 20, images.shape), 0, 255).astype(np.float32)
        masks = (images[..., 0] * num_classes / 256).astype(np.int32)
        masks[:, : h // 8] = ignore_index  # a void band, as padding leaves
        batches.append((images, masks))
    return batches


class TorchSide:
    """The reference's training step: model, `SGD(weight_decay=)` and poly lr per step."""

    def __init__(self, model, config, total_steps):
        self.model, self.config = model, config
        self.dtype = next(model.parameters()).dtype
        self.optimizer = torch().optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch().optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: (1 - min(step / total_steps, 1.0)) ** config.poly_power
        )

    def step(self, images, masks):
        """One step; returns (loss, {key: gradient as float64 numpy})."""
        F = torch().nn.functional
        x = load_reference().normalize(images).to(self.dtype)
        y = torch().from_numpy(masks).long()
        main, aux = self.model(x)
        ignore = self.config.ignore_index
        loss = F.cross_entropy(main, y, ignore_index=ignore)
        loss = loss + self.config.aux_weight * F.cross_entropy(aux, y, ignore_index=ignore)
        self.optimizer.zero_grad()
        loss.backward()
        grads = {k: p.grad.double().numpy() for k, p in self.model.named_parameters()}
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach()), grads

    def state(self):
        return {k: v.double().numpy().copy() for k, v in self.model.state_dict().items()}


def torch():
    import torch as module

    return module


def reference_model(num_classes, seed):
    """The PyTorch reference with random weights and BN statistics, dropout off."""
    reference = load_reference()
    model = reference.FastSCNN(num_classes, aux=True)
    for module in model.modules():
        if isinstance(module, torch().nn.Dropout):
            module.p = 0.0
    return reference.randomize(model, seed).train()


def keras_model(recipe, num_classes, total_steps, state):
    """The training model compiled as `fastscnn train` compiles it (`training.compile`), with
    reference upsampling and no dropout, holding the reference `state`."""
    from fastscnn_tf import training, weights
    from fastscnn_tf.model import FastSCNN

    model = FastSCNN(num_classes, aux=True, align_corners=True, dropout=0.0)
    model = training.compile(model, recipe, total_steps=total_steps)
    state = {k: v.astype(np.float32) for k, v in state.items()}
    weights.load_reference_weights(model, state)
    return model


def keras_step(model, images, masks):
    """Loss and gradients as `train_on_batch` computes them, then `train_on_batch` itself."""
    import tensorflow as tf

    targets = {name: tf.constant(masks) for name in model.output_names}
    saved = [v.numpy() for v in model.non_trainable_variables]
    with tf.GradientTape() as tape:
        # y_pred as the model returns it (a list): Keras pairs a dict y_pred with the losses
        # in another order, which `fit` never does.
        outputs = model(images, training=True)
        loss = model.compute_loss(x=images, y=targets, y_pred=outputs, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    for variable, value in zip(model.non_trainable_variables, saved, strict=True):
        variable.assign(value)  # the forward above moved the BN statistics: undo it
    model.train_on_batch(images, targets)
    pairs = zip(model.trainable_variables, grads, strict=True)
    return float(loss), {v.path: g.numpy() for v, g in pairs}


def keras_state(model, plan):
    """The Keras weights (and gradients) under the reference's keys and layouts."""
    return {key: to_torch_layout(variable.numpy(), perm) for key, variable, perm in plan}


def to_torch_layout(value, perm):
    return np.asarray(value, np.float64) if perm is None else np.transpose(value, np.argsort(perm))


def relative_error(got, want, keys):
    """sqrt(sum |got - want|^2) / sqrt(sum |want|^2) over the tensors named by `keys`."""
    num = sum(float(np.sum((got[k] - want[k]) ** 2)) for k in keys)
    den = sum(float(np.sum(want[k] ** 2)) for k in keys)
    return (num / max(den, 1e-30)) ** 0.5


def run_twin(config, num_classes, batches, total_steps=None, seed=0, log=print):
    """Step three twins through `batches` from the same weights: the reference in float64
    (the exact answer), the reference in float32 (how far float32 itself strays) and the
    project. Returns one record a step: each float32 side's relative error against float64
    for the loss, the gradients, the trainable weights and the BN moving means."""
    import copy

    from fastscnn_tf import weights

    total_steps = total_steps or len(batches)
    exact_model = reference_model(num_classes, seed)
    state = {k: v.numpy() for k, v in exact_model.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    project = keras_model(config, num_classes, total_steps, state)
    plan = weights.weight_plan(project)
    path_to_key = {variable.path: key for key, variable, _ in plan}
    perm_of = {key: perm for key, _, perm in plan}
    exact = TorchSide(copy.deepcopy(exact_model).double(), config, total_steps)
    single = TorchSide(copy.deepcopy(exact_model).float(), config, total_steps)
    trainable = [k for k, _ in exact.model.named_parameters()]
    means = [k for k in state if k.endswith("running_mean")]
    records = []
    for step, (images, masks) in enumerate(batches, start=1):
        exact_loss, exact_grads = exact.step(images, masks)
        single_loss, single_grads = single.step(images, masks)
        keras_loss, grads = keras_step(project, images, masks)
        grads = {
            path_to_key[p]: to_torch_layout(g, perm_of[path_to_key[p]]) for p, g in grads.items()
        }
        want, got32, got = exact.state(), single.state(), keras_state(project, plan)
        record = {"step": step}
        for side, loss, g, w in (
            ("torch32", single_loss, single_grads, got32),
            ("keras", keras_loss, grads, got),
        ):
            record[side] = {
                "loss": abs(loss - exact_loss) / abs(exact_loss),
                "grads": relative_error(g, exact_grads, trainable),
                "weights": relative_error(w, want, trainable),
                "bn_means": relative_error(w, want, means),
            }
        records.append(record)
        log(
            f"step {step:3d}  loss {exact_loss:.5f}  relative error vs float64 "
            + "  ".join(
                f"{side}: " + " ".join(f"{k} {v:.1e}" for k, v in record[side].items())
                for side in ("torch32", "keras")
            )
        )
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--weight-decay", type=float, default=4e-5)
    parser.add_argument(
        "--conv-decay-only", action="store_true", help="the project's default decay scope"
    )
    args = parser.parse_args()
    import tensorflow as tf
    import torch

    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from fastscnn_tf import training

    config = training.Recipe(
        ignore_index=args.num_classes,
        weight_decay=args.weight_decay,
        weight_decay_all=not args.conv_decay_only,
    )
    size = tuple(int(v) for v in args.size.split("x"))
    batches = make_batches(args.steps, args.batch_size, size, args.num_classes, args.num_classes)
    run_twin(config, args.num_classes, batches)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
