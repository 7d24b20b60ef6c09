"""Paired image/mask transforms for tf.data: the paper's augmentation, centre crop and resize.

Every random transform takes one stateless seed (`[2]` int tensor) per sample and draws each
parameter once, then applies the same geometry to the image (bilinear) and to the mask
(nearest), so labels never leave their pixels. Stateless draws keyed by (run seed, sample
index) make a run repeat exactly, whatever `num_parallel_calls` does to scheduling.

Images are float32 RGB in [0, 255] of shape (H, W, 3); masks int32 of shape (H, W).
"""

import tensorflow as tf

# Fast-SCNN (Poudel et al., 2019, training details): random resizing 0.5-2, translation/crop,
# horizontal flip, colour-channel noise and brightness. The paper gives no magnitudes for the
# colour terms; these are moderate choices that keep images plausible.
SCALE_RANGE = (0.5, 2.0)
BRIGHTNESS = 32.0  # additive, in [0, 255] units: delta ~ U(-32, 32)
CONTRAST = (0.75, 1.25)  # factor about the image mean
COLOR_GAIN = (0.9, 1.1)  # independent gain per RGB channel ("colour channel noise")


def resize_pair(image, mask, size):
    """Resize to `size` (H, W): image bilinear, mask nearest (never interpolate a label map)."""
    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def pad_to_size(image, mask, size, ignore_index, centre=False):
    """Pad up to at least `size`: image with 0, mask with `ignore_index` (never a real class).

    Pads bottom/right, or evenly on both sides when `centre`.
    """
    shape = tf.shape(image)[:2]
    extra = tf.maximum(tf.constant(size, tf.int32) - shape, 0)
    before = extra // 2 if centre else tf.zeros_like(extra)
    paddings = tf.stack([before, extra - before], axis=1)
    image = tf.pad(image, tf.concat([paddings, [[0, 0]]], axis=0))
    mask = tf.pad(mask, paddings, constant_values=ignore_index)
    return image, mask


def scale_crop(image, mask, scale, top, left, size, ignore_index):
    """Resize by `scale`, pad to `size` and cut the `size` window at (top, left), in one step.

    Equal to `resize_pair` to `round(scale * (H, W))`, padding bottom/right (image 0, mask
    `ignore_index`) and slicing, but only the window is computed (`crop_and_resize` at the
    same half-pixel sample positions), so upscaling a large image costs no more than its crop.
    """
    in_size = tf.shape(image)[:2]
    scaled = tf.maximum(tf.cast(tf.round(tf.cast(in_size, tf.float32) * scale), tf.int32), 1)
    ratio = tf.cast(in_size, tf.float32) / tf.cast(scaled, tf.float32)  # as tf.image.resize
    offset = tf.cast(tf.stack([top, left]), tf.float32)
    extent = tf.constant(size, tf.float32) - 1.0
    # First and last sample positions in source pixels (half-pixel centres), +1 for the
    # replicated border added below, normalised as crop_and_resize expects.
    first = (offset + 0.5) * ratio - 0.5 + 1.0
    last = first + extent * ratio
    span = tf.cast(in_size + 1, tf.float32)  # padded size - 1
    box = tf.concat([first / span, last / span], axis=0)[None]
    # A 1-pixel replicated border makes samples within half a pixel of the edge read the edge
    # pixel, as tf.image.resize's clamping does.
    image = tf.pad(image, [[1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    mask = tf.pad(tf.cast(mask, tf.float32), [[1, 1], [1, 1]], mode="SYMMETRIC")
    image = tf.image.crop_and_resize(image[None], box, [0], size, method="bilinear")[0]
    mask = tf.image.crop_and_resize(mask[None, ..., None], box, [0], size, method="nearest")
    mask = tf.cast(mask[0, ..., 0], tf.int32)
    # Rows and columns past the scaled image are padding.
    rows = tf.range(size[0]) + top < scaled[0]
    cols = tf.range(size[1]) + left < scaled[1]
    inside = rows[:, None] & cols[None, :]
    image = tf.where(inside[..., None], image, 0.0)
    mask = tf.where(inside, mask, ignore_index)
    return _set_size(image, mask, size)


def downscale_crop(image, mask, scale, top, left, size, ignore_index):
    """`scale_crop` for `scale < 1` with an antialiased image resize (a triangle filter as wide
    as the scale asks, as PIL's BILINEAR in the reference's pipeline): plain bilinear sampling
    skips pixels when shrinking, and the aliased textures it trains on never occur at test time.
    """
    in_size = tf.shape(image)[:2]
    scaled = tf.maximum(tf.cast(tf.round(tf.cast(in_size, tf.float32) * scale), tf.int32), 1)
    image = tf.image.resize(image, scaled, method="bilinear", antialias=True)
    mask = tf.image.resize(mask[..., None], scaled, method="nearest")[..., 0]
    image, mask = pad_to_size(image, mask, size, ignore_index)
    image = image[top : top + size[0], left : left + size[1]]
    mask = mask[top : top + size[0], left : left + size[1]]
    return _set_size(image, mask, size)


def random_scale_crop(
    image, mask, seed, size, ignore_index, scale_range=SCALE_RANGE, antialias=True
):
    """Random scale s ~ U(scale_range), then a random `size` window of the scaled image padded
    (bottom/right) to at least `size`: image 0, mask `ignore_index`. With `antialias`, shrinking
    filters the image (see `downscale_crop`)."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    scale = tf.random.stateless_uniform([], seeds[0], scale_range[0], scale_range[1])
    scaled = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
    room = tf.maximum(tf.maximum(scaled, 1) - tf.constant(size, tf.int32), 0) + 1
    top = tf.random.stateless_uniform([], seeds[1], 0, room[0], dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[2], 0, room[1], dtype=tf.int32)
    if not antialias:
        return scale_crop(image, mask, scale, top, left, size, ignore_index)
    mask = tf.cast(mask, tf.int32)
    return tf.cond(
        scale < 1.0,
        lambda: downscale_crop(image, mask, scale, top, left, size, ignore_index),
        lambda: scale_crop(image, mask, scale, top, left, size, ignore_index),
    )


def centre_crop(image, mask, size, ignore_index):
    """Deterministic crop of the centre `size` window, padding evenly where the input is smaller."""
    image, mask = pad_to_size(image, mask, size, ignore_index, centre=True)
    shape = tf.shape(image)[:2]
    top = (shape[0] - size[0]) // 2
    left = (shape[1] - size[1]) // 2
    image = image[top : top + size[0], left : left + size[1]]
    mask = mask[top : top + size[0], left : left + size[1]]
    return _set_size(image, mask, size)


def random_flip(image, mask, seed):
    """Mirror left-right with probability 1/2, both or neither."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(
        flip, lambda: (tf.reverse(image, [1]), tf.reverse(mask, [1])), lambda: (image, mask)
    )


def photometric(image, seed, brightness=BRIGHTNESS, contrast=CONTRAST, color_gain=COLOR_GAIN):
    """Brightness, contrast and per-channel colour noise; the mask is untouched."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    delta = tf.random.stateless_uniform([], seeds[0], -brightness, brightness)
    factor = tf.random.stateless_uniform([], seeds[1], contrast[0], contrast[1])
    gain = tf.random.stateless_uniform([3], seeds[2], color_gain[0], color_gain[1])
    mean = tf.reduce_mean(image)
    image = (image - mean) * factor + mean + delta
    return tf.clip_by_value(image * gain, 0.0, 255.0)


def augment(
    image, mask, seed, crop, ignore_index, scale_range=SCALE_RANGE, colour=True, antialias=True
):
    """The paper's training augmentation for one sample.

    Colour jitter comes first, on the original pixels, so that the zero padding added by the
    crop stays exactly zero; then scale, pad + random crop to `crop`, flip.

    Args:
        image: float32 (H, W, 3) in [0, 255].
        mask: int32 (H, W).
        seed: int32/int64 `[2]` stateless seed, unique per sample.
        crop: output (height, width).
        ignore_index: label written into padded mask pixels.
        scale_range: (min, max) of the random scale factor.
        colour: apply brightness/contrast/colour noise.
        antialias: filter the image when the scale shrinks it (see `downscale_crop`).
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    if colour:
        image = photometric(image, seeds[0])
    image, mask = random_scale_crop(
        image, mask, seeds[1], crop, ignore_index, scale_range, antialias
    )
    return random_flip(image, mask, seeds[2])


def _set_size(image, mask, size):
    image = tf.ensure_shape(image, [size[0], size[1], 3])
    mask = tf.ensure_shape(mask, [size[0], size[1]])
    return image, mask
