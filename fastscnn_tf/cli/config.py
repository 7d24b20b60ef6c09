"""Job configs as dataclasses, and their command-line and JSON forms.

Each job (train, evaluate, export, ...) is a function that takes one dataclass. Its fields are
the command's options: the default is the CLI default, `metadata["help"]` the help text,
`metadata["positional"]` makes it a positional argument and `metadata["parse"]` turns the
string into the field's value (e.g. `parse_size` for `512x1024`). The resolved config is
written next to a run's outputs as JSON, so any run can be repeated.
"""

import argparse
import dataclasses
import json
import re
import types
import typing

from fastscnn_tf import geometry
from fastscnn_tf.files import check_output_dir, check_output_file, write_text_atomic

# Config fields that name what a job writes, by the convention every job follows.
OUTPUT_FIELDS = {"out": "folder", "output_dir": "folder", "dest": "folder", "output": "file"}


def parse_size(text):
    """`HxW` (e.g. `512x1024`) -> (H, W), for argparse (`geometry.parse_size`)."""
    try:
        return geometry.parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_range(text):
    """`LO,HI` (e.g. `0.5,2.0`) -> (LO, HI) with 0 < LO <= HI."""
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"range {text!r} is not LO,HI, e.g. 0.5,2.0") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"range {text!r} needs 0 < LO <= HI")
    return (lo, hi)


def parse_scales(text):
    """`S,S,...` (e.g. `1,1.5,2`) -> a tuple of positive floats (`geometry.parse_scales`)."""
    try:
        return geometry.parse_scales(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def field(default, help, positional=False, parse=None, choices=None):  # noqa: A002
    meta = {"help": help, "positional": positional, "parse": parse, "choices": choices}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def scales_field(what):
    """The `--scales` option of a job that segments `what` (e.g. "the images")."""
    return field(
        (1.0,),
        f"test-time scales S,S,...: average class probabilities over {what} scaled by each "
        "(e.g. 1,1.25,1.5,2; a .keras model; one network pass per scale)",
        parse=parse_scales,
    )


def flip_field(what):
    return field(False, f"also average over the mirror images of {what} (twice the passes)")


def check_augmentation(runtime, scales, flip):
    """`runtime.check_augmentation` before any work, its error naming the options."""
    try:
        return runtime.check_augmentation(scales, flip)
    except ValueError as error:
        raise ValueError(f"--scales/--flip: {error}") from None


def _base_type(annotation):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_arguments(parser, config_cls):
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        meta = f.metadata
        kind = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = {"help": meta.get("help", "")}
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta.get("parse"):
            kwargs["type"] = meta["parse"]
        elif typing.get_origin(kind) in (list, tuple):
            kwargs["nargs"] = "+"
            kwargs["type"] = typing.get_args(kind)[0]
        else:
            kwargs["type"] = kind
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
        else:
            kwargs["default"] = default
            if default is not None and kind is not bool:
                kwargs["help"] += f" (default: {_show(default)})"
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)


def _show(value):
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]},{value[1]}"
    return value


def from_args(config_cls, namespace):
    names = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in vars(namespace).items() if k in names}
    return config_cls(**values)


def in_flags(message, config_cls):
    """A library error in the command's words. The library names its parameters as Python
    spells them (`num_classes=30`, `metadata=False`, `pass class_names=`); each that is one of
    the command's options becomes its flag (`--num-classes 30`, `--no-metadata`,
    `pass --class-names`)."""
    for f in dataclasses.fields(config_cls):
        if f.metadata.get("positional"):
            continue
        flag = "--" + f.name.replace("_", "-")
        name = rf"(?<![\w.-]){f.name}="
        message = re.sub(name + r"True\b", flag, message)
        message = re.sub(name + r"False\b", "--no-" + flag[2:], message)
        message = re.sub(name + r"(?=[^\s,;)])", flag + " ", message)
        message = re.sub(name, flag, message)
    return message


def check_outputs(config):
    """Refuse, before a job starts, an output it could not write (a folder under a regular
    file, a file where a folder goes, ...): the fields named in `OUTPUT_FIELDS`."""
    for f in dataclasses.fields(config):
        kind = OUTPUT_FIELDS.get(f.name)
        value = getattr(config, f.name)
        if kind is None or not value:  # None / "": the job picks a default and checks it
            continue
        if kind == "folder":
            check_output_dir(value, f.name)
        else:
            check_output_file(value, f.name)


# Config fields that name a model: a preset or a file that must exist.
MODEL_FIELDS = ("model", "models", "init_from")


def check_models(config):
    """Refuse an unknown preset or a missing model file before TensorFlow loads (seconds and
    hundreds of MB spent on an argument that was wrong from the start)."""
    from fastscnn_tf import presets  # light: os and json only

    positional = {f.name for f in dataclasses.fields(config) if f.metadata.get("positional")}
    for name in MODEL_FIELDS:
        value = getattr(config, name, None)
        option = name if name in positional else "--" + name.replace("_", "-")
        for item in value if isinstance(value, (list, tuple)) else [value]:
            presets.check_model_value(item, option)


# Count fields that must be 1 or more where given (None: the job's default).
POSITIVE_FIELDS = ("num_classes", "num_threads", "threads", "calibration_images", "runs")


def check_counts(config):
    """Refuse a zero or negative count with its option's name, before any work (else the
    error comes from deep inside: Keras' "filters", LiteRT blaming the model file)."""
    for name in POSITIVE_FIELDS:
        value = getattr(config, name, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, int) and item < 1:
                raise ValueError(f"--{name.replace('_', '-')} {item}: must be 1 or more.")


def to_json(config):
    return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True, default=str)


def save_config(config, path):
    write_text_atomic(path, to_json(config) + "\n")


def load_config(config_cls, path):
    """Read a config written by `save_config`; tuples come back as tuples."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    hints = typing.get_type_hints(config_cls)
    values = {}
    for f in dataclasses.fields(config_cls):
        if f.name in data:
            value = data[f.name]
            kind = _base_type(hints[f.name])
            if isinstance(value, list) and typing.get_origin(kind) is tuple:
                value = tuple(value)
            values[f.name] = value
    return config_cls(**values)
