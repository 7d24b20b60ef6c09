"""A built-in, offline data set of labelled synthetic scenes (numpy, deterministic per seed).

Each scene is a random smooth background (gradients and low-frequency waves in a random
low-saturation colour) with 3-7 overlapping objects, a few background-labelled occluding bars,
a global lighting gradient and pixel noise. Each object class has its own shape, its own
texture (stripes, checks, speckle, dots, rings, ...) drawn in the object's rotated frame, and a
hue band; hues jitter per object and lighting/noise blur the colour, so getting the labels right
takes colour *and* local texture/shape context. A constant or misaligned model scores a low mIoU.

`example(index, seed, split)` is a pure function of its arguments: the same (seed, split, index)
gives the same scene in every process, in any order.
"""

import colorsys

import numpy as np
import tensorflow as tf

from fastscnn_tf.data.source import Source, names_file_labels
from fastscnn_tf.labels import LabelSet

# (name, shape, texture, hue) per class; class 0 is the background.
CLASSES = (
    ("background", None, None, None),
    ("disc", "ellipse", "stripes", 0.0),
    ("box", "box", "checks", 1 / 7),
    ("triangle", "triangle", "speckle", 2 / 7),
    ("ring", "ring", "smooth", 3 / 7),
    ("cross", "cross", "dots", 4 / 7),
    ("diamond", "diamond", "rings", 5 / 7),
    ("hexagon", "hexagon", "grid", 6 / 7),
)
MAX_CLASSES = len(CLASSES)
DEFAULT_SIZE = (128, 160)
SPLITS = {"train": 0, "val": 1, "test": 2}


def class_colors(num_classes=MAX_CLASSES):
    """Display colour per class: the class's hue at full saturation; background grey."""
    colors = [(96, 96, 96)]
    for _, _, _, hue in CLASSES[1:num_classes]:
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colors)


def class_names(num_classes=MAX_CLASSES):
    return tuple(c[0] for c in CLASSES[:num_classes])


def example(index, seed=0, split="train", size=DEFAULT_SIZE, num_classes=MAX_CLASSES):
    """One scene: (image uint8 (H, W, 3), mask uint8 (H, W)) with labels in [0, num_classes)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"synthetic data has 2..{MAX_CLASSES} classes, not {num_classes}.")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = _background(rng, yy, xx)
    mask = np.zeros(size, np.uint8)
    extent = min(height, width)
    for _ in range(rng.integers(3, 8)):
        label = int(rng.integers(1, num_classes))
        _, shape, texture, hue = CLASSES[label]
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.12, 0.32) * extent
        angle = rng.uniform(0, 2 * np.pi)
        # Work inside the object's bounding box only (every shape fits in radius * 1.2).
        box = np.s_[
            max(int(cy - radius * 1.2), 0) : int(cy + radius * 1.2) + 1,
            max(int(cx - radius * 1.2), 0) : int(cx + radius * 1.2) + 1,
        ]
        y, x = yy[box] - cy, xx[box] - cx
        u = x * np.cos(angle) + y * np.sin(angle)
        v = -x * np.sin(angle) + y * np.cos(angle)
        inside = _shape(shape, u, v, radius, rng.uniform(0.65, 1.0))
        pattern = _texture(rng, texture, u, v, radius)
        hue_jitter = (hue + rng.normal(0, 0.025)) % 1.0
        rgb = colorsys.hsv_to_rgb(hue_jitter, rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0))
        amplitude = rng.uniform(0.25, 0.45)
        shade = np.asarray(rgb, np.float32) * 255 * (1 + amplitude * pattern)[..., None]
        image[box][inside] = shade[inside]
        mask[box][inside] = label
    for _ in range(rng.integers(0, 3)):  # occluders: thin grey bars, labelled background
        cy, cx, angle = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0, np.pi)
        across = np.abs(-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle))
        inside = across < rng.uniform(1.5, 4.0)
        image[inside] = rng.uniform(40, 200)
        mask[inside] = 0
    lighting = _ramp(rng, yy, xx, rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.3))
    image = image * lighting[..., None] + 8 * rng.standard_normal(image.shape, np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _ramp(rng, yy, xx, low, high):
    angle = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (low + (high - low) * t).astype(np.float32)


def _background(rng, yy, xx):
    colors = []
    for _ in range(2):
        rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.35), rng.uniform(0.3, 0.9))
        colors.append(np.asarray(rgb, np.float32) * 255)
    t = _ramp(rng, yy, xx, 0.0, 1.0)[..., None]
    image = colors[0] * (1 - t) + colors[1] * t
    for _ in range(2):  # low-frequency waves: blobs of light and shade
        fy, fx = rng.uniform(-0.08, 0.08, 2)
        wave = np.sin(fy * yy + fx * xx + rng.uniform(0, 2 * np.pi))
        image += rng.uniform(5, 25) * wave[..., None]
    return image.astype(np.float32)


def _shape(shape, u, v, r, aspect):
    if shape == "ellipse":
        return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1
    if shape == "box":
        return (np.abs(u) <= r) & (np.abs(v) <= r * aspect)
    if shape == "triangle":
        s3 = np.sqrt(3)
        return (v >= -r / 2) & (s3 * u - v >= -r) & (-s3 * u - v >= -r)
    if shape == "ring":
        d = np.hypot(u, v)
        return (d <= r) & (d >= r * 0.55)
    if shape == "cross":
        arm = r * 0.4
        return ((np.abs(u) <= r) & (np.abs(v) <= arm)) | ((np.abs(u) <= arm) & (np.abs(v) <= r))
    if shape == "diamond":
        return np.abs(u) / r + np.abs(v) / (r * aspect) <= 1
    if shape == "hexagon":
        a, b = np.abs(u), np.abs(v)
        return (b <= r * np.sqrt(3) / 2) & (np.sqrt(3) * a + b <= r * np.sqrt(3))
    raise ValueError(f"unknown shape {shape!r}")


def _texture(rng, texture, u, v, r):
    """A pattern in [-1, 1], in the object's own rotated frame."""
    period = rng.uniform(5, 9)
    wave_u, wave_v = np.sin(2 * np.pi * u / period), np.sin(2 * np.pi * v / period)
    if texture == "stripes":
        return wave_u
    if texture == "checks":
        return np.sign(wave_u * wave_v)
    if texture == "speckle":
        return np.clip(0.7 * rng.standard_normal(u.shape, np.float32), -1, 1)
    if texture == "smooth":
        return np.clip(np.hypot(u, v) / r, 0, 1) * 2 - 1
    if texture == "dots":
        return np.where(wave_u * wave_v > 0.5, 1, -1)
    if texture == "rings":
        return np.sin(2 * np.pi * np.hypot(u, v) / period)
    if texture == "grid":
        return np.where((np.abs(wave_u) < 0.3) | (np.abs(wave_v) < 0.3), -1, 0.5)
    raise ValueError(f"unknown texture {texture!r}")


# --- as a data source (`synthetic[:N[:HxW]]`) ---------------------------------------------

SOURCE_SIZES = {"train": 1000, "val": 100, "test": 100}


def synthetic_source(arg, split, num_classes, ignore_index, names_file, seed):
    if split not in SPLITS:
        raise ValueError(f"synthetic data has splits {sorted(SPLITS)}, not {split!r}.")
    parts = [p for p in arg.split(":") if p] if arg else []
    count = SOURCE_SIZES[split]
    size = DEFAULT_SIZE
    try:
        if parts:
            count = int(parts[0])
        if len(parts) > 1:
            size = tuple(int(v) for v in parts[1].lower().split("x"))
        if count <= 0 or len(size) != 2 or min(size) < 16 or len(parts) > 2:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"data set synthetic:{arg}: expected synthetic[:N[:HxW]] with N > 0 and H, W >= 16."
        ) from None
    if names_file is not None:  # the user's names (and colours) for the generated classes
        labels = names_file_labels(names_file, num_classes, ignore_index)
        num_classes = labels.num_classes
    num_classes = MAX_CLASSES if num_classes is None else num_classes
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes={num_classes}: synthetic data has 2..{MAX_CLASSES} classes.")
    if names_file is None:
        labels = LabelSet(
            class_names(num_classes),
            class_colors(num_classes),
            255 if ignore_index is None else ignore_index,
        )

    # Generated up front and held in memory (82 KB a scene at 128x160): a Python generator
    # inside tf.data (numpy_function) would tie its threads to the interpreter, which then
    # hangs at exit while an iterator is still alive.
    scenes = [example(i, seed, split, size, num_classes) for i in range(count)]
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": np.stack([s[0] for s in scenes]), "mask": np.stack([s[1] for s in scenes])}
    )
    name = f"synthetic:{count}:{size[0]}x{size[1]} ({split}, seed {seed})"
    return Source(dataset, labels, count, name)
