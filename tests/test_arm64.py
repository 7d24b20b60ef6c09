"""The phone's kernels: the models on ARM64 LiteRT (qemu-aarch64, one CPU model per XNNPACK
kernel family) give the x86 masks pixel for pixel, and the LiteRT the app pins runs every
exported variant. `bash tflite/arm64/setup.sh` prepares the emulation (`make test` runs it);
`make arm64-test` runs the whole matrix with the builtin-kernel figures (tflite/arm64/check.py).
"""

import os

import keras
import numpy as np
import pytest

from fastscnn_tf import modelfile

from helpers import load_script

check = load_script("tflite/arm64/check.py")
SIZE = check.PRESET_SIZE  # the preset's input: every model takes the same decoded images
SMALL = (64, 96)


@pytest.fixture(scope="module", autouse=True)
def arm64():
    reason = check.ready()
    if reason and os.environ.get("CI"):
        pytest.fail(f"the ARM64 check cannot run in CI: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def preset_model():
    return modelfile.load_keras_model(check.PRESET.parent / "camvid.keras")


@pytest.fixture(scope="module")
def models(preset_model, tmp_path_factory):
    """The shipped int8 preset, and the preset freshly exported as int8 and as float32."""
    folder = tmp_path_factory.mktemp("arm64")
    fresh = {name: check.VARIANTS[name] for name in ("int8_mask", "float32_mask")}
    calibration = check.synthetic_images(4, SIZE)
    return {
        "preset_int8": str(check.PRESET),
        **check.export_variants(preset_model, folder, SIZE, calibration, fresh),
    }


def test_masks_equal_x86_on_every_kernel_family(models):
    targets = [check.Target(cpu) for cpu in check.CPUS]
    shares = check.compare(targets, check.synthetic_images(1, SIZE), models)
    for target in targets:
        assert shares[target] == dict.fromkeys(models, 0.0), target.label


def test_app_litert_runs_every_exported_variant(preset_model, tmp_path):
    """LiteRT 1.4.0 (the app pins 1.4.1) loads and runs every variant the exporter makes."""
    paths = check.export_variants(preset_model, tmp_path, SMALL, check.synthetic_images(4, SMALL))
    target = check.Target("cortex-a76", litert=check.APP_LITERT)
    shares = check.compare([target], check.synthetic_images(2, SMALL), paths)[target]
    assert set(shares) == set(check.VARIANTS)
    for name, share in shares.items():
        limit = 0.05 if name in check.UNJUDGED else 0.0  # run-time activation quantization
        assert share <= limit, name


def test_a_changed_model_fails_the_comparison(models, preset_model, tmp_path):
    """The check sees a difference: the ARM64 side gets a model whose classifier favours one
    class a little more."""
    changed = keras.models.clone_model(preset_model)
    changed.set_weights(preset_model.get_weights())
    classifier = changed.get_layer("cls_conv")
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel, bias + np.eye(len(bias), dtype=bias.dtype)[1] * 0.5])
    paths = check.export_variants(
        changed, tmp_path, SIZE, check.synthetic_images(4, SIZE), {"m": check.VARIANTS["int8_mask"]}
    )
    images = tmp_path / "images.npy"
    np.save(images, check.synthetic_images(1, SIZE))
    x86 = check.run_masks(check.Target(), images, {"m": models["int8_mask"]}, tmp_path)
    arm = check.run_masks(check.Target("cortex-a53"), images, paths, tmp_path)
    assert np.mean(x86["m"] != arm["m"]) > 0.001
