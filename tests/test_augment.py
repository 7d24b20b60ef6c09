import numpy as np
import pytest
import tensorflow as tf

from fastscnn_tf import augment

IGNORE = 255


def _stripes(length, rng):
    """0/1 per position along one axis, in runs of random width 3..9."""
    values, level = [], 0
    while len(values) < length:
        values += [level] * int(rng.integers(3, 10))
        level = 1 - level
    return np.asarray(values[:length])


def _image_and_mask(height=45, width=60, seed=0):
    """R depends on x only, G on y only: a bilinear resize keeps each a 1-D interpolation, so
    thresholding halfway (130) agrees with a nearest resize of the mask except at exact ties."""
    rng = np.random.default_rng(seed)
    cols, rows = _stripes(width, rng), _stripes(height, rng)
    image = np.zeros((height, width, 3), np.float32)
    image[..., 0] = np.where(cols[None, :], 220, 40)
    image[..., 1] = np.where(rows[:, None], 220, 40)
    image[..., 2] = 128
    return image, _labels_of(image)


def _labels_of(image):
    return (image[..., 0] > 130).astype(np.int32) + 2 * (image[..., 1] > 130)


@pytest.mark.parametrize("sample", range(12))
def test_augment_keeps_mask_aligned_with_image(sample):
    image, mask = _image_and_mask(seed=sample)
    seed = tf.constant([7, sample], tf.int64)
    # Geometry only: without the antialiasing filter, which blurs colours across boundaries.
    out_image, out_mask = augment.augment(
        image, mask, seed, (64, 64), IGNORE, colour=False, antialias=False
    )
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    assert out_image.shape == (64, 64, 3) and out_mask.shape == (64, 64)
    padded = out_mask == IGNORE
    # Padding: image exactly 0 where the mask is ignore, and nowhere else.
    assert np.array_equal(padded, np.all(out_image == 0, axis=-1))
    # Away from exact interpolation ties (value 130 +- 1), labels follow the image pixels.
    tie = (np.abs(out_image[..., 0] - 130) <= 1) | (np.abs(out_image[..., 1] - 130) <= 1)
    check = ~padded & ~tie
    assert check.mean() > 0.1
    np.testing.assert_array_equal(out_mask[check], _labels_of(out_image)[check])


@pytest.mark.parametrize(
    "scale, top, left, size",
    [
        (0.73, 0, 0, (24, 30)),
        (1.37, 5, 11, (40, 40)),
        (1.91, 7, 2, (64, 48)),
        (0.5, 0, 0, (32, 48)),
        (0.9, 0, 5, (40, 40)),
    ],
)
def test_scale_crop_equals_resize_pad_then_slice(scale, top, left, size):
    """The one-step window equals the plain recipe: resize the whole image, pad, slice."""
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (37, 53, 3)).astype(np.float32)
    mask = rng.integers(0, 6, (37, 53)).astype(np.int32)
    scaled = (round(37 * scale), round(53 * scale))
    ref_image, ref_mask = augment.resize_pair(image, mask, scaled)
    ref_image, ref_mask = augment.pad_to_size(ref_image, ref_mask, size, IGNORE)
    window = np.s_[top : top + size[0], left : left + size[1]]
    out_image, out_mask = augment.scale_crop(
        image, mask, tf.constant(scale), top, left, size, IGNORE
    )
    np.testing.assert_allclose(out_image.numpy(), ref_image.numpy()[window], atol=0.05)
    np.testing.assert_array_equal(out_mask.numpy(), ref_mask.numpy()[window])


def test_colour_jitter_does_not_move_labels():
    image, mask = _image_and_mask()
    seed = tf.constant([3, 4], tf.int64)
    plain = augment.augment(image, mask, seed, (64, 64), IGNORE, colour=False)
    jittered = augment.augment(image, mask, seed, (64, 64), IGNORE, colour=True)
    np.testing.assert_array_equal(plain[1].numpy(), jittered[1].numpy())
    padded = jittered[1].numpy() == IGNORE
    assert np.all(jittered[0].numpy()[padded] == 0)
    assert not np.allclose(plain[0].numpy()[~padded], jittered[0].numpy()[~padded])
    assert jittered[0].numpy().min() >= 0 and jittered[0].numpy().max() <= 255


def test_flip_at_unit_scale_is_numpy_flip_of_both_or_neither():
    image, mask = _image_and_mask(height=32, width=40)
    flips = set()
    for sample in range(8):
        out_image, out_mask = augment.augment(
            image, mask, tf.constant([0, sample]), (32, 40), IGNORE, (1.0, 1.0), colour=False
        )
        # Sample positions are computed in float32: equal up to rounding.
        flipped = np.allclose(out_image.numpy(), image[:, ::-1], atol=1e-3)
        assert flipped or np.allclose(out_image.numpy(), image, atol=1e-3)
        np.testing.assert_array_equal(out_mask.numpy(), mask[:, ::-1] if flipped else mask)
        flips.add(flipped)
    assert flips == {True, False}


def test_downscale_pads_mask_with_ignore_index():
    image, mask = _image_and_mask(height=40, width=60)
    image += 1  # no zero pixel in the input
    out_image, out_mask = augment.augment(
        image, mask, tf.constant([1, 2]), (32, 48), IGNORE, (0.5, 0.5), colour=False
    )
    out_mask = out_mask.numpy()
    assert (out_mask == IGNORE).sum() == 32 * 48 - 20 * 30
    assert np.all(out_image.numpy()[out_mask == IGNORE] == 0)
    assert set(np.unique(out_mask)) <= {0, 1, 2, 3, IGNORE}


def test_centre_crop_and_pad_match_numpy_slicing():
    rng = np.random.default_rng(0)
    image = rng.uniform(1, 255, (10, 12, 3)).astype(np.float32)
    mask = rng.integers(0, 5, (10, 12)).astype(np.int32)
    out_image, out_mask = augment.centre_crop(image, mask, (6, 6), IGNORE)
    np.testing.assert_array_equal(out_image.numpy(), image[2:8, 3:9])
    np.testing.assert_array_equal(out_mask.numpy(), mask[2:8, 3:9])
    out_image, out_mask = augment.centre_crop(image, mask, (14, 16), IGNORE)
    expected = np.full((14, 16), IGNORE)
    expected[2:12, 2:14] = mask
    np.testing.assert_array_equal(out_mask.numpy(), expected)
    assert np.all(out_image.numpy()[expected == IGNORE] == 0)


def test_resize_pair_never_invents_labels():
    mask = np.zeros((20, 20), np.int32)
    mask[5:15, 5:15] = 5
    image = np.repeat((mask * 40.0)[..., None], 3, axis=-1).astype(np.float32)
    for size in [(13, 7), (37, 41)]:
        out_image, out_mask = augment.resize_pair(image, mask, size)
        assert set(np.unique(out_mask.numpy())) == {0, 5}
        assert out_image.shape == (*size, 3)
        # Some image pixels are interpolated (bilinear), the mask never is.
        values = np.unique(out_image.numpy())
        assert len(values) > 2 or size == (13, 7)


def test_augment_is_a_function_of_the_seed():
    image, mask = _image_and_mask()
    a = augment.augment(image, mask, tf.constant([5, 9]), (40, 40), IGNORE)
    b = augment.augment(image, mask, tf.constant([5, 9]), (40, 40), IGNORE)
    c = augment.augment(image, mask, tf.constant([5, 10]), (40, 40), IGNORE)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_downscale_is_antialiased_like_pil_bilinear():
    """Shrinking filters the image as PIL's BILINEAR does (the reference's pipeline), instead
    of sampling every other stripe of a fine pattern."""
    from PIL import Image

    stripes = np.zeros((40, 60), np.float32)
    stripes[:, ::2] = 255.0  # 1-pixel stripes: aliasing turns them into a flat 0 or 255
    image = np.repeat(stripes[..., None], 3, axis=-1)
    mask = np.zeros((40, 60), np.int32)
    out, _ = augment.downscale_crop(image, mask, tf.constant(0.4), 0, 0, (16, 24), IGNORE)
    expected = np.asarray(Image.fromarray(stripes, "F").resize((24, 16), Image.BILINEAR))
    np.testing.assert_allclose(out.numpy()[..., 0], expected, atol=1.0)
    aliased, _ = augment.scale_crop(image, mask, tf.constant(0.4), 0, 0, (16, 24), IGNORE)
    assert np.abs(aliased.numpy()[..., 0] - expected).max() > 50
