import math

import numpy as np
import pytest

from fastscnn_tf import losses

IGNORE = 255


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _pixel_losses(labels, logits):
    """Per-pixel cross-entropy of the valid pixels, and those pixels' labels."""
    labels, logits = labels.reshape(-1), logits.reshape(-1, logits.shape[-1])
    valid = labels != IGNORE
    picked = _log_softmax(logits[valid])[np.arange(valid.sum()), labels[valid]]
    return -picked, labels[valid]


def _data(seed=0, shape=(2, 6, 7), num_classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, shape)
    labels[rng.random(shape) < 0.3] = IGNORE
    logits = rng.normal(scale=2.0, size=(*shape, num_classes)).astype("float32")
    return labels, logits


def test_mean_over_non_ignored_pixels():
    labels, logits = _data()
    expected, _ = _pixel_losses(labels, logits)
    loss = losses.SegmentationCrossEntropy(ignore_index=IGNORE)
    assert float(loss(labels, logits)) == pytest.approx(expected.mean(), rel=1e-5)


def test_gradient_is_softmax_minus_one_hot_over_the_valid_pixels():
    import tensorflow as tf

    labels, logits = _data(2)
    logits[0, 0, 0] = [900.0, -900.0, 0.0, 3.0]  # far outside exp's range: still finite
    loss = losses.SegmentationCrossEntropy(ignore_index=IGNORE)
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = loss(labels, variable)
    gradient = tape.gradient(value, variable).numpy()
    valid = labels != IGNORE
    softmax = np.exp(_log_softmax(logits.astype(np.float64)))
    one_hot = np.eye(logits.shape[-1])[np.where(valid, labels, 0)]
    expected = np.where(valid[..., None], softmax - one_hot, 0.0) / valid.sum()
    np.testing.assert_allclose(gradient, expected, atol=1e-7)
    assert float(value) == pytest.approx(_pixel_losses(labels, logits)[0].mean(), rel=1e-5)


def test_ignored_pixels_do_not_change_the_loss():
    labels, logits = _data(1)
    loss = losses.SegmentationCrossEntropy(ignore_index=IGNORE)
    changed = logits.copy()
    changed[labels == IGNORE] = 1000.0  # whatever the network says there
    assert float(loss(labels, changed)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)


def test_all_ignored_gives_zero_not_nan():
    labels = np.full((1, 4, 4), IGNORE)
    logits = np.zeros((1, 4, 4, 3), "float32")
    assert float(losses.SegmentationCrossEntropy(IGNORE)(labels, logits)) == 0.0


def test_class_weights_give_the_weighted_mean():
    labels, logits = _data(2)
    weights = np.array([0.5, 2.0, 1.0, 3.0])
    pixel, classes = _pixel_losses(labels, logits)
    expected = np.sum(weights[classes] * pixel) / np.sum(weights[classes])
    loss = losses.SegmentationCrossEntropy(IGNORE, class_weights=weights)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("min_kept", [5, 60])
def test_ohem_keeps_hard_pixels_or_at_least_min_kept(min_kept):
    labels, logits = _data(3)
    pixel, _ = _pixel_losses(labels, logits)
    threshold = 0.7
    hard = pixel[pixel > -np.log(threshold)]
    if len(hard) >= min_kept:
        expected = hard.mean()
    else:
        expected = np.sort(pixel)[::-1][:min_kept].mean()
    loss = losses.SegmentationCrossEntropy(IGNORE, ohem_threshold=threshold, ohem_min_kept=min_kept)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    # with these settings the two branches are both exercised across the parametrisation
    assert (len(hard) >= min_kept) == (min_kept == 5)


def test_median_frequency_weights_hand_computed():
    # image A: 6 px of class 0, 2 px of class 1; image B: 4 px of class 0, 4 px of class 2.
    histograms = np.array([[6, 2, 0, 0], [4, 0, 4, 0]])
    # f0 = 10/16, f1 = 2/8, f2 = 4/8; class 3 never appears. median(f) = 1/2.
    weights = losses.median_frequency_weights(histograms)
    np.testing.assert_allclose(weights, [0.5 / (10 / 16), 0.5 / 0.25, 1.0, 0.0])


def test_class_histogram_skips_ignore_and_out_of_range():
    mask = np.array([[0, 1, 1, IGNORE], [2, 2, 2, 9]])
    np.testing.assert_array_equal(losses.class_histogram(mask, 3, IGNORE), [1, 2, 3])


def test_loss_survives_serialization():
    loss = losses.SegmentationCrossEntropy(11, class_weights=[1.0, 2.0], ohem_threshold=0.7)
    clone = losses.SegmentationCrossEntropy.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()


def test_log_frequency_weights_hand_computed():
    # 10 px of class 0, 2 of class 1, 4 of class 2, none of class 3: shares 10/16, 2/16, 4/16.
    histograms = np.array([[6, 2, 0, 0], [4, 0, 4, 0]])
    weights = losses.log_frequency_weights(histograms, c=1.10)
    expected = [1 / math.log(1.10 + share) for share in (10 / 16, 2 / 16, 4 / 16)] + [0.0]
    np.testing.assert_allclose(weights, expected)
    assert weights[1] > weights[2] > weights[0]  # rarer classes weigh more, up to 1/ln(c)
    with pytest.raises(ValueError, match="c must be above 1"):
        losses.log_frequency_weights(histograms, c=1.0)
