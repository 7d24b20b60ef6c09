import numpy as np
import pytest
from PIL import Image

from fastscnn_tf import android_mirror

# The same 3x2 image as the Kotlin PixelsTest:  1 2 3
#                                              4 5 6
SMALL = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint32)


def smooth_rgb(h, w):
    """A slowly varying image: bilinear resamplers may only differ by rounding on it."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = [
        128 + 90 * np.sin(x / 40.0) * np.cos(y / 50.0),
        60 + 0.5 * x + 0.3 * y,
        200 - 0.4 * x,
    ]
    return np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("mirror", [False, True])
def test_rotate_is_clockwise_rot90_then_fliplr(degrees, mirror):
    image = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    # np.rot90 turns counter-clockwise: a clockwise turn by d is (360 - d) counter-clockwise.
    expected = np.rot90(image, k=(360 - degrees) // 90 % 4)
    if mirror:
        expected = np.fliplr(expected)
    np.testing.assert_array_equal(android_mirror.rotate(image, degrees, mirror), expected)


def test_rotate_matches_the_kotlin_hand_cases():
    np.testing.assert_array_equal(android_mirror.rotate(SMALL, 90, False), [[4, 1], [5, 2], [6, 3]])
    np.testing.assert_array_equal(android_mirror.rotate(SMALL, 270, True), [[6, 3], [5, 2], [4, 1]])
    with pytest.raises(ValueError, match="degrees must be 0, 90, 180 or 270, got 45"):
        android_mirror.rotate(SMALL, 45, False)


def test_argb_round_trip():
    rgb = smooth_rgb(4, 5)
    argb = android_mirror.rgb_to_argb(rgb)
    assert argb.dtype == np.uint32
    r, g, b = (int(v) for v in rgb[0, 0])
    assert argb[0, 0] == 0xFF000000 | r << 16 | g << 8 | b
    np.testing.assert_array_equal(android_mirror.argb_to_rgb(argb), rgb)


def test_bilinear_same_size_is_identity():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
    np.testing.assert_array_equal(android_mirror.resize_bilinear(rgb, 9, 13), rgb)


def test_bilinear_hand_cases_match_kotlin():
    def red(values, out_w):
        rgb = np.zeros((1, len(values), 3), np.uint8)
        rgb[0, :, 0] = values
        return android_mirror.resize_bilinear(rgb, 1, out_w)[0, :, 0].tolist()

    assert red([0, 200], 4) == [0, 50, 150, 200]
    assert red([10, 20, 30, 41], 2) == [15, 36]
    i0, i1, frac = android_mirror.bilinear_taps(2, 3)
    assert (i0.tolist(), i1.tolist(), frac.tolist()) == ([0, 0, 1], [1, 1, 1], [0, 128, 42])
    corners = np.array([[[0], [100]], [[200], [255]]], np.uint8)
    assert android_mirror.resize_bilinear(corners, 3, 3)[1, 1, 0] == 139


def float_bilinear(rgb, out_h, out_w):
    """Textbook half-pixel bilinear in float64, rounded: an independent reference."""

    def axis(in_size, out_size):
        src = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, in_size - 1), src - lo

    x0, x1, fx = axis(rgb.shape[1], out_w)
    y0, y1, fy = axis(rgb.shape[0], out_h)
    p = rgb.astype(np.float64)
    fx = fx[None, :, None]
    top = p[y0][:, x0] * (1 - fx) + p[y0][:, x1] * fx
    bottom = p[y1][:, x0] * (1 - fx) + p[y1][:, x1] * fx
    fy = fy[:, None, None]
    return np.round(top * (1 - fy) + bottom * fy)


@pytest.mark.parametrize("out_size", [(96, 128), (37, 53), (240, 320), (180, 240)])
def test_bilinear_agrees_with_float_reference(out_size):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(180, 240, 3), dtype=np.uint8)
    ours = android_mirror.resize_bilinear(rgb, *out_size).astype(int)
    # Flooring each weight to 1/256 moves a value by < 255/256 per axis before rounding;
    # on random (worst-case) pixels that is at most 2 levels, and well under 1 on average.
    diff = np.abs(ours - float_bilinear(rgb, *out_size))
    assert diff.max() <= 2
    assert diff.mean() < 0.5


@pytest.mark.parametrize("out_size", [(96, 128), (120, 160), (360, 480)])
def test_bilinear_agrees_with_pil_on_a_smooth_image(out_size):
    rgb = smooth_rgb(180, 240)
    pil = Image.fromarray(rgb).resize(out_size[::-1], Image.Resampling.BILINEAR)
    diff = np.abs(android_mirror.resize_bilinear(rgb, *out_size).astype(int) - np.asarray(pil, int))
    assert diff.max() <= 2


def test_frame_to_input_resizes_rgb_of_argb():
    rgb = smooth_rgb(30, 40)
    out = android_mirror.frame_to_input(android_mirror.rgb_to_argb(rgb), 12, 16)
    np.testing.assert_array_equal(out, android_mirror.resize_bilinear(rgb, 12, 16))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8


def test_nearest_matches_float_centres():
    for in_size, out_size in [(2, 4), (4, 2), (3, 2), (2, 3), (96, 180), (128, 240), (240, 128)]:
        expected = np.floor((np.arange(out_size) + 0.5) * in_size / out_size).astype(int)
        np.testing.assert_array_equal(android_mirror.nearest_indices(in_size, out_size), expected)
    class_map = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(
        android_mirror.resize_nearest(class_map, 3, 4), [[1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )


def test_decode_output():
    mask = np.array([[0, 3], [200, 255]], np.uint8)
    np.testing.assert_array_equal(android_mirror.decode_output(mask, "mask"), mask)
    logits = np.array([[[0.1, 0.7, 0.2], [0.5, 0.5, 0.1], [-3, -2, -2], [0, 0, 0]]], np.float32)
    np.testing.assert_array_equal(android_mirror.decode_output(logits, "logits"), [[1, 0, 1, 0]])
    q = np.array([[[100, 200], [7, 7], [255, 0]]], np.uint8)
    np.testing.assert_array_equal(android_mirror.decode_output(q, "logits"), [[1, 0, 0]])
    np.testing.assert_array_equal(
        android_mirror.decode_output(q.view(np.int8), "logits"), [[0, 0, 1]]
    )
    with pytest.raises(ValueError, match="kind must be"):
        android_mirror.decode_output(mask, "probabilities")


def test_overlay_hand_case_and_ends():
    palette = [(255, 0, 0), (0, 255, 0)]
    frame = np.array([[0x00102030]], np.uint32)
    assert android_mirror.overlay_argb(frame, [[0]], palette, 128)[0, 0] == 0xFF881018
    frame = np.array([[0x12345678, 0x7F010203]], np.uint32)
    np.testing.assert_array_equal(
        android_mirror.overlay_argb(frame, [[0, 1]], palette, 0), [[0xFF345678, 0xFF010203]]
    )
    np.testing.assert_array_equal(
        android_mirror.overlay_argb(frame, [[0, 1]], palette, 255), [[0xFFFF0000, 0xFF00FF00]]
    )


def test_overlay_agrees_with_float_blend():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, size=(5, 3))
    class_map = rng.integers(0, 5, size=(20, 30))
    for opacity in (0, 1, 77, 128, 254, 255):
        out = android_mirror.argb_to_rgb(
            android_mirror.overlay_argb(
                android_mirror.rgb_to_argb(rgb), class_map, palette, opacity
            )
        )
        a = opacity / 255
        expected = np.floor(rgb * (1 - a) + palette[class_map] * a + 0.5)
        assert np.abs(out.astype(int) - expected).max() <= 1


def test_colorize_and_its_errors():
    colors = android_mirror.colorize_argb([[1, 0]], [(1, 2, 3), (0xAB, 0xCD, 0xEF)])
    np.testing.assert_array_equal(colors, [[0xFFABCDEF, 0xFF010203]])
    with pytest.raises(ValueError, match="class 2 at pixel 1 has no colour: the palette has 2"):
        android_mirror.colorize_argb([[0, 2]], [(0, 0, 0), (1, 1, 1)])
    with pytest.raises(ValueError, match="opacity must be in 0..255"):
        android_mirror.overlay_argb(np.zeros((1, 1), np.uint32), [[0]], [(0, 0, 0)], 256)
    with pytest.raises(ValueError, match="resize it"):
        android_mirror.overlay_argb(np.zeros((1, 2), np.uint32), [[0]], [(0, 0, 0)], 9)
