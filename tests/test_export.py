import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from PIL import Image

from fastscnn_tf import cli, export
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.data import synthetic
from fastscnn_tf.export import exporter
from fastscnn_tf.model import FastSCNN

from helpers import load_script

SIZE = (64, 96)
NUM_CLASSES = 5
HAS_MEDIAPIPE = True
try:
    import mediapipe  # noqa: F401
except ImportError:
    HAS_MEDIAPIPE = False


def _images(n, size=SIZE, seed=0):
    return [synthetic.example(i, seed=seed, size=size)[0] for i in range(n)]


def _interpreter(path):
    # No default delegate: the op list then shows the model's own operators.
    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


def _invoke(interpreter, image):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return FastSCNN(NUM_CLASSES)


@pytest.fixture(scope="module")
def keras_logits(model):
    return [model(img[None].astype("float32")).numpy()[0] for img in _images(2)]


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """One file per (precision, output kind) that the tests below read."""
    folder = tmp_path_factory.mktemp("exported")
    cache = {}

    def get(precision, output_kind, output_stride=1):
        key = (precision, output_kind, output_stride)
        if key not in cache:
            path = folder / f"{precision}_{output_kind}_{output_stride}.tflite"
            export.export_tflite(
                model,
                path,
                size=SIZE,
                precision=precision,
                output_kind=output_kind,
                output_stride=output_stride,
                representative=_images(8, seed=3),
                calibration_images=8,
                metadata=HAS_MEDIAPIPE,
            )
            cache[key] = path
        return cache[key]

    return get


VARIANTS = [
    ("float32", "mask"),
    ("float32", "logits"),
    ("float32", "probabilities"),
    ("float16", "mask"),
    ("float16", "logits"),
    ("dynamic", "mask"),
    ("dynamic", "logits"),
    ("int8", "mask"),
    ("int8", "logits"),
    ("int8", "probabilities"),
]


@pytest.mark.parametrize("precision,output_kind", VARIANTS)
def test_variant_runs_with_expected_io(exported, precision, output_kind):
    interpreter = _interpreter(exported(precision, output_kind))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, *SIZE, 3]
    if precision == "int8":
        assert inp["quantization"] == (1.0, 0)  # raw camera bytes, no rescaling in the app
    if output_kind == "mask":
        assert out["dtype"] == np.uint8 and list(out["shape"]) == [1, *SIZE]
    else:
        assert list(out["shape"]) == [1, *SIZE, NUM_CLASSES]
        assert out["dtype"] == (np.uint8 if precision == "int8" else np.float32)
    assert out["name"] == output_kind
    result = _invoke(interpreter, _images(1)[0])
    if output_kind == "mask":
        assert result.max() < NUM_CLASSES
    # Builtin ops only, read both from the flatbuffer and from the interpreter.
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    names = set(export.op_names(open(exported(precision, output_kind), "rb").read()))
    assert ops == names
    assert not [n for n in names if n.startswith("CUSTOM") or n.startswith("FLEX")]
    assert "VAR_HANDLE" not in names and "READ_VARIABLE" not in names


def test_float32_logits_match_keras(exported, keras_logits):
    interpreter = _interpreter(exported("float32", "logits"))
    for image, expected in zip(_images(2), keras_logits, strict=True):
        np.testing.assert_allclose(_invoke(interpreter, image), expected, atol=1e-4)


def test_float32_probabilities_are_softmax(exported, keras_logits):
    interpreter = _interpreter(exported("float32", "probabilities"))
    expected = tf.nn.softmax(keras_logits[0]).numpy()
    np.testing.assert_allclose(_invoke(interpreter, _images(1)[0]), expected, atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_mask_equals_argmax_of_logits(exported, keras_logits, precision):
    mask = _invoke(_interpreter(exported(precision, "mask")), _images(1)[0])
    if precision == "float32":
        reference = keras_logits[0]
    else:  # the int8 mask is the argmax of the int8 model's own scores
        reference = _invoke(_interpreter(exported("int8", "logits")), _images(1)[0])
    expected = np.argmax(reference, axis=-1)
    # Argmax of quantized scores may tie; ties are where the mask can pick either class.
    assert np.mean(mask == expected) > (0.999 if precision == "float32" else 0.98)


def test_int8_rewrites_keep_the_mask_pixel_for_pixel(model):
    """The int8 graph's CAST of its uint8 image becomes a DEQUANTIZE with scale 1 (XNNPACK runs
    it, not CAST), and its first conv reads pairs of columns; the mask is the same pixel for
    pixel as the converter's own graph gives, with XNNPACK and with LiteRT's kernels."""
    serve = export.build_export_model(model, export.ExportSpec(SIZE, "int8"))
    calibration = lambda: ([x[None].astype(np.float32)] for x in _images(8, seed=3))  # noqa: E731
    ours = export.convert(serve, "int8", calibration)
    plain = export.convert(serve, "int8", calibration, rewrite=False)

    assert Interpreter(model_content=ours).get_input_details()[0]["quantization"] == (1.0, 0)
    for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
        ops = []
        masks = []
        for tflite_bytes in (ours, plain):
            interpreter = Interpreter(
                model_content=tflite_bytes, experimental_op_resolver_type=resolver
            )
            interpreter.allocate_tensors()
            ops.append([op["op_name"] for op in interpreter._get_ops_details()][:4])
            masks.append([_invoke(interpreter, image) for image in _images(4, seed=5)])
        assert ops == [
            ["DEQUANTIZE", "QUANTIZE", "RESHAPE", "CONV_2D"],
            ["CAST", "QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D"],
        ]
        np.testing.assert_array_equal(masks[0], masks[1])


def test_output_stride_8_is_the_classifier_map(model, exported):
    interpreter = _interpreter(exported("float32", "logits", 8))
    image = _images(1)[0]
    features = keras.Model(model.inputs, model.get_layer("cls_conv").output)
    expected = features(image[None].astype("float32")).numpy()[0]
    result = _invoke(interpreter, image)
    assert result.shape == expected.shape and result.shape[:2] == (SIZE[0] // 8, SIZE[1] // 8)
    np.testing.assert_allclose(result, expected, atol=1e-4)


def test_labels_written_beside_model_as_its_own_file(exported):
    path = exported("float32", "mask")
    own = os.path.splitext(path)[0] + ".labels.txt"
    assert labels_lib.read_labels(own) == labels_lib.generic(NUM_CLASSES)
    assert not os.path.exists(os.path.join(os.path.dirname(path), "labels.txt"))


@pytest.mark.slow
def test_float32_512x1024_matches_keras(tmp_path):
    keras.utils.set_random_seed(2)
    model = FastSCNN(19)
    path = export.export_tflite(
        model, tmp_path / "m.tflite", size=(512, 1024), precision="float32",
        output_kind="logits", metadata=False,
    )  # fmt: skip
    image = np.random.default_rng(0).integers(0, 256, (512, 1024, 3), dtype=np.uint8)
    expected = model(image[None].astype("float32")).numpy()[0]
    np.testing.assert_allclose(_invoke(_interpreter(path), image), expected, atol=1e-4)


def test_static_model_of_another_size_is_rebuilt(tmp_path):
    model = FastSCNN(3, input_shape=(128, 128, 3))
    path = export.export_tflite(model, tmp_path / "m.tflite", size=SIZE, output_kind="logits",
                                metadata=False)  # fmt: skip
    image = _images(1)[0]
    expected = FastSCNN(3, input_shape=(*SIZE, 3))
    expected.set_weights(model.get_weights())
    np.testing.assert_allclose(
        _invoke(_interpreter(path), image), expected(image[None].astype("float32"))[0], atol=1e-4
    )


def test_aux_heads_are_dropped(tmp_path):
    model = FastSCNN(3, aux=True, aux2=True)
    path = export.export_tflite(model, tmp_path / "m.tflite", size=SIZE, output_kind="logits",
                                metadata=False)  # fmt: skip
    image = _images(1)[0]
    main = model(image[None].astype("float32"))[0].numpy()[0]
    np.testing.assert_allclose(_invoke(_interpreter(path), image), main, atol=1e-4)


def test_cli_exports_int8_calibrated_on_the_data_pipeline(tmp_path, model, capsys):
    model_path = tmp_path / "run" / "model.keras"
    model_path.parent.mkdir()
    model.save(model_path)
    labels_lib.write_labels(model_path.parent / "labels.txt", labels_lib.generic(NUM_CLASSES))
    (model_path.parent / "config.json").write_text('{"dataset": "synthetic:6"}')
    output = tmp_path / "out" / "m.tflite"
    argv = ["export", str(model_path), "--size", "64x96", "--output", str(output),
            "--calibration-images", "4", "--no-metadata"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "calibrating int8 on 4 images of synthetic:6" in capsys.readouterr().out
    interpreter = _interpreter(output)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert (tmp_path / "out" / "m.labels.txt").exists()


def test_convert_script_writes_beside_itself(tmp_path, model, monkeypatch):
    convert_script = load_script("tflite/convert.py")
    monkeypatch.setattr(convert_script, "HERE", str(tmp_path))
    model.save(tmp_path / "net.keras")
    argv = [str(tmp_path / "net.keras"), "--size", "64x64", "--precision", "float32"]
    assert convert_script.main(argv) == 0
    assert (tmp_path / "net_64x64_float32_mask.tflite").exists()
    assert (tmp_path / "net_64x64_float32_mask.labels.txt").exists()


def test_default_output_name():
    spec = export.ExportSpec((360, 480), "int8", "mask")
    assert export.default_output("runs/a/model.keras", spec) == os.path.join(
        "tflite", "model_360x480_int8_mask.tflite"
    )
    spec = export.ExportSpec((64, 64), "float32", "logits", 8)
    assert export.default_output("m.keras", spec).endswith("_s8.tflite")


def test_bad_input_errors(model, tmp_path):
    out = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match="size=32x96.*64x64"):
        export.export_tflite(model, out, size=(32, 96))
    with pytest.raises(ValueError, match="precision='int4'"):
        export.export_tflite(model, out, size=SIZE, precision="int4")
    with pytest.raises(ValueError, match="output_kind='edges'"):
        export.export_tflite(model, out, size=SIZE, output_kind="edges")
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        export.export_tflite(str(tmp_path / "missing.keras"), out, size=SIZE)
    with pytest.raises(ValueError, match="needs calibration images: pass representative="):
        export.export_tflite(model, out, size=SIZE, precision="int8", metadata=False)
    with pytest.raises(ValueError, match="calibration\\) dataset is empty"):
        export.export_tflite(
            model, out, size=SIZE, precision="int8", representative=[], metadata=False
        )
    with pytest.raises(ValueError, match="at least 1 image"):
        export.export_tflite(model, out, size=SIZE, precision="int8", representative=_images(1),
                             calibration_images=0, metadata=False)  # fmt: skip
    labels_lib.write_labels(tmp_path / "four.txt", labels_lib.generic(4))
    with pytest.raises(ValueError, match="four.txt lists 4 classes but the model predicts 5"):
        export.export_tflite(model, out, size=SIZE, labels=str(tmp_path / "four.txt"))
    assert not out.exists()
    assert cli.main(["export", str(tmp_path / "nope.keras"), "--precision", "float32"]) == 2


def test_output_under_a_file_is_refused_before_converting(model, tmp_path, monkeypatch):
    def convert(*args, **kwargs):
        raise AssertionError("converted before the output was checked")

    monkeypatch.setattr(exporter, "convert", convert)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=f"output={tmp_path}/file/m.tflite: .* is a file"):
        export.export_tflite(model, tmp_path / "file" / "m.tflite", size=SIZE, metadata=False)


def test_metadata_without_mediapipe(model, tmp_path, monkeypatch, capsys):
    from fastscnn_tf import metadata

    monkeypatch.setattr(metadata, "available", lambda: False)
    with pytest.raises(ValueError, match="metadata=True needs the mediapipe package"):
        export.export_tflite(model, tmp_path / "m.tflite", size=SIZE, metadata=True)
    path = export.export_tflite(model, tmp_path / "m.tflite", size=SIZE, precision="float32")
    assert "no MediaPipe metadata embedded" in capsys.readouterr().out
    assert len(metadata.read_class_names(path)) == NUM_CLASSES  # the class names ride along


def test_flex_ops_are_refused():
    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.uint8)])
    def serve(image):
        # A determinant has no TFLite builtin kernel.
        x = tf.cast(image, tf.float32)
        return tf.linalg.det(tf.reshape(x[..., 0], [1, 8, 8]))

    with pytest.raises(ValueError, match="outside TFLITE_BUILTINS.*MatrixDeterminant"):
        export.convert(serve, "float32")


@pytest.mark.slow
def test_int8_agrees_with_float_on_a_trained_model(tmp_path):
    """Train briefly on synthetic scenes so that the scores are not noise, then check that
    post-training int8 keeps >= 95% of the float model's pixels."""
    from fastscnn_tf import data

    keras.utils.set_random_seed(0)
    size = (64, 80)
    source = data.load_source(f"synthetic:64:{size[0]}x{size[1]}", "train")
    pipeline = data.make_pipeline(source, batch_size=8, shuffle=True, repeat=True)
    model = FastSCNN(source.labels.num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(pipeline, steps_per_epoch=150, epochs=1, verbose=0)
    calibration = [ex["image"] for ex in source.dataset.take(32).as_numpy_iterator()]
    paths = {
        p: export.export_tflite(model, tmp_path / f"{p}.tflite", size=size, precision=p,
                                output_kind="mask", representative=calibration,
                                calibration_images=32, metadata=False)
        for p in ("float32", "int8")
    }  # fmt: skip
    val = data.load_source(f"synthetic:16:{size[0]}x{size[1]}", "val")
    masks = {p: [] for p in paths}
    for example in val.dataset.as_numpy_iterator():
        for p, path in paths.items():
            masks[p].append(_invoke(_interpreter(path), example["image"]))
    float_masks, int8_masks = np.stack(masks["float32"]), np.stack(masks["int8"])
    assert len(np.unique(float_masks)) >= 3  # the model learnt more than one class
    agreement = np.mean(float_masks == int8_masks)
    print(f"int8/float pixel agreement {agreement:.2%}")
    assert agreement >= 0.95, f"int8 agrees with float on {agreement:.1%} of pixels"


@pytest.mark.slow
def test_unaligned_size_exports_the_padded_network(tmp_path):
    """At a size that is not a multiple of 32 the export runs the network padded to one and
    crops back, as the Keras model does: logits, the 1/8 mask head and 1/8 logits read by the
    runtime all land on the padded grid."""
    from fastscnn_tf.runtime import load_runtime

    from helpers import randomize_batchnorm

    keras.utils.set_random_seed(4)
    model = FastSCNN(NUM_CLASSES)
    randomize_batchnorm(model)
    size, padded = (72, 100), (96, 128)
    image = _images(1, size=size)[0]
    common = dict(size=size, precision="float32", metadata=False)
    path = export.export_tflite(model, tmp_path / "l.tflite", output_kind="logits", **common)
    expected = model(image[None].astype("float32")).numpy()[0]
    np.testing.assert_allclose(_invoke(_interpreter(path), image), expected, atol=1e-4)

    # 1/8 scores of the zero-padded image, computed without the export code.
    features = keras.Model(model.inputs, model.get_layer("cls_conv").output)
    pad = ((0, padded[0] - size[0]), (0, padded[1] - size[1]), (0, 0))
    scores8 = features(np.pad(image, pad)[None].astype("float32")).numpy()
    coarse = np.repeat(np.repeat(scores8[0].argmax(-1), 8, 0), 8, 1)[: size[0], : size[1]]
    path = export.export_tflite(
        model, tmp_path / "m8.tflite", output_kind="mask", mask_stride=8, **common
    )
    np.testing.assert_array_equal(_invoke(_interpreter(path), image), coarse)

    path = export.export_tflite(
        model, tmp_path / "s8.tflite", output_kind="logits", output_stride=8, **common
    )
    fine = tf.image.resize(scores8, padded, method="bilinear").numpy()[0]
    expected = fine[: size[0], : size[1]].argmax(-1)
    got = load_runtime(path).segment(image[None])[0]
    assert (got == expected).mean() > 0.999


@pytest.mark.slow
def test_a_second_export_into_the_folder_keeps_the_first_ones_labels(tmp_path, capsys):
    """Each export writes `NAME.labels.txt`: the first model keeps its labels byte for byte,
    and a shared labels.txt that disagrees with a model's embedded names is refused."""
    import hashlib

    from fastscnn_tf.cli import android, serve

    def trained(folder, classes, names):
        folder.mkdir()
        FastSCNN(classes).save(folder / "model.keras")
        labels_lib.write_labels(folder / "labels.txt", labels_lib.LabelSet(
            names, labels_lib.default_colors(classes), 255))  # fmt: skip
        return folder / "model.keras"

    streets = trained(tmp_path / "streets", 3, ("road", "car", "sky"))
    rooms = trained(tmp_path / "rooms", 4, ("wall", "floor", "chair", "table"))
    out = tmp_path / "tflite"
    for model, name in ((streets, "streets"), (rooms, "rooms")):
        argv = ["export", str(model), "--size", "64x64", "--precision", "float32",
                "--output", str(out / f"{name}.tflite"), "--no-metadata"]  # fmt: skip
        assert cli.main(argv) == 0
        if name == "streets":
            first = {p: hashlib.sha256((out / p).read_bytes()).hexdigest()
                     for p in ("streets.tflite", "streets.labels.txt")}  # fmt: skip
    assert {p: hashlib.sha256((out / p).read_bytes()).hexdigest() for p in first} == first
    assert labels_lib.labels_for(out / "streets.tflite").names == ("road", "car", "sky")
    assert labels_lib.labels_for(out / "rooms.tflite").names == ("wall", "floor", "chair", "table")
    assert sorted(os.listdir(out)) == [
        "rooms.labels.txt", "rooms.tflite", "streets.labels.txt", "streets.tflite"]  # fmt: skip

    # An older export's folder: one labels.txt that belongs to the other model.
    old = tmp_path / "old"
    old.mkdir()
    (old / "streets.tflite").write_bytes((out / "streets.tflite").read_bytes())
    (old / "labels.txt").write_bytes((out / "rooms.labels.txt").read_bytes())
    Image.fromarray(_images(1)[0]).save(tmp_path / "photo.png")
    capsys.readouterr()
    commands = [
        ["predict", str(tmp_path / "photo.png"), "--model", str(old / "streets.tflite"),
         "--out", str(tmp_path / "pred")],
        ["android-assets", "--model", str(old / "streets.tflite"), "--dest", str(tmp_path / "a")],
    ]  # fmt: skip
    for argv in commands:
        assert cli.main(argv) == 2, argv
        assert "belongs to another model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="belongs to another model"):
        serve.check_model(str(old / "streets.tflite"))
    with pytest.raises(ValueError, match="belongs to another model"):
        android.copy_assets(old / "streets.tflite", tmp_path / "assets")
    assert not (tmp_path / "pred").exists() and not (tmp_path / "assets").exists()


def test_export_of_the_preset_away_from_its_data_says_how_to_calibrate(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # the preset's config.json names ../shared/data/camvid
    assert cli.main(["export", "camvid", "--size", "64x64", "--output", "m.tflite"]) == 2
    captured = capsys.readouterr()
    assert "pass --calibration-dataset" in captured.err and "calibrating" not in captured.out
    assert not (tmp_path / "m.tflite").exists()


def test_calibration_split_keeps_a_held_out_sequence_unseen(tmp_path, model, capsys):
    from PIL import Image

    from fastscnn_tf.export.converter import pipeline_images

    from helpers import write_tiny_camvid

    stems = {"train": ["0001TP_1", "0006R0_1", "0006R0_2", "0016E5_1"], "val": ["0016E5_9"]}
    write_tiny_camvid(tmp_path / "camvid", stems)
    spec = f"folder:{tmp_path / 'camvid'}"
    images = pipeline_images(spec, (64, 80), "train[-0006R0]+val")
    drawn = {image.astype(np.uint8).tobytes() for image in images}  # float images of uint8 pixels

    def photo(split, stem):
        return np.asarray(Image.open(tmp_path / "camvid" / split / f"{stem}.png"))[None].tobytes()

    assert drawn == {photo("train", s) for s in ("0001TP_1", "0016E5_1")} | {
        photo("val", "0016E5_9")
    }

    model_path = tmp_path / "model.keras"
    model.save(model_path)
    output = tmp_path / "m.tflite"
    argv = ["export", str(model_path), "--size", "64x80", "--output", str(output),
            "--calibration-dataset", spec, "--calibration-split", "train[-0006R0]",
            "--calibration-images", "4", "--no-metadata"]  # fmt: skip
    assert cli.main(argv) == 0
    assert f"of {spec} (train[-0006R0])" in capsys.readouterr().out and output.is_file()
