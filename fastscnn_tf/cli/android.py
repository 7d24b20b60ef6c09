"""`fastscnn android-assets` and `fastscnn android-golden`: the Python end of the Android demo.

`copy_assets` puts an exported model and the `labels.txt` beside it into the app, after checking
that the app can run them. `make_golden` runs one real image through `fastscnn_tf.android_mirror`
and the LiteRT interpreter and writes every intermediate, so that the Kotlin core's tests prove
it computes the same bytes as Python (`android-golden` rewrites the vectors they read).
"""

import dataclasses
import gzip
import json
import os
import shutil

import numpy as np

from fastscnn_tf import android_mirror, presets, tflog
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli.config import field, parse_size
from fastscnn_tf.files import atomic_path, write_bytes_atomic

ASSET_MODEL = "fastscnn_int8.tflite"  # the app's default model asset name
ASSET_LABELS = labels_lib.LABELS_FILE
GOLDEN_MODEL = "model.tflite"
GOLDEN_DIR = os.path.join("android_demo", "core", "src", "test", "resources", "golden")
APP_ASSETS = os.path.join("android_demo", "app", "src", "main", "assets")


@dataclasses.dataclass
class AssetsConfig:
    model: str = field(
        "", "exported .tflite to ship (the labels.txt beside it goes along), or a preset name"
    )
    dest: str = field(APP_ASSETS, "the app's assets folder")


@dataclasses.dataclass
class GoldenConfig:
    model: str = field(
        "", "exported .tflite with labels.txt beside it, or a preset", positional=True
    )
    image: str = field("", "a real photo: it becomes the camera frame", positional=True)
    out: str = field(GOLDEN_DIR, "folder of the golden vectors (the Kotlin tests read it)")
    frame_size: tuple = field((180, 240), "camera frame HxW", parse=parse_size)
    opacity: int = field(128, "overlay opacity, 0..255")
    model_ref: str | None = field(
        None, "name the model by this repository path in meta.json instead of copying it"
    )


def _require_model(model_path):
    return labels_lib.tflite_with_labels(model_path, "model", "the app")


def _tensor_info(detail):
    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(v) for v in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def output_kind(input_info, output_info, num_labels):
    """The output kind, "mask" or "logits", if the app can run the model (its contract and
    messages are the Kotlin `ModelSpec.of`'s); a ValueError saying why not otherwise."""
    shape, dtype = input_info["shape"], input_info["dtype"]
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or dtype != "uint8":
        raise ValueError(
            f"model input must be [1, H, W, 3] uint8 (RGB bytes), got {shape} {dtype}; "
            "export the model with uint8 input."
        )
    shape, dtype = output_info["shape"], output_info["dtype"]
    if len(shape) == 3 and shape[0] == 1 and dtype == "uint8":
        if num_labels > 256:
            raise ValueError(
                f"a uint8 mask can index 256 classes, but labels.txt has {num_labels}."
            )
        return "mask"
    if len(shape) == 4 and shape[0] == 1 and dtype in ("float32", "uint8", "int8"):
        if shape[3] != num_labels:
            raise ValueError(
                f"the model scores {shape[3]} classes but labels.txt has {num_labels}; "
                "use the labels.txt exported with this model."
            )
        if dtype != "float32" and output_info["scale"] <= 0:
            raise ValueError("quantized logits need a scale > 0 to keep their order.")
        return "logits"
    raise ValueError(
        f"model output must be a [1, H, W] uint8 mask or [1, h, w, C] logits, got {shape} {dtype}."
    )


def _interpreter(model_path):
    interpreter = tflog.interpreter(model_path)
    return interpreter


def _copy_atomic(src, dest):
    # A half-copied model in the app's assets would fail on the device, far from its cause.
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def copy_assets(model_path, dest_dir, model_name=ASSET_MODEL):
    """Copy an exported `.tflite` and the `labels.txt` beside it into the app's assets.

    Args:
        model_path: the exported model; its folder must hold the `labels.txt` written with it.
        dest_dir: the app's assets folder, `android_demo/app/src/main/assets`.
        model_name: file name in the assets; the app loads `fastscnn_int8.tflite`.

    Both files are checked first (a TFLite model with uint8 input and a mask or logits
    output that agrees with the labels), then each is replaced atomically.
    Returns the paths written.
    """
    model_path, labels_path = _require_model(model_path)
    labels = labels_lib.read_labels(labels_path)
    interpreter = _interpreter(model_path)
    output_kind(
        _tensor_info(interpreter.get_input_details()[0]),
        _tensor_info(interpreter.get_output_details()[0]),
        labels.num_classes,
    )
    os.makedirs(dest_dir, exist_ok=True)
    written = (os.path.join(dest_dir, model_name), os.path.join(dest_dir, ASSET_LABELS))
    for src, dest in zip((model_path, labels_path), written, strict=True):
        _copy_atomic(src, dest)
    return written


def run(config):
    """`fastscnn android-assets`: `copy_assets` from the command line."""
    if not config.model:
        raise ValueError("--model is required: the exported .tflite to put in the app.")
    model, labels = copy_assets(presets.resolve_model(config.model, "int8"), config.dest)
    print(f"wrote {model} and {labels}; rebuild the app to use them")
    return 0


def make_golden(
    model_path, image_path, out_dir, frame_size=(180, 240), opacity=128, model_ref=None
):
    """Write golden vectors for the Kotlin core's tests from one real image.

    The image is resized with PIL to `frame_size` (H, W) and becomes the camera frame; then
    `android_mirror` makes the model input, the LiteRT interpreter runs the model, and
    `android_mirror` turns its output into the overlay. Files written to `out_dir`, each
    gzip-compressed (`.bin.gz`: a 720x960 model's vectors are 3.5 MB raw, 0.8 MB packed):

    - `frame_argb.bin.gz`: the frame, int32 big-endian 0xAARRGGBB, row-major.
    - `input_rgb.bin.gz`: the uint8 input tensor (H, W, 3).
    - `output.bin.gz`: the interpreter's raw output tensor (float32 little-endian).
    - `class_map.bin.gz`: the decoded class map at the output's size, uint8.
    - `overlay_argb.bin.gz`: the overlay at frame size, int32 big-endian.
    - `meta.json` (sizes, tensors, opacity, labels), `labels.txt` and the model as
      `model.tflite`, so that Python can re-check the vectors later; with `model_ref` (the
      model's path relative to the repository, e.g. a shipped preset) the model is not copied
      and `meta.json` names that path instead.

    Returns the metadata written to `meta.json`.
    """
    from PIL import Image

    model_path, labels_path = _require_model(model_path)
    labels = labels_lib.read_labels(labels_path)
    interpreter = _interpreter(model_path)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    input_info, output_info = _tensor_info(input_detail), _tensor_info(output_detail)
    kind = output_kind(input_info, output_info, labels.num_classes)
    frame_h, frame_w = frame_size

    with Image.open(image_path) as image:
        rgb = image.convert("RGB").resize((frame_w, frame_h), Image.Resampling.BILINEAR)
    frame = android_mirror.rgb_to_argb(np.asarray(rgb))
    model_input = android_mirror.frame_to_input(frame, *input_info["shape"][1:3])
    interpreter.set_tensor(input_detail["index"], model_input[None])
    interpreter.invoke()
    raw = interpreter.get_tensor(output_detail["index"])[0]
    class_map = android_mirror.decode_output(raw, kind)
    if class_map.max() > 255:
        raise ValueError("class_map.bin.gz stores uint8; this model has more than 256 classes.")
    frame_classes = android_mirror.resize_nearest(class_map, frame_h, frame_w)
    overlay = android_mirror.overlay_argb(frame, frame_classes, labels.colors, opacity)

    os.makedirs(out_dir, exist_ok=True)
    little_endian = raw.astype(raw.dtype.newbyteorder("<"))  # the byte order of Android ABIs
    vectors = {
        "frame_argb": frame.astype(">u4"),
        "input_rgb": model_input,
        "output": little_endian,
        "class_map": class_map.astype(np.uint8),
        "overlay_argb": overlay.astype(">u4"),
    }
    refreshed = os.path.isfile(os.path.join(out_dir, "meta.json"))  # vectors written before
    for name, array in vectors.items():
        # mtime=0: the same vectors give the same bytes, so a refresh changes only what changed
        packed = gzip.compress(array.tobytes(), compresslevel=9, mtime=0)
        write_bytes_atomic(os.path.join(out_dir, f"{name}.bin.gz"), packed)
        stale = os.path.join(out_dir, f"{name}.bin")  # this command's unpacked vectors of old
        if refreshed and os.path.isfile(stale):
            os.remove(stale)
    shutil.copyfile(labels_path, os.path.join(out_dir, ASSET_LABELS))
    copied = os.path.join(out_dir, GOLDEN_MODEL)
    if model_ref is not None:
        if os.path.exists(copied):
            os.remove(copied)  # the vectors now belong to the model `model_ref` names
    elif os.path.abspath(model_path) != os.path.abspath(copied):
        shutil.copyfile(model_path, copied)
    meta = {
        **({"model": model_ref} if model_ref is not None else {}),
        "source_image": os.path.basename(os.fspath(image_path)),
        "frame": {"height": frame_h, "width": frame_w},
        "opacity": opacity,
        "input": input_info,
        "output": output_info,
        "output_kind": kind,
        "labels": list(labels.names),
        "colors": ["#{:02X}{:02X}{:02X}".format(*c) for c in labels.colors],
    }
    write_bytes_atomic(
        os.path.join(out_dir, "meta.json"), (json.dumps(meta, indent=2) + "\n").encode()
    )
    return meta


def run_golden(config):
    """`fastscnn android-golden`: `make_golden` from the command line."""
    if not 0 <= config.opacity <= 255:
        raise ValueError(f"--opacity {config.opacity}: expected 0..255.")
    model = presets.resolve_model(config.model, "int8")
    meta = make_golden(
        model, config.image, config.out, config.frame_size, config.opacity, config.model_ref
    )
    print(
        f"wrote the golden vectors of {meta['source_image']} ({meta['output_kind']}) "
        f"to {config.out}"
    )
    return 0
