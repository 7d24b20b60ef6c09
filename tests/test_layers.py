import keras
import numpy as np
import pytest
import tensorflow as tf

from fastscnn_tf.layers import AdaptiveAveragePooling, BatchNorm, ResizeLike, adaptive_bin_edges


def numpy_adaptive_avg_pool(x, bins):
    """Straight transcription of PyTorch's AdaptiveAvgPool2d: one mean per (i, j) rectangle."""
    n, h, w, c = x.shape
    out = np.zeros((n, bins, bins, c), np.float64)
    for i in range(bins):
        h0, h1 = (i * h) // bins, int(np.ceil((i + 1) * h / bins))
        for j in range(bins):
            w0, w1 = (j * w) // bins, int(np.ceil((j + 1) * w / bins))
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


def test_bin_edges_overlap_where_not_divisible():
    start, end = adaptive_bin_edges(16, 6)
    np.testing.assert_array_equal(start, [0, 2, 5, 8, 10, 13])
    np.testing.assert_array_equal(end, [3, 6, 8, 11, 14, 16])


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
@pytest.mark.parametrize("size", [(16, 32), (15, 23), (12, 15)])
def test_adaptive_pool_matches_numpy_static(bins, size):
    x = np.random.default_rng(0).normal(size=(2, *size, 5)).astype("float32")
    layer = AdaptiveAveragePooling(bins)
    np.testing.assert_allclose(layer(x), numpy_adaptive_avg_pool(x, bins), atol=1e-5)


def test_adaptive_pool_matches_numpy_dynamic_shape():
    layer = AdaptiveAveragePooling(6)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for size in [(16, 32), (13, 7)]:
        x = np.random.default_rng(1).normal(size=(1, *size, 3)).astype("float32")
        np.testing.assert_allclose(fn(x), numpy_adaptive_avg_pool(x, 6), atol=1e-5)


def test_resize_like_align_corners_keeps_corners():
    x = np.random.default_rng(2).normal(size=(1, 4, 5, 2)).astype("float32")
    like = np.zeros((1, 13, 17, 1), "float32")
    y = ResizeLike(align_corners=True)([x, like]).numpy()
    assert y.shape == (1, 13, 17, 2)
    for r, c in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        np.testing.assert_allclose(y[0, r, c], x[0, r, c], atol=1e-6)


def test_resize_like_half_pixel_matches_numpy_2x():
    # Half-pixel bilinear 2x upsampling of a row [a, b]: a, .75a+.25b, .25a+.75b, b.
    x = np.array([1.0, 5.0], "float32").reshape(1, 1, 2, 1)
    like = np.zeros((1, 1, 4, 1), "float32")
    y = ResizeLike()([x, like]).numpy().ravel()
    np.testing.assert_allclose(y, [1.0, 2.0, 4.0, 5.0], atol=1e-6)


def test_layers_config_round_trip():
    for layer in (AdaptiveAveragePooling(3, name="p"), ResizeLike(True, name="r")):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_object("fastscnn_tf>ResizeLike") is ResizeLike


@pytest.mark.parametrize("shape", [(2, 1, 8), (2, 4, 4), (3, 2, 4)])
def test_adaptive_pool_batched_global_average(shape):
    # Regression: TF 2.21's oneDNN BatchMatMul with a broadcast operand returned garbage here.
    n, h, w = shape
    x = np.random.default_rng(5).uniform(size=(n, h, w, 128)).astype("float32")
    got = AdaptiveAveragePooling(1)(x).numpy()
    np.testing.assert_allclose(got, x.mean(axis=(1, 2), keepdims=True), atol=1e-6)


def test_fused_batch_norm_trains_like_numpy_and_keras():
    """Training-mode output, gradients and moving statistics of the fused layer: against numpy
    (output, statistics) and Keras' own BatchNormalization (gradients)."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 5, 6, 8)).astype("float32")
    gamma, beta = rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.5, 8)
    mean0, var0 = rng.normal(0, 0.1, 8), rng.uniform(0.5, 1.5, 8)
    layers = []
    for cls in (BatchNorm, keras.layers.BatchNormalization):
        layer = cls(epsilon=1e-5, momentum=0.9)
        layer.build(x.shape)
        layer.set_weights([gamma, beta, mean0, var0])
        layers.append(layer)
    fused, reference = layers

    grads, outputs = [], []
    for layer in layers:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True)
            loss = tf.reduce_sum(y * tf.cos(tf.range(8, dtype="float32")))
        outputs.append(y.numpy())
        grads.append(tape.gradient(loss, [xt, layer.gamma, layer.beta]))

    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))  # biased, as Keras stores it
    expected = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(outputs[0], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.9 * mean0 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 * var0 + 0.1 * var, rtol=1e-5)
    for got, want in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-3, atol=1e-4)
    # Inference uses the moving statistics, exactly as Keras' layer does.
    np.testing.assert_allclose(
        fused(x, training=False).numpy(), reference(x, training=False).numpy(), atol=1e-5
    )
