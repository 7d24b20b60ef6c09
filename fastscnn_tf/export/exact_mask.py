"""The exact full-size class mask, resized only where it can differ from the 1/8 class map.

The exact mask is the first-max `ARG_MAX` over classes of the 1/8 scores bilinearly upsampled
x8 to the input size (half-pixel centres). At that size `ARG_MAX` is not delegated to XNNPACK
and costs more than the network's convolutions; this head returns the same mask, pixel for
pixel, and resizes only what can change the answer.

Every output pixel is a convex combination of the four 1/8 scores around it, the corners of its
*cell* (an 8x8 block of output pixels; at the border the corners repeat, as bilinear resizing
clamps). A class `c` is *dominated* in a cell when another class `k` beats it at all four corners,
a tie going to the lower index as `ARG_MAX` breaks ties; interpolation keeps that order (below),
so a dominated class wins no pixel of the cell. So a cell whose four corners share their argmax
is that class throughout, and only the other cells (class boundaries: about 10% of the cells on
CamVid) are resized, from their 2x2 corners and only with the classes not shown dominated, and
resolved per pixel with `ARG_MAX`.

Why the result is exact, ties included:
- int8 graphs: the resize interpolates the integers with non-negative fixed-point weights that
  sum to a power of two and rounds once (XNNPACK: half up; LiteRT's own kernel: half away from
  zero). Both roundings are monotone and add 1 when their argument grows by 1, so `q_k >= q_c`
  at all corners gives `r_k >= r_c` and `q_k > q_c` gives `r_k > r_c`. The head keeps every int8
  value at the scores' scale: it moves them (GATHER, RESHAPE, TRANSPOSE), reduces them
  (REDUCE_MIN/MAX), compares them with ARG_MAX, and drops a class only on a strict GREATER,
  which a rounding of both sides can miss but never invent.
- float graphs: interpolation rounds differently per kernel, so a class only counts as
  dominated when it loses by a margin (`FLOAT_MARGIN` of the largest |score|) far above the
  rounding error of the interpolation (below 2**-20 of it).
- the resized values are the ones the full resize computes: the same RESIZE_BILINEAR op with
  the same weights (a 2x2 patch upsampled to 16x16 with half-pixel centres samples rows and
  columns 4..11 at the fractions (2t+1)/16 that the x8 resize uses inside every cell), which
  LiteRT runs with the same kernel, XNNPACK or its own, as the full resize it replaces.

Builtin ops only. The number of boundary cells makes some shapes data-dependent (WHERE, GATHER);
LiteRT runs them single-threaded and XNNPACK still takes the resizes and int8 transposes, so the
head moves data in large pieces where it can (whole rows, 8 pixels as one int64). The cost
follows the scene: about a quarter of the full-size resize and ARG_MAX on CamVid. Scores with
boundaries nearly everywhere (an untrained network's noise) would cost more than that plain head,
so past `FULL_RESIZE_FRACTION` of the map's (cell, class) channels the head resolves no cell and
returns the plain head's mask instead: the same RESIZE_BILINEAR at full size (one of batch 0 or
1, so no control-flow op) and ARG_MAX. That bounds its cost by the plain head's.
"""

import numpy as np
import tensorflow as tf

FACTOR = 8  # the scores are 1/8 of the input
# A boundary cell is resolved with as many class channels as the first of these that holds its
# undominated classes (2 on most class edges); cells with more, with every class.
CANDIDATE_TIERS = (2, 4, 8)
# Fraction of the largest |score| by which a float score must lose to count as dominated.
FLOAT_MARGIN = 2.0**-16
# The boundary cells are resolved from a 2x2 -> 16x16 resize of each (cell, candidate class)
# channel, 4x the pixels of the cell, so past this fraction of the (cell x class) channels of
# the whole map the plain full-size resize and ARG_MAX is cheaper, and the head takes it.
FULL_RESIZE_FRACTION = 0.25


def supports(scores_shape, size):
    """Whether `exact_mask` applies: one image whose scores are exactly 1/8 of `size`."""
    n, h, w, _ = scores_shape
    return n == 1 and (h * FACTOR, w * FACTOR) == tuple(size)


def upsamples_half_pixel(model):
    """Whether a Fast-SCNN `keras.Model` upsamples its scores with half-pixel centres, the
    resize this head reproduces (its `ResizeLike` "logits", or "logits_up" before the crop of a
    padded model); not the reference's `align_corners=True`."""
    for name in ("logits_up", "logits"):
        layer = next((layer for layer in model.layers if layer.name == name), None)
        if layer is not None and hasattr(layer, "align_corners"):
            return not layer.align_corners
    return False


def corner_index(h, w):
    """(h+1, w+1, 4) int32: the flat positions in the (h, w) score map of the corners of every
    cell (top-left, top-right, bottom-left, bottom-right). Cell (i, j) lies between rows i-1, i
    and columns j-1, j, clamped to the map as bilinear resizing clamps at the border."""
    rows = np.clip(np.arange(h + 1)[:, None] + np.array([-1, 0]), 0, h - 1)
    cols = np.clip(np.arange(w + 1)[:, None] + np.array([-1, 0]), 0, w - 1)
    index = rows[:, None, :, None] * w + cols[None, :, None, :]  # (h+1, w+1, 2, 2)
    return index.reshape(h + 1, w + 1, 4).astype(np.int32)


def _corners(grid):
    """The corners of every cell of an (h, w) map, as in `corner_index`: four (h+1, w+1)
    shifted views (top-left, top-right, bottom-left, bottom-right) of it with its border
    repeated. SLICE copies whole rows, where GATHER and a STRIDED_SLICE of int32 copy element by
    element (5x slower here)."""
    h, w = grid.shape
    grid = tf.concat([grid[:1], grid, grid[-1:]], 0)
    grid = tf.concat([grid[:, :1], grid, grid[:, -1:]], 1)
    return [tf.slice(grid, [i, j], [h + 1, w + 1]) for i in (0, 1) for j in (0, 1)]


def _spread(values):
    """Elementwise minimum and maximum over the equal-shaped tensors `values` (one PACK and two
    reductions; LiteRT's LOGICAL_OR is 5x slower than they are)."""
    stacked = tf.stack(values)
    return tf.reduce_min(stacked, axis=0), tf.reduce_max(stacked, axis=0)


def _candidates(corners, margin):
    """(n, C) bool: the classes not dominated in each of n cells, from their corner scores
    (4, n, C). `margin` is None for int8 graphs, else the float margin.

    Class `best` has the highest minimum over the corners, `floor`; a class whose maximum is
    below `floor` loses to `best` at every pixel, and `best` itself stays. This misses some
    dominated classes (and keeps a class equal to `floor`), which only costs a wider resize.
    """
    # REDUCE_MIN/MAX keep the int8 scale of their input (the converter gives a MINIMUM or
    # MAXIMUM a scale of its own, requantizing into it).
    low = tf.reduce_min(corners, axis=0)
    high = tf.reduce_max(corners, axis=0)
    floor = tf.reduce_max(low, axis=-1, keepdims=True)
    if margin is not None:
        return high >= floor - margin
    # An int8 comparison rescales both sides by their (shared) scale and rounds: at the tiny
    # scales of untrained logits it can find equal what differs, never greater what is not.
    return ~(floor > high)


def _block_rows(pixels):
    """The (m, 8) int64 rows of (m, 64) uint8 8x8 blocks: the 8 pixels of a block row as one
    int64, which the mask assembly and the two-class arithmetic move and compute with."""
    return tf.bitcast(tf.reshape(pixels, [-1, FACTOR, FACTOR]), tf.int64)


def _class_rows(pick, classes, num_classes):
    """(m, 8) int64 block rows of the classes at the (m, 64) positions `pick` in the (m, K)
    `classes` of each cell. Two classes (most cells) by arithmetic on the rows, 8 pixels at a
    time: the pixels of `pick` are 0 or 1, so each byte of `first * 0x0101..01 + pick * (second
    - first)` is that pixel's class, without carries (second > first), and below 128 classes no
    int64 product overflows; a GATHER would copy every pixel by itself."""
    if classes.shape[-1] == 2 and num_classes <= 128:
        # top_k lists a cell's classes in increasing order; reductions, not two STRIDED_SLICEs
        # (which LiteRT copies element by element).
        first = tf.cast(tf.reduce_min(classes, axis=1, keepdims=True), tf.int64)
        second = tf.cast(tf.reduce_max(classes, axis=1, keepdims=True), tf.int64)
        ones = np.int64(int.from_bytes(b"\x01" * 8, "little"))
        return first * ones + _block_rows(tf.cast(pick, tf.uint8)) * (second - first)
    return _block_rows(tf.cast(tf.gather(classes, pick, batch_dims=1), tf.uint8))


def _assemble(table, cell_row, size):
    """The uint8 (1, H, W) mask from the (R, 8) `table` of 8x8 blocks (`_block_rows`) and the
    (h+1, w+1) row of the table that each cell shows.

    The 8 pixels of a block row travel as one int64 (BITCAST): a TRANSPOSE of (h+1, w+1, 8)
    int64 lays the blocks out as rows of the image, 3x faster than a DEPTH_TO_SPACE of bytes."""
    rows, cols = cell_row.shape
    image = tf.transpose(tf.gather(table, cell_row), [0, 2, 1])  # (h+1, 8, w+1) int64
    image = tf.reshape(tf.bitcast(image, tf.uint8), [1, FACTOR * rows, FACTOR * cols])
    # Cell (0, 0) starts half a cell above and left of the image; SLICE copies rows.
    half = FACTOR // 2
    return tf.slice(image, [0, half, half], [1, *size])


def _resolve(corners, groups):
    """The classes of the 8x8 output pixels of groups of cells: a list of (m, 8) block rows
    (`_block_rows`), one per `(cells, classes)` in `groups`, where `cells` (m,) index the cell
    axis of the corner scores `corners` (4, n, C) and `classes` (m, K) lists the classes to
    compare in increasing order (a tie goes to the lower index)."""
    n, num_classes = tf.shape(corners)[1], corners.shape[-1]
    # One GATHER and one resize for all groups: every (cell, class) is a channel of one 2x2
    # image, which XNNPACK upsamples vectorised over channels in one call.
    channel = [
        tf.reshape(tf.expand_dims(cells, 1) * num_classes + classes, [-1])
        for cells, classes in groups
    ]
    position = tf.concat(channel, 0) + tf.range(4)[:, None] * (n * num_classes)
    values = tf.gather(tf.reshape(corners, [-1]), position)  # (4, channels)
    up = tf.raw_ops.ResizeBilinear(
        images=tf.reshape(values, [1, 2, 2, -1]),
        size=(2 * FACTOR, 2 * FACTOR),
        align_corners=False,
        half_pixel_centers=True,
    )
    half = FACTOR // 2
    inside = tf.reshape(up[:, half : half + FACTOR, half : half + FACTOR], [FACTOR**2, -1])
    parts = tf.split(inside, [tf.size(classes) for _, classes in groups], axis=1)
    resolved = []
    for part, (cells, classes) in zip(parts, groups, strict=True):
        m, k = tf.shape(cells)[0], classes.shape[-1]
        per_cell = tf.transpose(tf.reshape(part, [FACTOR**2, m, k]), [1, 0, 2])  # (m, 64, K)
        pick = tf.argmax(per_cell, axis=-1, output_type=tf.int32)  # index among the K
        resolved.append(_class_rows(pick, classes, num_classes))
    return resolved


def exact_mask(scores, size, quantized):
    """uint8 class mask (1, H, W) equal to the first-max `ARG_MAX` of `scores` resized x8.

    Args:
        scores: float (1, h, w, C) class scores with `(8h, 8w) == size` (see `supports`).
        size: `(H, W)` of the mask.
        quantized: the graph is converted to int8, where scores compare as integers; False
            for float graphs, where only clear margins count.
    """
    if not supports(scores.shape, size):
        raise ValueError(f"exact_mask needs 1/{FACTOR} scores of {size}, got {scores.shape}.")
    _, h, w, num_classes = scores.shape
    flat = tf.reshape(scores, [h * w, num_classes])
    corner_class = _corners(tf.reshape(tf.argmax(flat, axis=-1, output_type=tf.int32), [h, w]))
    cell_class = corner_class[0]
    low, high = _spread(corner_class)
    boundary = tf.not_equal(low, high)
    margin = None
    if not quantized:
        margin = FLOAT_MARGIN * tf.reduce_max(tf.abs(flat))
        top = tf.reduce_max(flat, axis=-1, keepdims=True)
        clear = tf.reduce_sum(tf.cast(flat >= top - margin, tf.int32), axis=-1)  # 1: a clear win
        boundary |= _spread(_corners(tf.reshape(clear, [h, w])))[1] > 1  # clear >= 1

    # Boundary cells, and a spare cell at the end so that no batch below is empty: (h+1, 0), in
    # an extra row of cells (of `index`, with the corners of row 0) that the mask leaves out.
    index = corner_index(h, w)
    index = np.concatenate([index, index[:1]])
    cells = tf.concat([tf.cast(tf.where(boundary), tf.int32), [[h + 1, 0]]], 0)
    corners = tf.gather(flat, tf.transpose(tf.gather_nd(index, cells)))  # (4, n+1, C)
    candidate = tf.cast(_candidates(corners, margin), tf.int32)
    count = tf.reduce_sum(candidate, axis=-1)
    key = candidate * (num_classes - tf.range(num_classes))  # top_k: candidates, lowest first

    # The mask's 8x8 blocks come from one table: a row per class for one-class cells, then the
    # rows of the resolved boundary cells, tier by tier (`tier_of`), each tier's spare after its
    # members; `row` says which row each boundary cell reads.
    plain = np.repeat(np.arange(num_classes, dtype=np.uint8)[:, None], FACTOR**2, axis=1)
    table = [plain.view(np.int64)]  # (C, 8): every byte of row c is c
    tiers = [t for t in CANDIDATE_TIERS if t < num_classes] + [num_classes]
    bounds = tf.constant(tiers[:-1], tf.int32)
    tier_of = tf.reduce_sum(tf.cast(tf.expand_dims(count, 1) > bounds, tf.int32), axis=-1)
    # Scores with class boundaries nearly everywhere (an untrained network's) resolve no cell:
    # the full-size resize and ARG_MAX below cost less then (`FULL_RESIZE_FRACTION`).
    channels = tf.reduce_sum(tf.gather(tf.constant(tiers, tf.int32), tier_of))
    full = channels > int(FULL_RESIZE_FRACTION * h * w * num_classes)
    groups, members = [], []
    spare = tf.shape(cells)[:1] - 1
    for i, tier in enumerate(tiers):
        member = tf.logical_and(tf.equal(tier_of, i), tf.logical_not(full))
        members.append(tf.cast(tf.reshape(tf.where(member), [-1]), tf.int32))
        pick = tf.concat([members[-1], spare], 0)
        if tier < num_classes:
            classes = tf.math.top_k(tf.gather(key, pick), tier).indices  # (m, K)
        else:
            classes = tf.broadcast_to(tf.range(num_classes), [tf.shape(pick)[0], tier])
        groups.append((pick, classes))
    table += _resolve(corners, groups)
    # A member of tier i follows the members of the tiers before it and their i spares.
    order = tf.concat(members, 0)
    row = num_classes + tf.range(tf.shape(order)[0]) + tf.gather(tier_of, order)
    row = tf.scatter_nd(tf.gather(cells, order), row, [h + 2, w + 1])
    cell_row = tf.where(boundary, 0, cell_class) + tf.slice(row, [0, 0], [h + 1, w + 1])
    assembled = _assemble(tf.concat(table, 0), cell_row, size)
    # The plain head's mask comes first when `full`; otherwise it is empty and costs nothing.
    both = tf.concat([_full_resize_mask(scores, tf.cast(full, tf.int32), size), assembled], 0)
    return tf.slice(both, [0, 0, 0], [1, *size])


def _full_resize_mask(scores, count, size):
    """(count, H, W) uint8: `count` (0 or 1) copies of the `ARG_MAX` of `scores` resized to
    `size`. The count is the batch of a resize of constant size, the same op as the plain
    head's, which LiteRT runs with the same kernel (a computed size would take another)."""
    batch = tf.gather(scores, tf.zeros([count], tf.int32))
    up = tf.raw_ops.ResizeBilinear(
        images=batch, size=size, align_corners=False, half_pixel_centers=True
    )
    return tf.cast(tf.argmax(up, axis=-1, output_type=tf.int32), tf.uint8)
