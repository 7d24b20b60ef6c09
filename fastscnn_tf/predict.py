"""`fastscnn predict`: segment images with a `.keras` or `.tflite` model and save pictures.

For each image it writes `<name>_mask.png` (each pixel in its class colour),
`<name>_overlay.png` (the mask blended over the photo, with a legend of the classes found) and
`<name>_classes.png` (8-bit class indices, lossless, for tools). The runtime resizes images to
a static model input and the prediction back, so every output has the image's own size.

Images are decoded with PIL. Greyscale, palette, RGBA and CMYK images are converted to RGB
(alpha is dropped) with a note; 16-bit and float images are refused, since their range
cannot be mapped to [0, 255] without guessing.
"""

import dataclasses
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from fastscnn_tf import labels as labels_lib
from fastscnn_tf.config import field
from fastscnn_tf.files import atomic_path
from fastscnn_tf.runtime import load_runtime

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CONVERTIBLE_MODES = ("L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1")
LEGEND_ROW = 18  # pixels per legend entry
LEGEND_SWATCH = 12


@dataclasses.dataclass
class PredictConfig:
    inputs: list[str] = field([], "images and/or folders of images", positional=True)
    model: str = field("", "a .keras or .tflite model (labels.txt beside it is used if present)")
    out: str = field("predictions", "output folder")
    opacity: float = field(0.5, "overlay opacity of the class colours, 0..1")
    num_threads: int | None = field(None, "TFLite interpreter threads (default: LiteRT's)")


def find_images(inputs):
    """Image files named directly or found (not recursively) in the given folders, sorted."""
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
    return paths


def read_rgb(path):
    """An image file -> (uint8 (H, W, 3) array, note or None). Clear errors for bad files."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "RGB":
                return np.asarray(image, np.uint8).copy(), None
            if mode not in CONVERTIBLE_MODES:
                raise ValueError(
                    f"{path}: image mode {mode} (16-bit or float) is not supported; "
                    "save it as 8-bit RGB."
                )
            rgb = np.asarray(image.convert("RGB"), np.uint8).copy()
            return rgb, f"{path}: converted {mode} image to RGB"
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error}).") from None


def colorize(classes, colors):
    """int (H, W) classes -> uint8 (H, W, 3) colours."""
    palette = np.asarray(colors, np.uint8).reshape(-1, 3)
    if classes.max(initial=0) >= len(palette):
        raise ValueError(f"class {int(classes.max())} has no colour (palette of {len(palette)}).")
    return palette[classes]


def blend(image, colours, opacity):
    mixed = image.astype(np.float32) * (1 - opacity) + colours.astype(np.float32) * opacity
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def classes_by_area(classes, num_classes):
    counts = np.bincount(classes.ravel(), minlength=num_classes)
    order = np.argsort(-counts, kind="stable")
    return [(int(c), counts[c] / classes.size) for c in order if counts[c] > 0]


def add_legend(picture, entries, labels):
    """Append a legend panel (colour swatch, class name, share of pixels) to the right."""
    font = ImageFont.load_default()
    height = picture.shape[0]
    rows = max(1, (height - 4) // LEGEND_ROW)
    columns = -(-len(entries) // rows)
    texts = [f"{labels.names[c]} {share:.0%}" for c, share in entries]
    text_width = max(int(font.getlength(t)) for t in texts) if texts else 0
    column_width = LEGEND_SWATCH + 8 + text_width + 8
    panel = Image.new("RGB", (4 + columns * column_width, height), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for i, ((c, _), text) in enumerate(zip(entries, texts, strict=True)):
        x = 4 + (i // rows) * column_width
        y = 4 + (i % rows) * LEGEND_ROW
        draw.rectangle(
            [x, y, x + LEGEND_SWATCH, y + LEGEND_SWATCH], fill=labels.colors[c], outline=(0, 0, 0)
        )
        draw.text((x + LEGEND_SWATCH + 6, y), text, fill=(0, 0, 0), font=font)
    return np.concatenate([picture, np.asarray(panel)], axis=1)


def _save_png(array, path):
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _labels_for(runtime):
    if runtime.labels is not None:
        return runtime.labels
    if runtime.kind == "tflite":
        from fastscnn_tf import metadata

        names = metadata.read_class_names(runtime.path)
        if names and len(names) == runtime.num_classes:
            return labels_lib.LabelSet(names, labels_lib.default_colors(len(names)))
    return labels_lib.generic(runtime.num_classes)


def predict_file(runtime, path, out_dir, labels, opacity=0.5):
    """Segment one image file and write its three PNGs; returns their paths."""
    image, note = read_rgb(path)
    if note:
        print(f"note: {note}")
    try:
        classes = runtime.segment(image[None])[0]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    colours = colorize(classes, labels.colors)
    overlay = add_legend(
        blend(image, colours, opacity), classes_by_area(classes, labels.num_classes), labels
    )
    outputs = {
        "mask": os.path.join(out_dir, f"{stem}_mask.png"),
        "overlay": os.path.join(out_dir, f"{stem}_overlay.png"),
        "classes": os.path.join(out_dir, f"{stem}_classes.png"),
    }
    _save_png(colours, outputs["mask"])
    _save_png(overlay, outputs["overlay"])
    _save_png(classes.astype(np.uint8), outputs["classes"])
    return outputs


def run(config):
    if not config.model:
        raise ValueError("--model is required (a .keras or .tflite file).")
    if not 0.0 <= config.opacity <= 1.0:
        raise ValueError(f"--opacity {config.opacity}: expected a value in 0..1.")
    paths = find_images(config.inputs)
    runtime = load_runtime(config.model, num_threads=config.num_threads)
    labels = _labels_for(runtime)
    os.makedirs(config.out, exist_ok=True)
    size = "any size" if runtime.input_size is None else "x".join(map(str, runtime.input_size))
    print(f"{runtime.kind} model {config.model} ({size} input, {runtime.num_classes} classes)")
    for index, path in enumerate(paths, start=1):
        outputs = predict_file(runtime, path, config.out, labels, config.opacity)
        print(f"[{index}/{len(paths)}] {path} -> {outputs['overlay']}")
    return 0
