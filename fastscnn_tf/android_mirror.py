"""The Android demo's pixel logic in numpy, bit for bit.

Each function here is the twin of one in the Kotlin core (`android_demo/core/src/main/kotlin/
dev/fastscnn/core/`), so golden vectors written from Python pin the app's behaviour. All
arithmetic is integer: frames are `(H, W)` uint32 arrays of 0xAARRGGBB pixels, as Android's
`Bitmap.getPixels` lays them out; model inputs are `(H, W, 3)` uint8 RGB; class maps are
`(H, W)` integer arrays.
"""

import numpy as np


def rgb_to_argb(rgb):
    """`(H, W, 3)` uint8 RGB -> `(H, W)` uint32 opaque ARGB."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}.")
    c = rgb.astype(np.uint32)
    return np.uint32(0xFF000000) | (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def argb_to_rgb(argb):
    """`(H, W)` uint32 ARGB -> `(H, W, 3)` uint8 RGB (alpha dropped)."""
    argb = _check_argb(argb)
    return np.stack([(argb >> s) & 0xFF for s in (16, 8, 0)], axis=-1).astype(np.uint8)


def _check_argb(argb, name="argb"):
    argb = np.asarray(argb)
    if argb.ndim != 2 or argb.dtype != np.uint32:
        raise ValueError(f"{name} must be (H, W) uint32 ARGB, got {argb.shape} {argb.dtype}.")
    return argb


def rotate(image, degrees, mirror):
    """Rotate clockwise by `degrees` (0/90/180/270), then flip left-right if `mirror`.

    Kotlin: `rotate`. Works on any array whose first two axes are rows and columns.
    """
    if degrees not in (0, 90, 180, 270):
        raise ValueError(f"degrees must be 0, 90, 180 or 270, got {degrees}.")
    out = np.rot90(np.asarray(image), k=-(degrees // 90), axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if mirror else out)


def bilinear_taps(in_size, out_size):
    """Half-pixel-centre taps in 8-bit fixed point: `(i0, i1, frac)` per output index.

    src = (x + 0.5) * in / out - 0.5 = num / den with num = (2x + 1) * in - out and
    den = 2 * out; num < 0 clamps to 0; frac = floor((num mod den) * 256 / den).
    """
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}.")
    x = np.arange(out_size, dtype=np.int64)
    num = np.maximum((2 * x + 1) * in_size - out_size, 0)
    den = 2 * out_size
    i0 = num // den
    frac = (num - i0 * den) * 256 // den
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, frac


def resize_bilinear(rgb, out_h, out_w):
    """Bilinear resize of `(H, W, C)` uint8 with the Kotlin core's integer arithmetic.

    Per channel: ((p00*(256-fx) + p01*fx)*(256-fy) + (p10*(256-fx) + p11*fx)*fy + 32768) >> 16.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, C) uint8, got {rgb.shape} {rgb.dtype}.")
    x0, x1, fx = bilinear_taps(rgb.shape[1], out_w)
    y0, y1, fy = bilinear_taps(rgb.shape[0], out_h)
    p = rgb.astype(np.int64)
    fx = fx[None, :, None]
    top = p[y0][:, x0] * (256 - fx) + p[y0][:, x1] * fx
    bottom = p[y1][:, x0] * (256 - fx) + p[y1][:, x1] * fx
    fy = fy[:, None, None]
    return ((top * (256 - fy) + bottom * fy + 32768) >> 16).astype(np.uint8)


def frame_to_input(argb, in_h, in_w):
    """ARGB frame -> the model's uint8 `(in_h, in_w, 3)` input. Kotlin: `preprocess`."""
    return resize_bilinear(argb_to_rgb(argb), in_h, in_w)


def nearest_indices(in_size, out_size):
    """floor((2x + 1) * in / (2 * out)) per output index."""
    x = np.arange(out_size, dtype=np.int64)
    return (2 * x + 1) * in_size // (2 * out_size)


def resize_nearest(values, out_h, out_w):
    """Nearest-neighbour resize of a class map (or any `(H, W, ...)` array)."""
    values = np.asarray(values)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output size must be positive, got {out_h}x{out_w}.")
    ys = nearest_indices(values.shape[0], out_h)
    xs = nearest_indices(values.shape[1], out_w)
    return values[ys][:, xs]


def decode_output(raw, kind):
    """Class map of one output tensor (batch axis removed). Kotlin: `decodeOutput`.

    `kind` is "mask" for a `(H, W)` uint8 class mask, else "logits" for `(h, w, C)` float32,
    uint8 or int8 scores; quantized scores are compared as stored (scale > 0 keeps their
    order) and ties go to the lowest class, as `np.argmax`.
    """
    raw = np.asarray(raw)
    if kind == "mask":
        if raw.ndim != 2 or raw.dtype != np.uint8:
            raise ValueError(f"a mask must be (H, W) uint8, got {raw.shape} {raw.dtype}.")
        return raw.astype(np.int32)
    if kind == "logits":
        if raw.ndim != 3 or raw.dtype not in (np.float32, np.uint8, np.int8):
            raise ValueError(
                f"logits must be (h, w, C) float32/uint8/int8, got {raw.shape} {raw.dtype}."
            )
        return np.argmax(raw, axis=-1).astype(np.int32)
    raise ValueError(f"kind must be 'mask' or 'logits', got {kind!r}.")


def _palette_argb(palette):
    """`(r, g, b)` colours -> uint32 opaque ARGB, indexed by class."""
    colors = np.asarray(palette, dtype=np.uint32).reshape(-1, 3)
    return np.uint32(0xFF000000) | (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]


def _colors_of(class_map, palette):
    class_map = np.asarray(class_map)
    colors = _palette_argb(palette)
    bad = (class_map < 0) | (class_map >= len(colors))
    if bad.any():
        index = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"class {int(class_map.ravel()[index])} at pixel {index} has no colour: "
            f"the palette has {len(colors)} classes."
        )
    return colors[class_map]


def colorize_argb(class_map, palette):
    """Opaque ARGB colour of each pixel's class. Kotlin: `colorize`."""
    return _colors_of(class_map, palette)


def overlay_argb(argb, class_map, palette, opacity):
    """Blend class colours over a frame: (src*(255-a) + colour*a + 127) // 255 per channel,
    output opaque. Kotlin: `overlay`."""
    argb = _check_argb(argb)
    if not 0 <= opacity <= 255:
        raise ValueError(f"opacity must be in 0..255, got {opacity}.")
    if np.shape(class_map) != argb.shape:
        raise ValueError(f"class_map is {np.shape(class_map)} but argb is {argb.shape}; resize it.")
    color = _colors_of(class_map, palette).astype(np.int64)
    src = argb.astype(np.int64)
    out = np.full(argb.shape, 0xFF000000, dtype=np.int64)
    for shift in (0, 8, 16):
        s = (src >> shift) & 0xFF
        c = (color >> shift) & 0xFF
        out |= ((s * (255 - opacity) + c * opacity + 127) // 255) << shift
    return out.astype(np.uint32)
