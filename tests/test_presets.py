"""The shipped CamVid preset: found by name, loaded from the package, usable by every command."""

import fnmatch
import json
import os

import numpy as np
import pytest
import tomllib
from PIL import Image

import fastscnn_tf
from fastscnn_tf import cli, presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(presets.ROOT, "camvid", "samples")


def _sample():
    return os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[0])


def test_names_resolve_to_the_shipped_files(tmp_path, monkeypatch):
    assert "camvid" in presets.names()
    assert presets.resolve_model("camvid").endswith(os.path.join("camvid", "camvid.keras"))
    assert presets.resolve_model("camvid:int8").endswith("camvid_int8.tflite")
    assert presets.resolve_model("camvid", "int8") == presets.resolve_model("camvid:int8")
    assert presets.resolve_model("runs/x/model.keras") == "runs/x/model.keras"
    for kind in ("float", "int8"):
        assert os.path.isfile(presets.path("camvid", kind))
    with pytest.raises(ValueError, match=r"unknown preset 'cityscapes' \(available: camvid"):
        presets.path("cityscapes")
    with pytest.raises(ValueError, match="unknown preset variant 'fp16'"):
        presets.resolve_model("camvid:fp16")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "camvid").mkdir()  # a CamVid data folder beside the user's commands
    assert presets.resolve_model("camvid").endswith(os.path.join("camvid", "camvid.keras"))
    assert presets.resolve_model("./camvid") == "./camvid"  # a path says so with a '/'
    assert presets.resolve_model(tmp_path / "camvid") == tmp_path / "camvid"


def test_the_app_ships_the_preset_int8_model_and_labels():
    assets = os.path.join(ROOT, "android_demo", "app", "src", "main", "assets")
    for asset, preset_file in (("fastscnn_int8.tflite", "camvid_int8.tflite"),
                               ("labels.txt", "labels.txt")):  # fmt: skip
        with open(os.path.join(assets, asset), "rb") as a:
            with open(os.path.join(presets.ROOT, "camvid", preset_file), "rb") as b:
                assert a.read() == b.read(), asset


def test_the_package_data_patterns_ship_every_preset_file():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["fastscnn_tf.presets"]
    for folder, _, files in os.walk(presets.ROOT):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), presets.ROOT)
            if name.endswith(".py") or "__pycache__" in relative:
                continue
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_from_preset_float_agrees_with_the_int8_model_on_a_street_photo():
    from ai_edge_litert.interpreter import Interpreter

    model = fastscnn_tf.FastSCNN.from_preset("camvid")
    info = presets.info("camvid")
    photo = Image.open(_sample()).convert("RGB")
    assert photo.size == (480, 360)
    # Both read the photo at the preset's scale: the int8 model's input size is that size.
    h, w = info["input_size"]
    assert (h, w) == (round(360 * info.get("scale", 1)), round(480 * info.get("scale", 1)))
    image = np.asarray(photo.resize((w, h), Image.BILINEAR))
    float_classes = np.argmax(model.predict(image[None].astype("float32"), verbose=0)[0], -1)

    interpreter = Interpreter(model_path=presets.path("camvid", "int8"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    mask = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    assert mask.shape == (h, w) and model.output_shape[-1] == 11
    assert np.mean(mask == float_classes) > 0.95
    # A street scene: road (3) and building (1) are both found.
    assert {1, 3} <= set(np.unique(float_classes).tolist())


def test_predict_without_model_uses_the_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["predict", _sample(), "--out", "out", "--max-size", "240"]) == 0
    assert "camvid.keras" in capsys.readouterr().out
    stem = os.path.splitext(os.path.basename(_sample()))[0]
    written = sorted(os.listdir(tmp_path / "out"))
    assert any(name.startswith(stem) and "overlay" in name for name in written), written


def test_presets_command_and_evaluate_by_name(tmp_path, capsys):
    assert cli.main(["presets"]) == 0
    assert "camvid" in capsys.readouterr().out
    assert cli.main(["presets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    scale = listed[0].get("scale", 1)  # the int8 model reads CamVid's frames at that scale
    assert listed[0]["num_classes"] == 11
    assert listed[0]["input_size"] == [round(360 * scale), round(480 * scale)]

    # A small folder in CamVid's layout (11 classes, void 11), made here.
    rng = np.random.default_rng(0)
    for split in ("val",):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        Image.open(_sample()).resize((160, 120)).save(tmp_path / split / "a.png")
        Image.fromarray(rng.integers(0, 12, (120, 160), dtype=np.uint8)).save(
            tmp_path / f"{split}annot" / "a.png"
        )
    argv = ["evaluate", "--model", "camvid:int8", "--dataset", f"folder:{tmp_path}",
            "--split", "val", "--out", str(tmp_path / "eval")]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads((tmp_path / "eval" / "camvid_int8.val.eval.json").read_text())
    assert report["model"] == "camvid:int8" and len(report["classes"]) == 11
