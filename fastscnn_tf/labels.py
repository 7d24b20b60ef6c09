"""Class names, colours and ignore index: the one source for Python and the Android core.

Every exported model gets a `labels.txt` beside it, one class per line in class-index order,
`name<TAB>#RRGGBB`. Lines that are empty or start with `#` are comments. The Kotlin core in
`android_demo/core` parses the same format, so colours and class order cannot drift apart.
"""

import dataclasses
import os

from fastscnn_tf.files import check_input_file, write_text_atomic

HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """Names and display colours of a dataset's classes.

    Args:
        names: class names in class-index order.
        colors: one `(r, g, b)` per class.
        ignore_index: label value excluded from loss and metrics (not a class).
    """

    names: tuple
    colors: tuple
    ignore_index: int = 255

    def __post_init__(self):
        if len(self.names) != len(self.colors):
            raise ValueError(f"{len(self.names)} class names but {len(self.colors)} colours.")
        if 0 <= self.ignore_index < len(self.names):
            raise ValueError(
                f"ignore_index={self.ignore_index} collides with class "
                f"{self.names[self.ignore_index]!r}; use a value >= {len(self.names)}."
            )

    @property
    def num_classes(self):
        return len(self.names)


def default_colors(num_classes):
    """Distinct deterministic colours for datasets that name no palette (bit-interleaved, as
    the PASCAL VOC palette)."""
    colors = []
    for index in range(num_classes):
        r = g = b = 0
        c = index + 1  # start at 1 so that class 0 is not black
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return tuple(colors)


def generic(num_classes, ignore_index=255):
    names = tuple(f"class_{i}" for i in range(num_classes))
    return LabelSet(names, default_colors(num_classes), ignore_index)


# CamVid in SegNet's 11-class layout; label 11 ("void") is ignored.
CAMVID = LabelSet(
    names=(
        "sky", "building", "pole", "road", "sidewalk", "tree",
        "sign", "fence", "car", "pedestrian", "bicyclist",
    ),
    colors=(
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
        (0, 128, 192),
    ),
    ignore_index=11,
)  # fmt: skip

# Cityscapes' 19 evaluation classes (trainIds) with the official colours.
CITYSCAPES = LabelSet(
    names=(
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
        "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
        "bus", "train", "motorcycle", "bicycle",
    ),
    colors=(
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
        (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
        (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
        (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ),
    ignore_index=255,
)  # fmt: skip


def format_labels(labels):
    lines = [f"# {labels.num_classes} classes; ignore_index={labels.ignore_index}"]
    for name, (r, g, b) in zip(labels.names, labels.colors, strict=True):
        if "\t" in name or "\n" in name:
            raise ValueError(f"class name {name!r} may not contain tabs or newlines.")
        lines.append(f"{name}\t#{r:02X}{g:02X}{b:02X}")
    return "\n".join(lines) + "\n"


def parse_labels(text, source="labels.txt"):
    """Parse the `labels.txt` format; classes without a colour get `default_colors`."""
    names, colors = [], []
    ignore_index = 255
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip("\r")
        if line.startswith("#"):
            if "ignore_index=" in line:
                ignore_index = int(line.split("ignore_index=")[1].split()[0])
            continue
        if not line.strip():
            continue
        name, _, color = line.partition("\t")
        color = color.strip()
        if color:
            # Same strictness as the Kotlin core: exactly six hex digits, no signs.
            if len(color) != 7 or color[0] != "#" or any(c not in HEX_DIGITS for c in color[1:]):
                raise ValueError(f"{source}:{number}: colour {color!r} is not #RRGGBB.")
            rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        else:
            rgb = None
        if not name.strip():
            raise ValueError(f"{source}:{number}: empty class name.")
        names.append(name.strip())
        colors.append(rgb)
    if not names:
        raise ValueError(f"{source}: no class names found.")
    fallback = default_colors(len(names))
    colors = tuple(c if c is not None else fallback[i] for i, c in enumerate(colors))
    return LabelSet(tuple(names), colors, ignore_index)


LABELS_FILE = "labels.txt"
LABELS_SUFFIX = ".labels.txt"


def own_labels_path(model_path):
    """Where a model's own labels are written: `NAME.labels.txt` beside `NAME.tflite` (or
    `NAME.keras`), so that models sharing a folder never share, or replace, one labels file."""
    return os.path.splitext(os.path.abspath(model_path))[0] + LABELS_SUFFIX


def labels_path_beside(model_path):
    """Where a model's labels live: its own `NAME.labels.txt`, else its folder's `labels.txt`
    (a training run's folder, a preset, an export of an earlier version)."""
    own = own_labels_path(model_path)
    if os.path.isfile(own):
        return own
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), LABELS_FILE)


def labels_for(model_path, num_classes=None):
    """The `LabelSet` of a model file, or None where nothing names its classes: its labels
    file (`labels_path_beside`), else (a `.tflite`) the class names embedded in it, with
    default colours. A labels file whose names differ from the embedded ones belongs to another
    model, and a `num_classes` that the labels do not match is wrong too: errors naming the
    files."""
    model_path = os.fspath(model_path)
    beside = labels_path_beside(model_path)
    embedded = None
    if model_path.lower().endswith(".tflite"):
        from fastscnn_tf import metadata  # the archive appended to the flatbuffer

        embedded = metadata.read_class_names(model_path) if os.path.isfile(model_path) else None
    if os.path.isfile(beside):
        labels, source = read_labels(beside), beside
        if embedded and tuple(embedded) != tuple(labels.names):
            raise ValueError(
                f"{beside} names the classes {_few(labels.names)} but the model {model_path} "
                f"was exported with {_few(embedded)}: the labels file belongs to another model "
                f"(export the model again, or remove {os.path.basename(beside)})."
            )
    elif embedded:
        labels, source = LabelSet(tuple(embedded), default_colors(len(embedded))), model_path
    else:
        return None
    if num_classes is not None and labels.num_classes != num_classes:
        raise ValueError(
            f"{source} lists {labels.num_classes} classes but the model {model_path} "
            f"predicts {num_classes}."
        )
    return labels


def _few(names, shown=4):
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def tflite_with_labels(model_path, option, reader):
    """`(model, labels)` paths of an exported `.tflite` with its labels file beside it, or a
    FileNotFoundError/ValueError naming `option` and the file (also when the labels belong to
    another model); `reader` ("the app", "the page") is what needs the labels."""
    model_path = os.fspath(model_path)
    check_input_file(model_path, option)
    with open(model_path, "rb") as f:
        header = f.read(8)
    if header[4:8] != b"TFL3":  # the FlatBuffer file identifier of every .tflite
        raise ValueError(f"{option} {model_path}: is not a TFLite model (no TFL3 identifier).")
    labels_path = labels_path_beside(model_path)
    if not os.path.isfile(labels_path):
        raise FileNotFoundError(
            f"{option} {model_path}: no labels file beside it "
            f"({os.path.basename(own_labels_path(model_path))} or {LABELS_FILE}); {reader} reads "
            "the class names and colours from the labels file exported with the model."
        )
    try:
        labels_for(model_path)
    except ValueError as error:
        raise ValueError(f"{option} {model_path}: {error}") from None
    return model_path, labels_path


def read_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {error.start}); save the labels file as UTF-8."
        ) from None
    return parse_labels(text, source=str(path))


def write_labels(path, labels):
    write_text_atomic(path, format_labels(labels))
