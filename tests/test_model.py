import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from fastscnn_tf.cli.summary import SummaryConfig, summarize
from fastscnn_tf.complexity import count_macs, count_params
from fastscnn_tf.model import FastSCNN

from helpers import randomize_batchnorm


@pytest.fixture(scope="module")
def dynamic_model():
    return FastSCNN(19, aux=True, aux2=True)


def test_trainable_parameters_match_reference():
    # Counts of the reference PyTorch implementation (shared/reference state-dict).
    assert count_params(FastSCNN(19)) == 1_138_051
    assert count_params(FastSCNN(19, aux=True)) == 1_157_174


@pytest.mark.parametrize(
    "size", [(256, 512), (360, 480), (512, 1024), (1024, 2048), (97, 131), (64, 64)]
)
def test_output_shape_at_any_size(size):
    model = FastSCNN(5, input_shape=(*size, 3))
    assert model(np.zeros((1, *size, 3), "float32")).shape == (1, *size, 5)


def test_dynamic_input_and_aux_outputs(dynamic_model):
    for size in [(96, 128), (131, 97)]:
        main, aux, aux2 = dynamic_model(np.zeros((2, *size, 3), "float32"))
        assert main.shape == aux.shape == aux2.shape == (2, *size, 19)
    assert dynamic_model.output_names == ["logits", "aux_logits", "aux2_logits"]


def test_batch_elements_are_independent():
    # Regression: a broadcast BatchMatMul in pyramid pooling gave garbage for batch > 1 under
    # TF's oneDNN kernels; each sample must equal the same sample run alone.
    model = FastSCNN(5, include_preprocessing=True)
    randomize_batchnorm(model)
    x = np.random.default_rng(4).uniform(0, 255, (3, 64, 96, 3)).astype("float32")
    together = model(x).numpy()
    for i in range(3):
        np.testing.assert_allclose(together[i], model(x[i : i + 1]).numpy()[0], atol=1e-4)


def test_outputs_depend_on_aux_flags():
    assert len(FastSCNN(3, aux=True).outputs) == 2
    assert len(FastSCNN(3, aux2=True).outputs) == 2
    assert len(FastSCNN(3).outputs) == 1


def test_too_small_input_is_rejected():
    with pytest.raises(ValueError, match="at least 64x64"):
        FastSCNN(3, input_shape=(32, 256, 3))


def test_reference_structure_details():
    model = FastSCNN(19)
    # The first conv has no padding, as the reference: 1024 -> 511 -> 256 -> 128.
    assert model.get_layer("ltd_conv").output.shape[1] is None
    static = FastSCNN(19, input_shape=(1024, 2048, 3))
    assert static.get_layer("ltd_conv").output.shape[1:3] == (511, 1023)
    assert static.get_layer("ltd_dsconv2_pw_relu").output.shape[1:3] == (128, 256)
    assert static.get_layer("gfe_ppm_out_relu").output.shape[1:] == (32, 64, 128)
    # Residuals only where stride is 1 and channels match.
    adds = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)}
    assert adds == {
        "gfe_b1_2_add", "gfe_b1_3_add", "gfe_b2_2_add", "gfe_b2_3_add",
        "gfe_b3_2_add", "gfe_b3_3_add", "ffm_add",
    }  # fmt: skip
    assert model.get_layer("ffm_low_conv").use_bias and model.get_layer("cls_conv").use_bias
    assert not model.get_layer("ltd_conv").use_bias
    bn = model.get_layer("ltd_conv_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


def test_stride2_padding_matches_pytorch():
    # PyTorch pads stride-2 3x3 convs by one pixel on every side: output pixel (0, 0) of a
    # depthwise conv with an all-ones kernel sums the 2x2 top-left corner only.
    model = FastSCNN(2, input_shape=(64, 64, 3), include_preprocessing=False)
    dw = model.get_layer("ltd_dsconv1_dw")
    sub = keras.Model(model.get_layer("ltd_dsconv1_pad").input, dw.output)
    dw.set_weights([np.ones_like(dw.get_weights()[0])])
    x = np.arange(31 * 31 * 32, dtype="float32").reshape(1, 31, 31, 32) % 7
    y = sub(x).numpy()
    np.testing.assert_allclose(y[0, 0, 0], x[0, :2, :2].sum(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(y[0, 1, 1], x[0, 1:4, 1:4].sum(axis=(0, 1)), rtol=1e-6)


def test_preprocessing_is_imagenet_normalisation():
    model = FastSCNN(2, input_shape=(64, 64, 3))
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    y = model.get_layer("preprocess")(x).numpy()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(y, (x / 255.0 - mean) / std, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    model = FastSCNN(4, aux=True)
    randomize_batchnorm(model)
    x = np.random.default_rng(1).uniform(0, 255, (1, 96, 160, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(model(x), loaded(x), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_config_round_trip():
    model = FastSCNN(4, align_corners=True)
    randomize_batchnorm(model)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(2).uniform(0, 255, (1, 97, 131, 3)).astype("float32")
    np.testing.assert_allclose(model(x), clone(x), atol=1e-5)
    assert clone.get_layer("ffm_up").align_corners


def test_no_lambda_layers():
    model = FastSCNN(19, aux=True, aux2=True)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_tflite_float32_matches_keras_at_512x1024():
    size = (512, 1024)
    model = FastSCNN(19, input_shape=(*size, 3))
    randomize_batchnorm(model)
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, *size, 3), tf.float32))
    # No trackable object: the converter then freezes Keras 3 variables into constants
    # (with one it keeps them as resource variables, which the interpreter reads as NaN).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(name.startswith("Flex") or name == "CUSTOM" for name in ops), ops
    x = np.random.default_rng(3).uniform(0, 255, (1, *size, 3)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


def test_macs_and_summary():
    # Hand count for the first conv at 1024x2048: 511*1023 outputs x 32 filters x 27 MACs.
    model = FastSCNN(19, input_shape=(1024, 2048, 3))
    ltd = model.get_layer("ltd_conv")
    from fastscnn_tf.complexity import layer_macs

    assert layer_macs(ltd) == 511 * 1023 * 32 * 27
    assert 6.5e9 < count_macs(model) < 7.0e9
    text = summarize(SummaryConfig(num_classes=19, size=(256, 512)))
    assert "1,138,051" in text and "gfe_ppm_bin6_pool" in text


def test_unaligned_input_runs_as_its_padded_aligned_version():
    """A size that is not a multiple of 32 gives exactly the padded (zeros, bottom/right)
    aligned run cropped back; without the padding the output differs (the streams meet off
    the grid the network was trained on)."""
    aligned = FastSCNN(5)
    randomize_batchnorm(aligned)
    plain = FastSCNN(5, align=0)
    plain.set_weights(aligned.get_weights())
    image = np.random.default_rng(0).uniform(0, 255, (2, 100, 140, 3)).astype("float32")
    padded = np.pad(image, ((0, 0), (0, 28), (0, 20), (0, 0)))
    expected = plain(padded).numpy()[:, :100, :140]
    np.testing.assert_allclose(aligned(image).numpy(), expected, atol=1e-4)
    static = FastSCNN(5, input_shape=(100, 140, 3))
    static.set_weights(aligned.get_weights())
    np.testing.assert_allclose(static(image).numpy(), expected, atol=1e-4)
    # Far beyond float rounding (the padded run above agrees to 1e-4 of a unit).
    assert np.abs(plain(image).numpy() - expected).max() > 0.02 * np.abs(expected).max()
    # Aligned sizes run as they are: no pad, no crop.
    names = {layer.name for layer in FastSCNN(5, input_shape=(96, 128, 3)).layers}
    assert "align_pad" not in names and "logits_up" not in names


def test_init_like_pytorch_draws_as_the_reference_does():
    """Every conv weight against PyTorch's own default draw of the same reference weight:
    the same uniform range (largest |w| within a few %, as both sides draw hundreds of values)
    and the same spread; Keras' glorot draws depthwise kernels far smaller."""
    torch = pytest.importorskip("torch")
    from fastscnn_tf import torch_reference
    from fastscnn_tf.model import init_like_pytorch
    from fastscnn_tf.weights import weight_plan

    torch.manual_seed(0)
    state = torch_reference.FastSCNN(11, aux=True).state_dict()
    model = FastSCNN(11, aux=True)
    glorot = model.get_layer("gfe_b3_1_dw").kernel.numpy()
    init_like_pytorch(model, seed=0)
    checked = 0
    for key, variable, _ in weight_plan(model):
        kind = variable.path.rsplit("/", 1)[-1]
        ours, theirs = variable.numpy(), state[key].numpy()
        if kind == "bias":  # a handful of values: inside PyTorch's range for that conv
            fan_in = state[key.replace(".bias", ".weight")][0].numel()
            assert np.abs(ours).max() <= fan_in**-0.5, key
        elif kind == "kernel":
            assert ours.size == theirs.size, key
            assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.05), key
            assert ours.std() == pytest.approx(theirs.std(), rel=0.2), key
            checked += 1
    assert checked > 40
    dw = model.get_layer("gfe_b3_1_dw").kernel.numpy()
    assert np.abs(dw).max() > 5 * np.abs(glorot).max()  # 1/3 against glorot's sqrt(6/3465)
