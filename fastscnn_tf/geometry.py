"""The input sizes Fast-SCNN takes: one decision for the model, export, runtime and predict.

Light on purpose (no TensorFlow): the runtime of an exported `.tflite` checks sizes too.
"""

import math
import numbers

# The pyramid pooling works on the 1/32 map, which needs at least 2x2 cells.
MIN_INPUT_SIZE = 64
# The coarsest map is 1/32 of the input: sizes that are multiples of this keep the streams
# on the grid they were trained on (see `layers.PadToMultiple`).
ALIGN = 32


def check_scales(scales):
    """Test-time scales as a tuple of positive floats; a ValueError names a bad one."""
    scales = tuple(scales)
    if not scales:
        raise ValueError("scales: give at least one scale, for example 1.")
    for scale in scales:
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scales: {scale!r} is not a positive number.")
    return tuple(float(scale) for scale in scales)


def parse_scales(text):
    """`S,S,...` (e.g. `1,1.5,2`) -> a tuple of positive floats; a ValueError for anything
    else."""
    try:
        scales = [float(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"scales {text!r} are not numbers, e.g. 1,1.5,2") from None
    try:
        return check_scales(scales)
    except ValueError:
        raise ValueError(f"scales {text!r}: each must be a positive number") from None


def scaled_size(size, scale):
    """`(H, W)` times `scale`, rounded, at least 1 pixel a side."""
    return tuple(max(1, round(side * scale)) for side in size)


def parse_size(text):
    """`HxW` (e.g. `512x1024`) -> (H, W); a ValueError for anything else."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not HxW, e.g. 512x1024") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"size {text!r} must be positive")
    return (h, w)


def check_size(size, what):
    """Raise a ValueError naming `what` when `(H, W)` is below the minimum: a parameter as
    `size=`, or an image or file; a None side (a dynamic model) passes."""
    h, w = size
    if any(side is not None and side < MIN_INPUT_SIZE for side in (h, w)):
        sep = "" if what.endswith("=") else " "
        raise ValueError(
            f"{what}{sep}{h}x{w}: Fast-SCNN needs at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} "
            "pixels (the pyramid pooling map is 1/32)."
        )


def needs_alignment(input_shape, align=ALIGN):
    """Whether a model with this input shape pads to a multiple of `align` (dynamic sizes and
    static sizes that are not multiples)."""
    return bool(align) and any(size is None or size % align for size in input_shape[:2])


def aligned_size(size, align=ALIGN):
    """`(H, W)` rounded up to multiples of `align` (the size the network runs at)."""
    return tuple(-(-int(v) // align) * align for v in size) if align else tuple(size)
