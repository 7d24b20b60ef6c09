"""Pictures of results: class colours and overlays (RGB), legends, the confusion heat map and
the latency chart.

Drawn with Pillow, which the package needs anyway for images: the two charts are small fixed
layouts, and matplotlib would add a dependency of its own (and a font cache at first use) for
about a hundred lines. The Android core's ARGB drawing, mirrored in Python for its goldens, is
`android_mirror`.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fastscnn_tf.files import save_png_atomic

LEGEND_ROW = 18  # pixels per legend entry
LEGEND_SWATCH = 12
BLEND_ROWS = 512  # rows blended at a time: float copies of a whole large photo cost GBs
PLOT_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def colorize(classes, colors):
    """int (H, W) classes -> uint8 (H, W, 3) colours."""
    palette = np.asarray(colors, np.uint8).reshape(-1, 3)
    if classes.max(initial=0) >= len(palette):
        raise ValueError(f"class {int(classes.max())} has no colour (palette of {len(palette)}).")
    return palette[classes]


def blend(image, colours, opacity):
    """uint8 `image * (1 - opacity) + colours * opacity`, rounded; float32 only per block of
    rows, so a large photo costs no more than its uint8 copies."""
    out = np.empty(np.shape(image), np.uint8)
    for start in range(0, len(out), BLEND_ROWS):
        rows = slice(start, start + BLEND_ROWS)
        mixed = image[rows].astype(np.float32) * (1 - opacity)
        mixed += colours[rows].astype(np.float32) * opacity
        out[rows] = np.clip(np.round(mixed), 0, 255)
    return out


def classes_by_area(classes, num_classes, weights=None):
    """`[(class, share of pixels)]`, largest first; `weights` (same shape as `classes`) count
    a pixel that many times (a small map standing for a larger one)."""
    flat_weights = None if weights is None else np.asarray(weights, np.float64).ravel()
    counts = np.bincount(classes.ravel(), weights=flat_weights, minlength=num_classes)
    order = np.argsort(-counts, kind="stable")
    total = counts.sum()
    return [(int(c), counts[c] / total) for c in order if counts[c] > 0]


def legend_panel(height, entries, labels):
    """uint8 `(height, w, 3)` legend (colour swatch, class name, share of pixels per entry of
    `classes_by_area`), drawn to stand right of a picture of that height."""
    font = ImageFont.load_default()
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
    return np.asarray(panel)


def add_legend(picture, entries, labels):
    """Append a legend panel (`legend_panel`) to the right of `picture`."""
    return np.concatenate([picture, legend_panel(picture.shape[0], entries, labels)], axis=1)


def overlay(image, classes, colors, alpha=0.5, ignore_index=None):
    """uint8 RGB `image` with its class colours blended in at `alpha`; pixels of
    `ignore_index` stay as they are (ground truth drawn beside a prediction)."""
    ignored = classes == ignore_index if ignore_index is not None else np.zeros(classes.shape, bool)
    mixed = blend(image, colorize(np.where(ignored, 0, classes), colors), alpha)
    return np.where(ignored[..., None], image, mixed)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def confusion_image(confusion, names, cell=36):
    """Row-normalised confusion matrix (row = true class) as an RGB PIL image, each cell
    shaded by its share of the row and labelled with it in percent."""
    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    n = len(names)
    font = _font(11)
    label_width = 8 + max(
        int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(s, font=font)) for s in names
    )
    top = label_width  # column names are drawn rotated, so they need the same room
    width, height = label_width + n * cell + 10, top + n * cell + 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(n):
        for j in range(n):
            value = share[i, j]
            shade = int(round(255 * (1 - value)))
            color = (shade, shade, 255) if i != j else (shade, 255, shade)
            x0, y0 = label_width + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=color, outline="#cccccc")
            if rows[i, 0] > 0:
                text = f"{100 * value:.0f}"
                ink = "white" if value > 0.6 else "black"
                draw.text((x0 + cell / 2, y0 + cell / 2), text, fill=ink, font=font, anchor="mm")
        draw.text(
            (label_width - 4, top + i * cell + cell / 2),
            names[i],
            fill="black",
            font=font,
            anchor="rm",
        )
    for j, name in enumerate(names):
        text = Image.new("RGBA", (label_width, cell), (255, 255, 255, 0))
        ImageDraw.Draw(text).text(
            (label_width - 4, cell / 2), name, fill="black", font=font, anchor="rm"
        )
        rotated = text.rotate(90, expand=True)
        image.paste(rotated, (label_width + j * cell, 0), rotated)
    draw.text(
        (label_width, top + n * cell + 8),
        "rows: true class, columns: predicted (% of row)",
        fill="black",
        font=font,
    )
    return image


def latency_chart(records, path, threads=None, width=900, height=560):
    """PNG line chart of median latency against input size, one line per variant (PIL only)."""
    from PIL import Image, ImageDraw, ImageFont

    available = sorted({r["threads"] for r in records})
    threads = threads if threads in available else (2 if 2 in available else available[0])
    chosen = [r for r in records if r["threads"] == threads]
    sizes = sorted({tuple(r["size"]) for r in chosen}, key=lambda s: s[0] * s[1])
    variants = list(dict.fromkeys(r["variant"] for r in chosen))
    # Log scale: latency grows ~4x per size step and Keras sits far above LiteRT.
    low = math.log10(min(r["median_ms"] for r in chosen) / 1.5)
    high = math.log10(max(r["median_ms"] for r in chosen) * 1.5)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, upper, lower = 70, width - 20, 40, height - 60
    title = f"Fast-SCNN median latency (log scale), {threads} thread(s)"
    draw.text((left, 12), title, fill="black", font=font)
    draw.line([(left, upper), (left, lower), (right, lower)], fill="black")

    def x_of(i):
        return left + (right - left) * (i + 0.5) / max(len(sizes), 1)

    def y_of(ms):
        return lower - (lower - upper) * (math.log10(ms) - low) / (high - low)

    ticks = [m * 10.0**e for e in range(math.floor(low), math.ceil(high) + 1) for m in (1, 2, 5)]
    for ms in ticks:
        if low <= math.log10(ms) <= high:
            draw.line([(left - 4, y_of(ms)), (right, y_of(ms))], fill=(225, 225, 225))
            draw.text((8, y_of(ms) - 6), f"{ms:g} ms", fill="black", font=font)
    for i, size in enumerate(sizes):
        draw.text((x_of(i) - 28, lower + 10), f"{size[0]}x{size[1]}", fill="black", font=font)
    for n, variant in enumerate(variants):
        color = PLOT_COLORS[n % len(PLOT_COLORS)]
        points = [
            (x_of(i), y_of(r["median_ms"]))
            for i, size in enumerate(sizes)
            for r in chosen
            if r["variant"] == variant and tuple(r["size"]) == size
        ]
        if len(points) > 1:
            draw.line(points, fill=color, width=3)
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)
        draw.rectangle([left + 12, upper + 8 + 16 * n, left + 24, upper + 18 + 16 * n], fill=color)
        draw.text((left + 30, upper + 6 + 16 * n), variant, fill="black", font=font)
    save_png_atomic(image, path)
    return path
