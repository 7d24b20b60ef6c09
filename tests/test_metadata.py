import zipfile

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from fastscnn_tf import export, metadata
from fastscnn_tf.data import synthetic
from fastscnn_tf.labels import CAMVID
from fastscnn_tf.model import FastSCNN

from helpers import read_metadata

mediapipe = pytest.importorskip("mediapipe", reason="the [mediapipe] extra is not installed")
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

SIZE = (64, 96)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(4)
    return FastSCNN(CAMVID.num_classes)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("metadata")
    images = [synthetic.example(i, size=SIZE)[0] for i in range(4)]
    paths = {}
    for precision, kind in [("float32", "logits"), ("int8", "logits"), ("float32", "mask"),
                            ("float16", "probabilities")]:  # fmt: skip
        paths[precision, kind] = export.export_tflite(
            model, folder / f"{precision}_{kind}.tflite", size=SIZE, precision=precision,
            output_kind=kind, representative=images, calibration_images=4, labels=CAMVID,
        )  # fmt: skip
    return paths


def test_metadata_reads_back(exported):
    meta = read_metadata(exported["float32", "logits"])
    assert meta["input"] == "image" and meta["output"] == "logits"
    assert meta["mean"] == [0.0] * 3 and meta["std"] == [1.0] * 3  # the model normalises
    assert meta["min"] == [0.0] * 3 and meta["max"] == [255.0] * 3
    assert meta["activation"] == "softmax"
    assert meta["class_names"] == CAMVID.names
    assert read_metadata(exported["float16", "probabilities"])["activation"] == "none"
    mask_meta = read_metadata(exported["float32", "mask"])
    assert mask_meta["output"] == "mask" and mask_meta["activation"] is None
    # The class names ride in the zip appended to the flatbuffer, as MediaPipe expects.
    with zipfile.ZipFile(exported["float32", "mask"]) as archive:
        assert archive.read("labels.txt").decode().split() == list(CAMVID.names)


def test_model_without_metadata_reads_none(model, tmp_path):
    path = export.export_tflite(model, tmp_path / "m.tflite", size=SIZE, precision="float32",
                                output_kind="logits", metadata=False)  # fmt: skip
    assert read_metadata(path) is None
    assert len(metadata.read_class_names(path)) == CAMVID.num_classes  # names ride along anyway


def test_populated_model_still_runs_identically(model, exported):
    image = synthetic.example(0, size=SIZE)[0]
    interpreter = Interpreter(model_path=exported["float32", "logits"])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(result, model(image[None].astype("float32")), atol=1e-4)


@pytest.mark.parametrize(
    "variant", [("float32", "logits"), ("int8", "logits"), ("float16", "probabilities")]
)
def test_mediapipe_image_segmenter_loads_and_agrees(exported, variant):
    path = exported[variant]
    image = np.ascontiguousarray(synthetic.example(5, size=SIZE)[0])
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    expected = np.argmax(
        interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0], -1
    )
    assert len(np.unique(expected)) > 1  # a constant map would prove nothing
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        output_category_mask=True,
        output_confidence_masks=True,
    )
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        assert list(segmenter.labels) == list(CAMVID.names)
        result = segmenter.segment(
            mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=image)
        )
    category = result.category_mask.numpy_view().reshape(SIZE)
    np.testing.assert_array_equal(category, expected)
    assert len(result.confidence_masks) == CAMVID.num_classes
