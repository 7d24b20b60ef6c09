import numpy as np
import pytest

from fastscnn_tf.data import synthetic


def _miou(pred, target, num_classes):
    ious = []
    for c in range(num_classes):
        union = np.sum((pred == c) | (target == c))
        if union:
            ious.append(np.sum((pred == c) & (target == c)) / union)
    return float(np.mean(ious))


def test_scene_is_a_function_of_seed_split_and_index():
    a_image, a_mask = synthetic.example(3, seed=0)
    b_image, b_mask = synthetic.example(3, seed=0)
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert not np.array_equal(a_image, synthetic.example(3, seed=1)[0])
    assert not np.array_equal(a_image, synthetic.example(3, seed=0, split="val")[0])
    assert not np.array_equal(a_image, synthetic.example(4, seed=0)[0])


def test_shapes_dtypes_and_label_range():
    image, mask = synthetic.example(0, size=(64, 96), num_classes=3)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 96) and mask.dtype == np.uint8
    masks = np.stack([synthetic.example(i, num_classes=3)[1] for i in range(20)])
    assert set(np.unique(masks)) == {0, 1, 2}
    with pytest.raises(ValueError, match="2..8 classes"):
        synthetic.example(0, num_classes=9)


def test_every_class_appears_and_background_does_not_dominate():
    masks = np.stack([synthetic.example(i)[1] for i in range(40)])
    counts = np.bincount(masks.ravel(), minlength=synthetic.MAX_CLASSES)
    assert np.all(counts > 0)
    assert counts[0] / counts.sum() < 0.8


def test_colour_alone_or_a_constant_does_not_solve_it():
    """A per-pixel nearest-mean-colour classifier (no texture, no shape) stays well below the
    0.8 mIoU a trained model must reach; predicting background everywhere scores near zero."""
    n = synthetic.MAX_CLASSES
    train = [synthetic.example(i) for i in range(30)]
    pixels = np.concatenate([im.reshape(-1, 3) for im, _ in train]).astype(np.float32)
    labels = np.concatenate([m.ravel() for _, m in train])
    means = np.stack([pixels[labels == c].mean(0) for c in range(n)])
    val = [synthetic.example(i, split="val") for i in range(15)]
    image = np.concatenate([im.reshape(-1, 3) for im, _ in val]).astype(np.float32)
    target = np.concatenate([m.ravel() for _, m in val])
    pred = np.argmin(((image[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert _miou(pred, target, n) < 0.7
    assert _miou(np.zeros_like(target), target, n) < 0.15


def test_class_names_and_colours_line_up():
    assert synthetic.class_names(4) == ("background", "disc", "box", "triangle")
    colors = synthetic.class_colors()
    assert len(colors) == synthetic.MAX_CLASSES == len(set(colors))
