"""A reference PyTorch Fast-SCNN checkpoint loaded into the Keras model (`fastscnn import-weights`).

The reference implementation's state-dict layout is listed in
`shared/reference/fast_scnn_pytorch_state_dict.txt` (a copy is in `tests/data/`). Every Keras layer
with weights has exactly one reference module: the name of that module is derived from the
Keras layer name by `MODULES` below (one rule per block kind), and its tensors are transposed
from PyTorch's layout to Keras' (`conv OIHW -> HWIO`, depthwise `(C, 1, 3, 3) -> (3, 3, C, 1)`,
BatchNorm `weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance`).

The imported model upsamples with `align_corners=True` like the reference, and includes the
ImageNet normalisation that the reference leaves to its data pipeline: like every model of this
project it takes RGB in [0, 255].
"""

import os
import re
import warnings
import zipfile

import keras
import numpy as np

from fastscnn_tf.model import PPM_BINS, FastSCNN

# Index of each part inside the reference's nn.Sequential blocks, by Keras layer-name suffix.
CONV_BN_RELU = {"": "0", "_bn": "1"}  # _ConvBNReLU.conv: Conv2d, BN, ReLU
# _DSConv.conv: depthwise conv, BN, ReLU, pointwise conv, BN, ReLU
DSCONV = {"_dw": "0", "_dw_bn": "1", "_pw": "3", "_pw_bn": "4"}
BOTTLENECK = {  # LinearBottleneck.block: _ConvBNReLU, _DWConv, Conv2d, BN
    "_expand": "0.conv.0",
    "_expand_bn": "0.conv.1",
    "_dw": "1.conv.0",
    "_dw_bn": "1.conv.1",
    "_project": "2",
    "_project_bn": "3",
}
FFM = {
    "_low_dw": "dwconv.conv.0",
    "_low_dw_bn": "dwconv.conv.1",
    "_low_conv": "conv_lower_res.0",
    "_low_bn": "conv_lower_res.1",
    "_high_conv": "conv_higher_res.0",
    "_high_bn": "conv_higher_res.1",
}

# (Keras layer-name prefix regex, reference module of the match, parts by suffix). The PPM's
# reference convs conv1..conv4 are the bins 1, 2, 3, 6 in order.
MODULES = (
    (r"ltd_conv", lambda m: "learning_to_downsample.conv.conv", CONV_BN_RELU),
    (r"ltd_dsconv(\d)", lambda m: f"learning_to_downsample.dsconv{m[1]}.conv", DSCONV),
    (
        r"gfe_b(\d)_(\d)",
        lambda m: f"global_feature_extractor.bottleneck{m[1]}.{int(m[2]) - 1}.block",
        BOTTLENECK,
    ),
    (
        r"gfe_ppm_bin(\d)_conv",
        lambda m: f"global_feature_extractor.ppm.conv{PPM_BINS.index(int(m[1])) + 1}.conv",
        CONV_BN_RELU,
    ),
    (r"gfe_ppm_out", lambda m: "global_feature_extractor.ppm.out.conv", CONV_BN_RELU),
    (r"ffm", lambda m: "feature_fusion", FFM),
    (r"cls_dsconv(\d)", lambda m: f"classifier.dsconv{m[1]}.conv", DSCONV),
    (r"cls", lambda m: "classifier", {"_conv": "conv.1"}),  # conv.0 is the Dropout
    (r"aux", lambda m: "auxlayer", {"_conv": "0", "_conv_bn": "1", "_cls": "4"}),  # 2 ReLU, 3 Drop
)

BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
# PyTorch -> Keras axis order of 4-D kernels.
CONV_PERM = (2, 3, 1, 0)  # (O, I, kh, kw) -> (kh, kw, I, O)
DEPTHWISE_PERM = (2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
IGNORED_SUFFIXES = (".num_batches_tracked",)  # BN bookkeeping, no weight in Keras
WRAPPER_KEYS = ("state_dict", "model")
AUX_MODULE = "auxlayer."


def reference_module(layer_name):
    """Reference module name (e.g. `classifier.conv.1`) of a Keras layer, or None."""
    for pattern, module, parts in MODULES:
        suffixes = "|".join(re.escape(s) for s in sorted(parts, key=len, reverse=True))
        match = re.fullmatch(f"{pattern}({suffixes})", layer_name)
        if match:
            part = parts[match[match.re.groups]]
            return f"{module(match)}.{part}"
    return None


def _variable_name(variable):
    return variable.path.rsplit("/", 1)[-1]


def weight_plan(model):
    """[(reference key, Keras variable, permutation or None)] for every weight of `model`.

    Raises ValueError for a layer with weights that the reference does not have (aux2).
    """
    plan = []
    for layer in model.layers:
        if not layer.weights:
            continue
        module = reference_module(layer.name)
        if module is None:
            raise ValueError(
                f"layer {layer.name!r} has no counterpart in the reference Fast-SCNN checkpoint"
            )
        for variable in layer.weights:
            name = _variable_name(variable)
            if isinstance(layer, keras.layers.BatchNormalization):
                plan.append((f"{module}.{BN_NAMES[name]}", variable, None))
            elif name == "bias":
                plan.append((f"{module}.bias", variable, None))
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                plan.append((f"{module}.weight", variable, DEPTHWISE_PERM))
            elif isinstance(layer, keras.layers.Conv2D):
                plan.append((f"{module}.weight", variable, CONV_PERM))
            else:
                raise ValueError(f"layer {layer.name!r}: no rule for weight {name!r}")
    return plan


def _torch_shape(keras_shape, perm):
    if perm is None:
        return tuple(keras_shape)
    return tuple(keras_shape[perm.index(axis)] for axis in range(len(perm)))


def unwrap_state_dict(checkpoint):
    """The flat `{name: array}` inside a checkpoint: `{"state_dict": ...}`, `{"model": ...}` or
    the state dict itself; DataParallel's `module.` prefix removed, BN counters dropped."""
    state = checkpoint
    while isinstance(state, dict):
        inner = [k for k in WRAPPER_KEYS if isinstance(state.get(k), dict)]
        if not inner:
            break
        state = state[inner[0]]
    if not isinstance(state, dict):
        raise ValueError(f"expected a state dict (names -> tensors), got {type(state).__name__}")
    flat = {}
    for key, value in state.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        name = key.removeprefix("module.")
        if hasattr(value, "detach"):  # a torch.Tensor
            value = value.detach().cpu().float().numpy()
        flat[name] = np.asarray(value)
    return flat


def read_checkpoint(path):
    """`{name: np.ndarray}` from a `.npz` or a PyTorch `.pth`/`.pt` file (any other suffix is
    read with torch too: reference checkpoints are often named `*.pth.tar` or `*.bin`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    if path.lower().endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                return unwrap_state_dict({key: data[key] for key in data.files})
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"checkpoint {path}: not a readable .npz file ({error})") from None
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"checkpoint {path}: reading PyTorch files needs torch: pip install "
            "'fastscnn-tf[torch]' (`pip install .[torch]` in a checkout), or save it as .npz"
        ) from None
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        # torch's own text advises weights_only=False, which would run the file's code: keep
        # only its first line and never that advice.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "weights_only" in str(error):
            reason = "it holds more than tensors, or is not a PyTorch checkpoint"
        raise ValueError(f"checkpoint {path}: not a readable PyTorch file ({reason})") from None
    return unwrap_state_dict(checkpoint)


def _format(title, items):
    return f"{title} ({len(items)}):\n" + "\n".join(f"  {item}" for item in items)


def load_reference_weights(model, state):
    """Set every weight of `model` from the flat reference `state`; all or nothing.

    Raises one ValueError listing every missing, unexpected and mis-shaped tensor.
    """
    plan = weight_plan(model)
    expected = {key for key, _, _ in plan}
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    misshaped = []
    for key, variable, perm in plan:
        want = _torch_shape(variable.shape, perm)
        if key in state and tuple(state[key].shape) != want:
            misshaped.append(f"{key}: checkpoint {tuple(state[key].shape)}, model expects {want}")
    problems = []
    if missing:
        problems.append(_format("missing from the checkpoint", missing))
    if unexpected:
        problems.append(_format("unexpected in the checkpoint", unexpected))
        if any(k.startswith(AUX_MODULE) for k in unexpected):
            problems.append("  (auxlayer.*: pass aux=True to import the aux head or drop_aux=True)")
    if misshaped:
        problems.append(_format("wrong shape", misshaped))
    if problems:
        raise ValueError("checkpoint does not fit the Fast-SCNN model:\n" + "\n".join(problems))
    for key, variable, perm in plan:
        value = state[key] if perm is None else np.transpose(state[key], perm)
        variable.assign(value.astype(variable.dtype))


def infer_num_classes(state):
    weight = state.get("classifier.conv.1.weight")
    if weight is None:
        raise ValueError("checkpoint has no classifier.conv.1.weight: pass num_classes=")
    return int(weight.shape[0])


def import_state_dict(state, num_classes=None, aux=False, drop_aux=False, input_shape=None):
    """Keras Fast-SCNN (RGB [0, 255] in, reference upsampling) holding the reference `state`."""
    if drop_aux:
        state = {k: v for k, v in state.items() if not k.startswith(AUX_MODULE)}
    model = FastSCNN(
        num_classes or infer_num_classes(state),
        input_shape=input_shape or (None, None, 3),
        aux=aux,
        align_corners=True,
        include_preprocessing=True,
    )
    load_reference_weights(model, state)
    return model
