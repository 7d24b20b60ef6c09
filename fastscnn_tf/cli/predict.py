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

import contextlib
import dataclasses
import os
import sys
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastscnn_tf import android_mirror, pngstream, viz
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli.config import check_augmentation, field, flip_field, scales_field
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
    scales: tuple = scales_field("the photo as the network sees it")
    flip: bool = flip_field("the photo")


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


def open_rgb(path):
    """An image file -> (decoded PIL RGB image, note or None). Clear errors for bad files.
    The caller closes the image; an RGB photo is returned as PIL decoded it (no copy of a
    large photo)."""
    notes = []
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x the limit PIL only warns; check_pixels makes it an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:  # above 2x the limit, raised by open
        raise ValueError(f"{path}: too large to decode safely ({error}).") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error}).") from None
    try:
        check_pixels(path, *image.size, Image.MAX_IMAGE_PIXELS)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            notes.append(f"{frames} frames (animated or multi-page); segmented the first")
        image.load()
        mode = image.mode
        if mode not in ("RGB", *CONVERTIBLE_MODES):
            raise ValueError(
                f"{path}: image mode {mode} (16-bit or float) is not supported; "
                "save it as 8-bit RGB."
            )
        if mode != "RGB":
            notes.append(f"converted {mode} image to RGB")
        if mode != "RGB" or frames > 1:
            converted = image.convert("RGB")
            image.close()
            image = converted
    except BaseException as error:
        image.close()
        if isinstance(error, (UnidentifiedImageError, OSError, SyntaxError)):
            raise ValueError(f"{path}: not a readable image ({error}).") from None
        raise
    return image, (f"{path}: " + "; ".join(notes)) if notes else None


def read_rgb(path):
    """An image file -> (uint8 (H, W, 3) array, note or None). Clear errors for bad files."""
    image, note = open_rgb(path)
    with image:
        return np.asarray(image, np.uint8).copy(), note


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


# Rows of the photo post-processed at a time: memory for the outputs follows the band, not
# the photo (about 25 bytes a pixel of a band).
BAND_ROWS = 256


def predict_file(
    runtime,
    path,
    out_dir,
    labels,
    opacity=0.5,
    max_size=DEFAULT_MAX_SIZE,
    outputs=None,
    scales=(1.0,),
    flip=False,
):
    """Segment one image file and write its three PNGs (`outputs`: `{kind: path}`, default
    `<stem>_<kind>.png` in `out_dir`); returns their paths.

    The class map stays at the size the network saw; the photo-sized pictures are made and
    written a band of rows at a time (`pngstream`), so beyond the decoded photo, memory
    follows `max_size`, not the photo. `scales` and `flip`: test-time augmentation
    (`Runtime.probabilities`), at the size the network sees."""
    photo, note = open_rgb(path)
    if note:
        print(f"note: {note}")
    with photo:
        width, height = photo.size
        # --max-size bounds what the network sees, so a preset read at 2x takes half of it.
        limit = max_size and max(MIN_INPUT_SIZE, round(max_size / runtime.input_scale))
        small = network_size((height, width), limit, MIN_INPUT_SIZE)
        seen = photo if small == (height, width) else photo.resize(small[::-1], Image.BILINEAR)
        try:
            classes = runtime.segment(np.asarray(seen, np.uint8)[None], scales, flip)[0]
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if runtime.num_classes > 256:
            raise ValueError(f"{path}: the classes PNG is 8-bit; the model has 256+ classes.")
        classes = classes.astype(np.uint8)
        if outputs is None:
            stem = os.path.splitext(os.path.basename(path))[0]
            outputs = {kind: os.path.join(out_dir, f"{stem}_{kind}.png") for kind in OUTPUT_KINDS}
        _write_pictures(photo, classes, labels, opacity, outputs)
    return outputs


def _write_pictures(photo, classes, labels, opacity, outputs):
    """The three PNGs of `photo` from its class map at the network's size, band by band."""
    width, height = photo.size
    rows = android_mirror.nearest_indices(classes.shape[0], height)
    cols = android_mirror.nearest_indices(classes.shape[1], width)
    # Each small pixel stands for (its rows) x (its columns) of the photo: exact shares.
    weights = np.outer(
        np.bincount(rows, minlength=classes.shape[0]), np.bincount(cols, minlength=classes.shape[1])
    )
    entries = viz.classes_by_area(classes, labels.num_classes, weights)
    panel = viz.legend_panel(height, entries, labels)
    palette = np.asarray(labels.colors, np.uint8).reshape(-1, 3)
    if classes.max(initial=0) >= len(palette):
        raise ValueError(f"class {int(classes.max())} has no colour (palette of {len(palette)}).")
    paths = [outputs[kind] for kind in OUTPUT_KINDS]
    with atomic_paths(paths) as temporaries, contextlib.ExitStack() as files:
        handles = [files.enter_context(open(tmp, "wb")) for tmp in temporaries]
        writers = {
            "mask": pngstream.PNGWriter(handles[0], width, height, "RGB"),
            "overlay": pngstream.PNGWriter(handles[1], width + panel.shape[1], height, "RGB"),
            "classes": pngstream.PNGWriter(handles[2], width, height, "L"),
        }
        for start in range(0, height, BAND_ROWS):
            stop = min(height, start + BAND_ROWS)
            band = classes[rows[start:stop]][:, cols]
            colours = palette[band]
            image = np.asarray(photo.crop((0, start, width, stop)), np.uint8)
            blended = viz.blend(image, colours, opacity)
            writers["mask"].write(colours)
            writers["overlay"].write(np.concatenate([blended, panel[start:stop]], axis=1))
            writers["classes"].write(band)
        for writer in writers.values():
            writer.close()


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
    scales = check_augmentation(runtime, config.scales, config.flip)
    labels = runtime.labels or labels_lib.generic(runtime.num_classes)
    size = "any size" if runtime.input_size is None else "x".join(map(str, runtime.input_size))
    scale = f", images read at {runtime.input_scale:g}x" if runtime.input_scale != 1.0 else ""
    shown = runtime.path if runtime.path == config.model else f"{config.model}: {runtime.path}"
    print(f"{runtime.kind} model {shown} ({size} input{scale}, {runtime.num_classes} classes)")
    failures = []
    for index, path in enumerate(paths, start=1):
        try:  # one bad photo does not stop the others; --out appears with the first output
            outputs = predict_file(
                runtime,
                path,
                config.out,
                labels,
                config.opacity,
                config.max_size,
                plan[path],
                scales,
                config.flip,
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
