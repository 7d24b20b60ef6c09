"""`fastscnn import-weights`: a reference-layout state dict lands in the right Keras weights."""

import os
import pathlib
import re
import sys

import keras
import numpy as np
import pytest

from fastscnn_tf import cli, weights
from fastscnn_tf.labels import CITYSCAPES, read_labels
from fastscnn_tf.model import IMAGENET_MEAN, IMAGENET_STD

DATA = pathlib.Path(__file__).parent / "data"
LAYOUT = DATA / "fast_scnn_pytorch_state_dict.txt"
ROOT = pathlib.Path(__file__).parents[1]


def read_layout(path=LAYOUT):
    """{key: shape} of the reference state dict, in file order."""
    layout = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            layout[key] = tuple(int(v) for v in re.findall(r"\d+", shape))
    return layout


def random_state_dict(seed=0, num_classes=19, aux=True):
    """Distinct random values for every tensor, so each Keras weight points to one source."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in read_layout().items():
        if key.startswith("auxlayer.") and not aux:
            continue
        if key.startswith(("classifier.conv.1.", "auxlayer.4.")):
            shape = (num_classes, *shape[1:])
        value = rng.standard_normal(shape).astype(np.float32) * 0.3
        if key.endswith("running_var"):
            value = np.abs(value) + 0.5
        state[key] = value
    return state


def torch_to_keras(value):
    """Independent of weights.py: 4-D conv (O, I, kh, kw) -> (kh, kw, I, O); depthwise
    (C, 1, kh, kw) -> (kh, kw, C, 1); vectors unchanged."""
    if value.ndim == 4 and value.shape[1] == 1 and value.shape[2:] == (3, 3):
        return np.transpose(value, (2, 3, 0, 1))
    if value.ndim == 4:
        return np.transpose(value, (2, 3, 1, 0))
    return value


@pytest.fixture(scope="module")
def state():
    return random_state_dict()


@pytest.fixture(scope="module")
def imported(state):
    return weights.import_state_dict(state, 19, aux=True)


def test_layout_file_is_the_reference():
    layout = read_layout()
    assert len(layout) == 231
    params = {k: np.prod(s) for k, s in layout.items() if "running_" not in k}
    assert sum(params.values()) == 1_157_174  # the counts stated in the file's header
    assert sum(v for k, v in params.items() if not k.startswith("auxlayer.")) == 1_138_051


def test_every_keras_weight_equals_its_transformed_source(state, imported):
    by_value = {torch_to_keras(v).tobytes(): k for k, v in state.items()}
    assert len(by_value) == len(state)
    source_of = {}
    for variable in imported.weights:
        value = np.asarray(variable.numpy())
        key = by_value.get(value.tobytes())
        assert key is not None, f"{variable.path} equals no transformed checkpoint tensor"
        source_of[variable.path] = key
    assert sorted(source_of.values()) == sorted(state)  # a bijection: nothing unused
    bn_names = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean"}
    bn_names["moving_variance"] = "running_var"
    for path, key in source_of.items():
        layer, name = path.split("/")
        if layer.endswith("_bn"):
            assert key.endswith("." + bn_names[name]), (path, key)
    # A few mappings written out by hand, the ones most easily got wrong.
    expected = {
        "ltd_conv/kernel": "learning_to_downsample.conv.conv.0.weight",
        "ltd_dsconv2_pw_bn/moving_variance": "learning_to_downsample.dsconv2.conv.4.running_var",
        "gfe_b2_1_dw/kernel": "global_feature_extractor.bottleneck2.0.block.1.conv.0.weight",
        "gfe_b3_3_project_bn/beta": "global_feature_extractor.bottleneck3.2.block.3.bias",
        "gfe_ppm_bin3_conv/kernel": "global_feature_extractor.ppm.conv3.conv.0.weight",
        "gfe_ppm_bin6_conv_bn/gamma": "global_feature_extractor.ppm.conv4.conv.1.weight",
        "gfe_ppm_out/kernel": "global_feature_extractor.ppm.out.conv.0.weight",
        "ffm_low_dw/kernel": "feature_fusion.dwconv.conv.0.weight",
        "ffm_low_conv/bias": "feature_fusion.conv_lower_res.0.bias",
        "ffm_high_bn/moving_mean": "feature_fusion.conv_higher_res.1.running_mean",
        "cls_dsconv1_pw/kernel": "classifier.dsconv1.conv.3.weight",
        "cls_conv/kernel": "classifier.conv.1.weight",
        "aux_conv/kernel": "auxlayer.0.weight",
        "aux_cls/bias": "auxlayer.4.bias",
    }
    assert {p: source_of[p] for p in expected} == expected


def test_ppm_concatenates_input_then_bins_in_reference_order(imported):
    # The reference concatenates [x, conv1(bin 1), conv2(2), conv3(3), conv4(6)]; gfe_ppm_out's
    # kernel rows only line up if the Keras concat has the same order.
    node = imported.get_layer("gfe_ppm_concat")._inbound_nodes[0]
    sources = [t._keras_history.operation.name for t in node.input_tensors]
    assert sources == ["gfe_b3_3_add", *(f"gfe_ppm_bin{b}_up" for b in (1, 2, 3, 6))]


def conv2d_nchw(x, weight, stride, padding, groups=1):
    """Plain numpy PyTorch conv2d (no bias): x (C, H, W), weight (O, C/groups, kh, kw)."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    out_c, in_per_group, kh, kw = weight.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (C, OH, OW, kh, kw)
    out_per_group = out_c // groups
    outputs = []
    for g in range(groups):
        xs = windows[g * in_per_group : (g + 1) * in_per_group]
        ws = weight[g * out_per_group : (g + 1) * out_per_group]
        outputs.append(np.einsum("chwij,ocij->ohw", xs, ws))
    return np.concatenate(outputs)


def bn_relu(x, state, prefix):
    scale = state[f"{prefix}.weight"] / np.sqrt(state[f"{prefix}.running_var"] + 1e-5)
    shift = state[f"{prefix}.bias"] - state[f"{prefix}.running_mean"] * scale
    return np.maximum(x * scale[:, None, None] + shift[:, None, None], 0)


def test_first_blocks_equal_numpy_conv_bn_relu(state, imported):
    rng = np.random.default_rng(1)
    # An odd-sized map after the unpadded first conv; the input itself a multiple of 32, so the
    # model runs it as it is (no alignment padding).
    image = rng.uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    probe = keras.Model(
        imported.input,
        [imported.get_layer(n).output for n in ("ltd_conv_relu", "ltd_dsconv1_dw_relu")],
    )
    got_conv, got_dw = (np.asarray(y)[0] for y in probe(image))

    x = (image[0] / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    x = x.transpose(2, 0, 1)
    ltd = "learning_to_downsample"
    conv = conv2d_nchw(x, state[f"{ltd}.conv.conv.0.weight"], stride=2, padding=0)
    conv = bn_relu(conv, state, f"{ltd}.conv.conv.1")
    dw = conv2d_nchw(conv, state[f"{ltd}.dsconv1.conv.0.weight"], stride=2, padding=1, groups=32)
    dw = bn_relu(dw, state, f"{ltd}.dsconv1.conv.1")

    assert got_conv.shape == (31, 47, 32)  # (64 - 3) // 2 + 1, no padding
    assert got_dw.shape == (16, 24, 32)  # PyTorch padding 1 on each side, stride 2
    np.testing.assert_allclose(got_conv, conv.transpose(1, 2, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_dw, dw.transpose(1, 2, 0), rtol=1e-4, atol=1e-4)


def test_unwrap_state_dict_wrappers_prefix_and_bn_counters(state):
    wrapped = {f"module.{k}": v for k, v in state.items()}
    wrapped["module.auxlayer.1.num_batches_tracked"] = np.array(7)
    for checkpoint in ({"state_dict": wrapped}, {"model": wrapped, "epoch": 3}, wrapped):
        flat = weights.unwrap_state_dict(checkpoint)
        assert sorted(flat) == sorted(state)
        np.testing.assert_array_equal(flat["auxlayer.4.bias"], state["auxlayer.4.bias"])
    with pytest.raises(ValueError, match="state dict"):
        weights.unwrap_state_dict([1, 2])


def test_one_error_lists_missing_unexpected_and_misshaped(state):
    broken = dict(state)
    del broken["feature_fusion.dwconv.conv.1.running_var"]
    del broken["global_feature_extractor.ppm.conv4.conv.0.weight"]
    broken["decoder.head.weight"] = np.zeros(3, np.float32)
    broken["classifier.conv.1.bias"] = np.zeros(11, np.float32)
    with pytest.raises(ValueError) as info:
        weights.import_state_dict(broken, 19, aux=True)
    message = str(info.value)
    for text in (
        "missing from the checkpoint (2)",
        "feature_fusion.dwconv.conv.1.running_var",
        "global_feature_extractor.ppm.conv4.conv.0.weight",
        "unexpected in the checkpoint (1)",
        "decoder.head.weight",
        "wrong shape (1)",
        "classifier.conv.1.bias: checkpoint (11,), model expects (19,)",
    ):
        assert text in message


def test_aux_flags(state):
    no_aux = {k: v for k, v in state.items() if not k.startswith("auxlayer.")}
    with pytest.raises(ValueError, match=r"(?s)missing.*auxlayer\.0\.weight"):
        weights.import_state_dict(no_aux, 19, aux=True)
    with pytest.raises(ValueError, match=r"(?s)unexpected.*auxlayer\.4\.bias.*drop_aux=True"):
        weights.import_state_dict(state, 19)
    model = weights.import_state_dict(state, drop_aux=True)  # classes read from the checkpoint
    assert model.output_shape == (None, None, None, 19)


def test_cli_imports_npz_and_reports_errors(tmp_path, state, imported, capsys):
    checkpoint = tmp_path / "reference.npz"
    np.savez(checkpoint, **{f"module.{k}": v for k, v in state.items()})
    output = tmp_path / "out" / "model.keras"
    argv = ["import-weights", str(checkpoint), "--output", str(output), "--aux"]
    assert not cli.main([*argv, "--num-classes", "19"])
    assert sorted(p.name for p in output.parent.iterdir()) == ["model.keras", "model.labels.txt"]
    # --labels auto, 19 classes
    assert read_labels(output.parent / "model.labels.txt") == CITYSCAPES
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    loaded = keras.saving.load_model(output)
    image = np.random.default_rng(2).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    for got, want in zip(loaded(image), imported(image), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    assert loaded.get_layer("logits_up").align_corners  # then "logits" crops the padding

    assert cli.main([*argv, "--num-classes", "11"]) == 2
    assert "classifier.conv.1.weight: checkpoint (19, 128, 1, 1)" in capsys.readouterr().err
    assert cli.main(["import-weights", str(tmp_path / "nope.pth")]) == 2
    assert "nope.pth: no such file" in capsys.readouterr().err
    assert cli.main(["import-weights", str(checkpoint), "--output", str(tmp_path / "m.h5")]) == 2
    assert "must end in .keras" in capsys.readouterr().err
    assert cli.main([*argv, "--labels", "camvid"]) == 2
    assert "--labels camvid: 11 classes, the checkpoint has 19" in capsys.readouterr().err


def test_pth_without_torch_says_how_to_install(tmp_path, monkeypatch):
    checkpoint = tmp_path / "fast_scnn_citys.pth"
    checkpoint.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ValueError, match=r"needs torch: pip install 'fastscnn-tf\[torch\]'"):
        weights.read_checkpoint(str(checkpoint))


@pytest.mark.slow
def test_imported_pth_matches_pytorch_reference(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # 2 spinning OpenMP threads crawl when the cores are shared
    from fastscnn_tf import torch_reference as reference

    model = reference.randomize(reference.FastSCNN(19, aux=True), seed=3)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: s for k, s in layout.items() if "num_batches" not in k} == read_layout()

    checkpoint = tmp_path / "reference.pth"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    output = tmp_path / "imported.keras"
    assert not cli.main(["import-weights", str(checkpoint), "--aux", "--output", str(output)])
    imported = keras.saving.load_model(output)

    # 128x256: the 1/32 map is 4x8, so the PPM's 3 and 6 bins overlap (adaptive pooling edges).
    # Batch 1: TF 2.21's oneDNN BatchMatMul breaks AdaptiveAveragePooling(1) at batch > 1 (the
    # lead's layers.py issue, tested there); this test is about the imported weights.
    images = np.random.default_rng(4).uniform(0, 255, (1, 128, 256, 3)).astype(np.float32)
    with torch.inference_mode():
        expected = [y.permute(0, 2, 3, 1).numpy() for y in model(reference.normalize(images))]
    got = [np.asarray(y) for y in imported(images)]
    for g, e in zip(got, expected, strict=True):
        assert np.abs(e).max() > 1.0  # activations neither died nor vanished
        np.testing.assert_allclose(g, e, atol=2e-3, rtol=0)  # logits up to ~13; measured 1e-4

    # CamVid's 360x480: the reference's fixed x4 upsampling of the 1/32 map (12x15 -> 48x60)
    # misses the 1/8 map (45x60); the Keras model resizes to the map it is fused with.
    with torch.inference_mode(), pytest.raises(RuntimeError, match="size of tensor"):
        model(torch.zeros(1, 3, 360, 480))
    camvid = imported(np.zeros((1, 360, 480, 3), np.float32))
    assert [tuple(y.shape) for y in camvid] == [(1, 360, 480, 19)] * 2
