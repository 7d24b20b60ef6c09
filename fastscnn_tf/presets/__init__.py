"""Trained models shipped inside the package, read by name: nothing is downloaded.

A preset is a folder beside this file holding `preset.json` (what `fastscnn presets` lists),
the float `model.keras` (any input size), its int8 `.tflite` export (uint8 image in, class
mask out), `labels.txt` and `MODEL_CARD.md`. A preset trained for frames larger than its
data's says so in `"scale"` (2: CamVid's 360x480 frames seen at 720x960): its float model
then reads every image at that scale, and its int8 model's input size already is one.
Wherever a command takes `--model`, `NAME` means the preset's float model and `NAME:int8` its
int8 one; a path has a `/` (`./camvid`).
"""

import json
import os

ROOT = os.path.dirname(os.path.abspath(__file__))
INFO = "preset.json"
KINDS = ("float", "int8")


def names():
    """The presets shipped with this install, sorted."""
    return sorted(
        entry for entry in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, entry, INFO))
    )


def info(name):
    """The preset's `preset.json` as a dict, its folder under `"dir"`."""
    folder = os.path.join(ROOT, name)
    path = os.path.join(folder, INFO)
    if os.sep in name or not os.path.isfile(path):
        available = ", ".join(names()) or "none in this install"
        raise ValueError(f"unknown preset {name!r} (available: {available}).")
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    return {**result, "dir": folder}


def path(name, kind="float"):
    """The file of preset `name`: its float `.keras` (`kind="float"`) or int8 `.tflite`."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(KINDS)}.")
    preset = info(name)
    return os.path.join(preset["dir"], preset["files"][kind])


def split_name(value):
    """`(name, kind)` if `value` names a preset (`camvid`, `camvid:int8`), else None. A bare
    name is always the preset, even beside a local file or folder of that name (a CamVid data
    folder called `camvid` is common); write `./camvid` to mean the path."""
    value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    name, _, kind = value.partition(":")
    if not name or "/" in value or os.sep in value or name not in names():
        return None
    if kind and kind not in KINDS:
        raise ValueError(
            f"--model {value}: unknown preset variant {kind!r} "
            f"(use {name}, {name}:float or {name}:int8)."
        )
    return name, kind or None


def check_model_value(value, option="--model"):
    """Refuse, before anything heavy loads, a model argument that is neither a preset (with a
    known variant) nor an existing path: a FileNotFoundError naming `option` and the presets."""
    if not value or split_name(value) is not None:  # split_name refuses unknown variants
        return
    text = os.fspath(value)
    if not os.path.exists(text):
        if "/" in text or os.sep in text or os.path.splitext(text)[1]:
            raise FileNotFoundError(f"{option} {value} does not exist.")
        available = ", ".join(names()) or "none in this install"
        raise FileNotFoundError(
            f"{option} {value}: no such file, and not a preset (presets: {available})."
        )


def resolve_model(value, kind="float"):
    """A `--model` value as a file path: a preset name becomes its file (`kind` unless the
    value says `:int8` or `:float`); anything else is returned unchanged."""
    preset = split_name(value)
    if preset is None:
        return value
    name, chosen = preset
    return path(name, chosen or kind)


def input_scale(value):
    """The scale at which the model `value` names sees images: a float preset's `"scale"`
    (default 1); 1 for its int8 model (its input size says it) and for any path."""
    preset = split_name(value)
    if preset is None or (preset[1] or "float") != "float":
        return 1.0
    return float(info(preset[0]).get("scale", 1.0))


def describe():
    """One line per preset, for `fastscnn presets`."""
    lines = []
    for name in names():
        preset = info(name)
        h, w = preset["input_size"]
        scale = preset.get("scale", 1.0)
        seen = f" (float: images at {scale:g}x)" if scale != 1.0 else ""
        lines.append(
            f"{name:<10} {preset['num_classes']} classes, int8 at {h}x{w}{seen}; "
            f"{preset['metric']}: {preset['float']:.2f} float, {preset['int8']:.2f} int8 "
            f"-- {preset['description']}\n"
            f"{'':<10} files: {preset['dir']}"
        )
    return "\n".join(lines) if lines else "no presets in this install"
