"""Starting a model from trained weights (`fastscnn train --init-from camvid|PATH.keras|PATH.pth`).

Layers are matched by name (the names say where a layer sits in the paper, so they are the
same in every Fast-SCNN built here). A layer whose weights have another shape keeps its fresh
initialisation: with a different class count that is the last 1x1 conv of the classifier and
of each aux head, the only layers whose shape depends on the classes. Everything else,
batch-norm statistics included, is copied.
"""

import os

from fastscnn_tf import presets
from fastscnn_tf.model import copy_weights_by_name

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".npz", ".tar", ".bin")


def check_source(spec):
    """Raise a ValueError that starts with `spec` unless it is a preset or a readable file
    (the command puts its option's name in front)."""
    if presets.split_name(spec):
        return
    if not os.path.isfile(spec):
        raise ValueError(
            f"{spec}: no such file and no preset of that name "
            f"(presets: {', '.join(presets.names()) or 'none'})."
        )
    if not spec.lower().endswith((".keras", *CHECKPOINT_SUFFIXES)):
        raise ValueError(
            f"{spec}: expected a preset name, a .keras model or a PyTorch "
            "checkpoint (.pth, .pt, .npz)."
        )


def source_model(spec):
    """The Keras model holding the weights `spec` names."""
    from fastscnn_tf import weights
    from fastscnn_tf.modelfile import load_keras_model

    check_source(spec)
    path = presets.resolve_model(spec, "float")
    if path.lower().endswith(".keras"):
        return load_keras_model(path)
    state = weights.read_checkpoint(path)
    has_aux = any(key.startswith(weights.AUX_MODULE) for key in state)
    return weights.import_state_dict(state, aux=has_aux)


def format_report(spec, report):
    lines = [f"{spec}: loaded {len(report['loaded'])} layers"]
    if report["reinitialised"]:
        lines.append(
            "  re-initialised (other shape, e.g. another class count): "
            + ", ".join(f"{name} ({why})" for name, why in report["reinitialised"])
        )
    if report["not_in_source"]:
        lines.append("  not in the source, kept fresh: " + ", ".join(report["not_in_source"]))
    if report["unused"]:
        lines.append("  in the source but not used: " + ", ".join(report["unused"]))
    return "\n".join(lines)


def init_from(model, spec):
    """Load `spec`'s weights into `model` where they fit; returns a summary of what was loaded,
    re-initialised and left out."""
    report = copy_weights_by_name(model, source_model(spec))
    if not report["loaded"]:
        raise ValueError(f"{spec}: no layer of it matches this Fast-SCNN.")
    return format_report(spec, report)
