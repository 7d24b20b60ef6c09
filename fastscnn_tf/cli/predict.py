"""`fastscnn predict`: segment images with a `.keras` or `.tflite` model and save pictures.

For each image it writes `<name>_mask.png` (each pixel in its class colour),
`<name>_overlay.png` (the mask blended over the photo, with a legend of the classes found) and
`<name>_classes.png` (8-bit class indices, lossless, for tools). The three are written to
temporary files first and then renamed together, so an image gets all of them or none.

A user's files are never replaced: every output name is planned before the first image runs;
inputs that share a stem (`dup.jpg`, `dup.png`) get the extension in their names
(`dup_jpg_mask.png`); `--out` may not be an input folder, and an output that is an input or
already exists (unless `--overwrite`) stops the run before it starts. A bad image is reported
and skipped; the run goes on and ends with the list of failures and exit status 2.

Memory stays bounded for large photos: the network sees the photo scaled so that its long side
is at most `--max-size` (a model with a static input then resizes it to that input), and the
class map is scaled back to the photo (nearest), so every output has the image's own size. A
photo above PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, about 89 megapixels) is
refused before it is decoded.

Images are decoded with PIL. Greyscale, palette, RGBA and CMYK images are converted to RGB
(alpha is dropped) with a note; 16-bit and float images are refused, since their range
cannot be mapped to [0, 255] without guessing. Of an animated image (GIF, APNG, WebP) or a
multi-page TIFF only the first frame is segmented, with a note.

TensorFlow is imported by `run` (through the runtime), not by this module, so that
`fastscnn predict --help` starts fast.
"""

import dataclasses
import os
import sys
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastscnn_tf import imageops, viz
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli.config import field
from fastscnn_tf.files import atomic_paths
from fastscnn_tf.geometry import MIN_INPUT_SIZE

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
CONVERTIBLE_MODES = ("L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1")
DEFAULT_MAX_SIZE = 2048
DEFAULT_PRESET = "camvid"  # street scenes; see `fastscnn presets`


@dataclasses.dataclass
class PredictConfig:
    inputs: list[str] = field([], "images and/or folders of images", positional=True)
    model: str = field(
        DEFAULT_PRESET,
        "a .keras or .tflite model (labels.txt beside it is used if present) or a preset "
        "(camvid: float, camvid:int8)",
    )
    out: str = field("predictions", "output folder")
    opacity: float = field(0.5, "overlay opacity of the class colours, 0..1")
    max_size: int = field(
        DEFAULT_MAX_SIZE,
        "longest side in pixels of the photo the network sees; masks are scaled back to the "
        "photo's size (0: full resolution)",
    )
    num_threads: int | None = field(None, "TFLite interpreter threads (default: LiteRT's)")
    overwrite: bool = field(False, "replace outputs of an earlier run in --out (never inputs)")


OUTPUT_KINDS = ("mask", "overlay", "classes")


def find_images(inputs):
    """Image files named directly or found (not recursively) in the given folders, sorted;
    a file reached twice (named and in a folder) counts once."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, name)
                for name in os.listdir(item)
                if name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                raise ValueError(f"folder {item} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"input {item} does not exist.")
    if not paths:
        raise ValueError("no input images given.")
    seen, unique = set(), []
    for path in paths:
        if os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            unique.append(path)
    return unique


def plan_outputs(paths, out_dir):
    """`{input: {kind: output path}}`, one distinct name per input: its stem, or where inputs
    share a stem the stem and extension (`dup_jpg`), and a counter if that is taken too."""
    split = [os.path.splitext(os.path.basename(p)) for p in paths]
    stems = [stem for stem, _ in split]
    used, plan = set(), {}
    for path, (stem, ext) in zip(paths, split, strict=True):
        name = stem if stems.count(stem) == 1 else f"{stem}_{ext.lstrip('.').lower()}"
        base, number = name, 2
        while name in used:
            name, number = f"{base}-{number}", number + 1
        used.add(name)
        plan[path] = {kind: os.path.join(out_dir, f"{name}_{kind}.png") for kind in OUTPUT_KINDS}
    return plan


def check_plan(plan, inputs, out_dir, overwrite=False):
    """Refuse, before any work, a run that would replace a user's file: `--out` an input
    folder, an output that is an input, or (without `overwrite`) an output that exists."""
    out_real = os.path.realpath(out_dir)
    for item in inputs:
        if os.path.isdir(item) and os.path.realpath(item) == out_real:
            raise ValueError(
                f"--out {out_dir} is the input folder {item}: the outputs would mix with the "
                "photos (and a later run would read them as photos); choose another --out."
            )
    input_files = {os.path.realpath(p): p for p in plan}
    existing = []
    for outputs in plan.values():
        for path in outputs.values():
            if os.path.realpath(path) in input_files:
                raise ValueError(
                    f"--out {out_dir}: the output {path} would replace the input "
                    f"{input_files[os.path.realpath(path)]}; choose another --out."
                )
            if os.path.lexists(path):
                existing.append(path)
    if existing and not overwrite:
        raise FileExistsError(
            f"--out {out_dir}: {len(existing)} output file(s) exist already (e.g. "
            f"{existing[0]}); pass --overwrite to replace an earlier run's outputs, or choose "
            "another --out."
        )


def check_pixels(path, width, height, limit):
    """Refuse an image of more than `limit` pixels (None: no limit) before it is decoded."""
    if limit and width * height > limit:
        raise ValueError(
            f"{path}: the {width}x{height} image has {width * height:,} pixels, more than the "
            f"{limit:,} decoded safely (PIL's decompression-bomb limit, "
            "PIL.Image.MAX_IMAGE_PIXELS); scale it down first."
        )


def read_rgb(path):
    """An image file -> (uint8 (H, W, 3) array, note or None). Clear errors for bad files."""
    notes = []
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x the limit PIL only warns; check_pixels makes it an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            check_pixels(path, *image.size, Image.MAX_IMAGE_PIXELS)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"{frames} frames (animated or multi-page); segmented the first")
            image.load()
            mode = image.mode
            if mode == "RGB":
                rgb = np.asarray(image, np.uint8).copy()
            elif mode in CONVERTIBLE_MODES:
                rgb = np.asarray(image.convert("RGB"), np.uint8).copy()
                notes.append(f"converted {mode} image to RGB")
            else:
                raise ValueError(
                    f"{path}: image mode {mode} (16-bit or float) is not supported; "
                    "save it as 8-bit RGB."
                )
    except Image.DecompressionBombError as error:  # above 2x the limit, raised by open
        raise ValueError(f"{path}: too large to decode safely ({error}).") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error}).") from None
    return rgb, (f"{path}: " + "; ".join(notes)) if notes else None


def network_size(size, max_size, min_side=1):
    """The `(h, w)` at which the network sees an image of `size`: scaled, keeping its aspect,
    so that the long side is at most `max_size` (0: as it is), but the short side never below
    `min_side`, what the network needs: a smaller photo is scaled up, as a static-size model
    scales it to its input, so every model takes every photo."""
    h, w = size
    scale = max_size / max(h, w) if max_size and max(h, w) > max_size else 1.0
    scale = max(scale, min_side / min(h, w))
    if scale == 1.0:
        return (h, w)
    return (max(1, round(h * scale)), max(1, round(w * scale)))


def segment_bounded(runtime, image, max_size):
    """Class map `(H, W)` of one uint8 image, the network seeing it at `network_size`; the
    map is scaled back nearest, so memory follows `max_size`, not the photo."""
    size = image.shape[:2]
    small = network_size(size, max_size, MIN_INPUT_SIZE)
    if small != size:
        resized = Image.fromarray(image).resize((small[1], small[0]), Image.Resampling.BILINEAR)
        image = np.asarray(resized)
    classes = runtime.segment(image[None])[0]
    if small == size:
        return classes
    # Classes fit in uint8 for every model predict can save (the classes PNG is 8-bit).
    dtype = np.uint8 if runtime.num_classes <= 256 else np.int32
    return imageops.resize_nearest(classes.astype(dtype), *size)


def predict_file(
    runtime, path, out_dir, labels, opacity=0.5, max_size=DEFAULT_MAX_SIZE, outputs=None
):
    """Segment one image file and write its three PNGs (`outputs`: `{kind: path}`, default
    `<stem>_<kind>.png` in `out_dir`); returns their paths."""
    image, note = read_rgb(path)
    if note:
        print(f"note: {note}")
    try:
        classes = segment_bounded(runtime, image, max_size)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    colours = viz.colorize(classes, labels.colors)
    overlay = viz.add_legend(
        viz.blend(image, colours, opacity), viz.classes_by_area(classes, labels.num_classes), labels
    )
    if outputs is None:
        outputs = {kind: os.path.join(out_dir, f"{stem}_{kind}.png") for kind in OUTPUT_KINDS}
    pictures = {"mask": colours, "overlay": overlay, "classes": classes.astype(np.uint8)}
    with atomic_paths(list(outputs.values())) as temporaries:
        for key, tmp in zip(outputs, temporaries, strict=True):
            Image.fromarray(pictures[key]).save(tmp, format="PNG")
    return outputs


def run(config):
    from fastscnn_tf.runtime import load_runtime

    if not config.model:
        raise ValueError("--model is empty: give a .keras or .tflite file or a preset name.")
    if not 0.0 <= config.opacity <= 1.0:
        raise ValueError(f"--opacity {config.opacity}: expected a value in 0..1.")
    if config.max_size and not config.max_size >= MIN_INPUT_SIZE:
        raise ValueError(
            f"--max-size {config.max_size}: Fast-SCNN needs at least {MIN_INPUT_SIZE} pixels "
            "(0: full resolution)."
        )
    paths = find_images(config.inputs)
    plan = plan_outputs(paths, config.out)
    check_plan(plan, config.inputs, config.out, config.overwrite)
    runtime = load_runtime(config.model, num_threads=config.num_threads)
    labels = runtime.labels or labels_lib.generic(runtime.num_classes)
    size = "any size" if runtime.input_size is None else "x".join(map(str, runtime.input_size))
    shown = runtime.path if runtime.path == config.model else f"{config.model}: {runtime.path}"
    print(f"{runtime.kind} model {shown} ({size} input, {runtime.num_classes} classes)")
    failures = []
    for index, path in enumerate(paths, start=1):
        try:  # one bad photo does not stop the others; --out appears with the first output
            outputs = predict_file(
                runtime, path, config.out, labels, config.opacity, config.max_size, plan[path]
            )
        except ValueError as error:
            failures.append(str(error))
            print(f"[{index}/{len(paths)}] {path}: skipped ({error})")
            continue
        print(f"[{index}/{len(paths)}] {path} -> {outputs['overlay']}")
    if failures:
        print(
            f"fastscnn predict: {len(failures)} of {len(paths)} image(s) failed:\n  "
            + "\n  ".join(failures),
            file=sys.stderr,
        )
        return 2
    return 0
