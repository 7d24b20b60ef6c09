"""The CamVid preset's training campaign (`benchmarks/camvid_campaign.py`, issue #22) on a tiny
generated CamVid: cycle 1 trains both chains from scratch and ships a preset folder whose
held-out figure is the held-out chain's score on the sequence it never saw; cycle 2 starts
each chain from the files cycle 1 committed."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import ROOT, load_script, write_tiny_camvid

pytestmark = pytest.mark.slow
STEMS = {"train": ["0001TP_1", "0006R0_1", "0006R0_2", "0016E5_1"], "val": ["0016E5_9"]}


def _miou(model_path, root, stems, scale=1):
    """mIoU of a .keras model on images of `root/train`, in numpy (void 11 ignored); at
    `scale`, each image is resized bilinearly (to uint8) and the logits back."""
    model = keras.models.load_model(model_path, compile=False)
    confusion = np.zeros((11, 11), np.int64)
    for stem in stems:
        image = np.asarray(Image.open(root / "train" / f"{stem}.png"), np.float32)[None]
        mask = np.asarray(Image.open(root / "trainannot" / f"{stem}.png"))
        h, w = mask.shape
        if scale != 1:
            image = np.clip(np.round(tf.image.resize(image, (h * scale, w * scale))), 0, 255)
        logits = tf.image.resize(model.predict(image, verbose=0), (h, w))[0]
        predicted, mask = np.argmax(logits, -1).ravel(), mask.ravel()
        keep = mask < 11
        np.add.at(confusion, (mask[keep], predicted[keep]), 1)
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    present = union > 0  # a class neither labelled nor predicted has no IoU
    return float(np.mean(np.diag(confusion)[present] / union[present]))


def test_two_cycles_ship_a_preset_and_continue_from_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    campaign = load_script("benchmarks/camvid_campaign.py")
    write_tiny_camvid(tmp_path / "camvid", STEMS)
    preset = tmp_path / "preset"
    common = [
        "--steps", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--crop", "64x64",
        "--data", str(tmp_path / "camvid"), "--preset-dir", str(preset), "--nice", "0",
    ]  # fmt: skip
    ship = "--size 64x96 --no-latency --no-golden"
    assert campaign.main([*common, "--from-scratch", "--out", str(tmp_path / "c1"),
                          "--ship-args", ship]) == 0  # fmt: skip

    for name in ("camvid.keras", "camvid_int8.tflite", "labels.txt", "MODEL_CARD.md",
                 "campaign/holdout-0006R0.keras"):  # fmt: skip
        assert (preset / name).is_file(), name
    (cycle,) = json.loads((preset / "campaign.json").read_text())["cycles"]
    assert cycle["cycle"] == 1 and cycle["steps"] == 2 and cycle["init_from"] == ""
    assert "train[-0006R0]+val" in cycle["holdout_command"]
    info = json.loads((preset / "preset.json").read_text())
    held_out = _miou(preset / "campaign" / "holdout-0006R0.keras", tmp_path / "camvid",
                     ["0006R0_1", "0006R0_2"])  # fmt: skip
    assert info["float"] == pytest.approx(100 * held_out, abs=0.01)
    # The shipped model is the preset chain's last checkpoint, unchanged.
    shipped = keras.models.load_model(preset / "camvid.keras", compile=False).get_weights()
    last = keras.models.load_model(tmp_path / "c1" / "preset" / "model.keras", compile=False)
    for a, b in zip(shipped, last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert cycle["crop"] == "64x64"
    assert "| 1 |" in (preset / "MODEL_CARD.md").read_text()
    assert "(64x64 crops)" in (preset / "MODEL_CARD.md").read_text()
    assert "random scale 0.5-2.0 with" in (preset / "MODEL_CARD.md").read_text()
    assert 0 <= cycle["holdout_tta"] <= 100 and cycle["tta"] == "--scales 1,1.25,1.5,2 --flip"
    assert "| float, `--scales 1,1.25,1.5,2 --flip` |" in (preset / "MODEL_CARD.md").read_text()

    # Cycle 2 starts each chain from what cycle 1 left in the preset folder, seed 1, trains
    # for frames at twice the size and ships a preset that reads images at 2x.
    ship = "--size 128x192 --scale 2 --no-latency --no-golden --no-tta"
    assert campaign.main([*common, "--out", str(tmp_path / "c2"), "--ship-args", ship,
                          "--scale-range", "1.0,4.0"]) == 0  # fmt: skip
    for chain, start in (("preset", "camvid.keras"),
                         ("holdout", "campaign/holdout-0006R0.keras")):  # fmt: skip
        config = json.loads((tmp_path / "c2" / chain / "config.json").read_text())
        assert config["init_from"] == str(preset / start) and config["seed"] == 1
        assert config["scale_range"] == [1.0, 4.0]
    info = json.loads((preset / "preset.json").read_text())
    assert info["scale"] == 2 and info["input_size"] == [128, 192]
    cycles = json.loads((preset / "campaign.json").read_text())["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2] and cycles[1]["scale"] == 2
    held_out = _miou(preset / "campaign" / "holdout-0006R0.keras", tmp_path / "camvid",
                     ["0006R0_1", "0006R0_2"], scale=2)  # fmt: skip
    assert info["float"] == pytest.approx(100 * held_out, abs=0.01)
    card = (preset / "MODEL_CARD.md").read_text()
    assert "reads every image at 2x its size" in card and '"train[0006R0]" --scales 2' in card


def test_a_cycle_goes_on_with_the_last_recipe_and_ships_at_the_scale_it_trained_for(
    monkeypatch,
):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    campaign = load_script("benchmarks/camvid_campaign.py")
    last = {"command": "fastscnn train --crop 360x480 --scale-range 1.0,4.0 --seed 3"}
    assert campaign.recipe_defaults([last], None, None) == ("360x480", "1.0,4.0")
    assert campaign.recipe_defaults([last], "320x320", "0.5,2.0") == ("320x320", "0.5,2.0")
    assert campaign.recipe_defaults([], None, None) == ("320x320", "0.5,2.0")
    assert campaign.ship_options("1.0,4.0", []) == ["--scale", "2", "--size", "720x960"]
    assert campaign.ship_options("0.75,3.0", ["--no-tta"]) == [
        "--no-tta", "--scale", "1.5", "--size", "540x720"
    ]  # fmt: skip
    assert campaign.ship_options("0.5,2.0", ["--no-tta"]) == ["--no-tta"]
    given = ["--size", "128x192", "--scale", "2"]  # given: kept as it is
    assert campaign.ship_options("1.0,4.0", given) == given


def test_cycles_recorded_before_the_crop_field_name_it_in_their_command():
    preset = load_script("benchmarks/camvid_preset.py")
    old = {"command": "fastscnn train --batch-size 8 --crop 320x320 --aux2"}
    assert preset.cycle_crop(old) == "320x320"
    assert preset.cycle_crop({**old, "crop": "360x480"}) == "360x480"
    assert preset.command_option(old, "--batch-size") == "8"


def test_protocol_holds_out_the_sequence_the_project_holds_out(tmp_path):
    """`camvid_protocol.py --holdout SEQ` trains the reference on the files that the project's
    `--split 'train[-SEQ]'` reads and evaluates both on those of `train[SEQ]`."""
    from fastscnn_tf.data import folder

    protocol = load_script("benchmarks/camvid_protocol.py")
    for split, stems in STEMS.items():
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for stem in stems:
            Image.new("RGB", (4, 4)).save(tmp_path / split / f"{stem}.jpg")
            Image.new("L", (4, 4)).save(tmp_path / f"{split}annot" / f"{stem}.png")

    def files(split):
        return sorted(str(image) for image, _ in folder.split_pairs(str(tmp_path), split)[0])

    for holdout in (None, "0006R0", "0001TP"):
        train, evaluated = protocol.protocol_pairs(tmp_path, holdout)
        train_split, eval_split = protocol.splits(holdout)
        assert sorted(str(image) for image, _ in train) == files(train_split)
        assert sorted(str(image) for image, _ in evaluated) == files(eval_split)
        assert all(mask.parent.name.endswith("annot") for _, mask in train + evaluated)
    assert len(protocol.protocol_pairs(tmp_path, "0006R0")[1]) == 2
    with pytest.raises(ValueError, match="--holdout 0007XX"):
        protocol.protocol_pairs(tmp_path, "0007XX")
