import numpy as np
import pytest

from fastscnn_tf import metrics

IGNORE = 255


def _reference(labels, predictions, num_classes, ignore_index):
    """Per-class IoU and pixel accuracy by counting, one class at a time."""
    labels, predictions = labels.ravel(), predictions.ravel()
    valid = labels != ignore_index
    ious = []
    for c in range(num_classes):
        tp = np.sum(valid & (labels == c) & (predictions == c))
        fp = np.sum(valid & (labels != c) & (predictions == c))
        fn = np.sum(valid & (labels == c) & (predictions != c))
        ious.append(tp / (tp + fp + fn) if tp + fp + fn else np.nan)
    accuracy = np.sum(valid & (labels == predictions)) / np.sum(valid)
    return np.array(ious), float(np.nanmean(ious)), float(accuracy)


def _batch(rng, num_classes, shape=(2, 9, 11)):
    labels = rng.integers(0, num_classes, shape)
    labels[rng.random(shape) < 0.2] = IGNORE
    # Predictions agree with the labels most of the time, so IoUs are far from 0 and 1.
    predictions = np.where(rng.random(shape) < 0.6, labels, rng.integers(0, num_classes, shape))
    predictions = np.where(predictions == IGNORE, 0, predictions)
    return labels, predictions


def _logits(predictions, num_classes, rng):
    logits = rng.normal(size=(*predictions.shape, num_classes)).astype("float32")
    np.put_along_axis(logits, predictions[..., None], 10.0, axis=-1)
    return logits


def test_streaming_metrics_equal_numpy_over_batches():
    rng = np.random.default_rng(0)
    num_classes = 5
    miou = metrics.MeanIoU(num_classes, IGNORE)
    accuracy = metrics.PixelAccuracy(num_classes, IGNORE)
    all_labels, all_predictions = [], []
    for _ in range(3):
        labels, predictions = _batch(rng, num_classes)
        logits = _logits(predictions, num_classes, rng)
        miou.update_state(labels, logits)
        accuracy.update_state(labels, logits)
        all_labels.append(labels)
        all_predictions.append(predictions)
    _, expected_miou, expected_accuracy = _reference(
        np.concatenate(all_labels), np.concatenate(all_predictions), num_classes, IGNORE
    )
    assert float(miou.result()) == pytest.approx(expected_miou, rel=1e-6)
    assert float(accuracy.result()) == pytest.approx(expected_accuracy, rel=1e-6)
    miou.reset_state()
    assert float(miou.result()) == 0.0


def test_class_absent_everywhere_is_left_out_of_the_mean():
    # Class 2 is neither labelled nor predicted: the mean runs over classes 0 and 1 only.
    labels = np.array([[0, 0, 1, 1, IGNORE]])
    predictions = np.array([[0, 1, 1, 1, 2]])  # the prediction under IGNORE does not count
    metric = metrics.MeanIoU(3, IGNORE)
    metric.update_state(labels, predictions)
    # class 0: tp 1, fn 1 -> 1/2; class 1: tp 2, fp 1 -> 2/3
    assert float(metric.result()) == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-6)
    result = metrics.scores(metrics.confusion_matrix(labels, predictions, 3, IGNORE))
    np.testing.assert_allclose(result["iou"][:2], [1 / 2, 2 / 3])
    assert np.isnan(result["iou"][2])
    assert result["pixel_accuracy"] == pytest.approx(3 / 4)


def test_numpy_confusion_matrix_and_scores_equal_reference():
    rng = np.random.default_rng(1)
    labels, predictions = _batch(rng, 4, (3, 16, 16))
    confusion = metrics.confusion_matrix(labels, predictions, 4, IGNORE)
    assert confusion.sum() == np.sum(labels != IGNORE)
    for t in range(4):
        for p in range(4):
            assert confusion[t, p] == np.sum((labels == t) & (predictions == p))
    result = metrics.scores(confusion)
    ious, miou, accuracy = _reference(labels, predictions, 4, IGNORE)
    np.testing.assert_allclose(result["iou"], ious)
    assert result["miou"] == pytest.approx(miou)
    assert result["pixel_accuracy"] == pytest.approx(accuracy)


def test_ignore_index_inside_label_range_of_uint8_masks():
    # CamVid ignores 11 with 11 classes (0..10): 11 must not count as a class.
    labels = np.array([[11, 3, 3]], np.uint8)
    predictions = np.array([[3, 3, 0]])
    confusion = metrics.confusion_matrix(labels, predictions, 11, ignore_index=11)
    assert confusion.sum() == 2 and confusion[3, 3] == 1 and confusion[3, 0] == 1
