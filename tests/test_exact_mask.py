"""The exact full-size mask head (`fastscnn_tf.export.exact_mask`): pixel for pixel the first-max
argmax of the bilinearly upsampled scores, checked against numpy on the resized scores that the
same LiteRT kernel computes (XNNPACK and LiteRT's own), for float32 and int8 graphs, on noise,
on scene-like scores and on scores built to tie; then the exported model against the export
that resized to full size and took ARG_MAX."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from fastscnn_tf import export
from fastscnn_tf.data import synthetic
from fastscnn_tf.export import fold_input_normalization
from fastscnn_tf.export.exact_mask import (
    _assemble,
    _class_rows,
    _corners,
    corner_index,
    exact_mask,
    supports,
)
from fastscnn_tf.model import FastSCNN

from helpers import randomize_batchnorm

LOW = (6, 10)  # 1/8 scores -> a 48x80 mask
SIZE = (48, 80)
# Ops of the int8 head that may read or write int8: they move, reduce or compare values of one
# scale without requantizing them.
INT8_OPS = {
    "RESHAPE", "TRANSPOSE", "STRIDED_SLICE", "SPLIT_V", "SHAPE", "GATHER", "ARG_MAX",
    "REDUCE_MIN", "REDUCE_MAX", "GREATER", "LESS_EQUAL", "RESIZE_BILINEAR",
}  # fmt: skip
RUNTIMES = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def _noise(rng, num_classes):
    return rng.normal(0.0, 3.0, (*LOW, num_classes))


def _scene(rng, num_classes, index=0):
    """Scores like a trained network's: high for the class of a synthetic scene's region,
    smoothed across region edges, with a little noise."""
    classes = min(num_classes, synthetic.MAX_CLASSES)
    _, mask = synthetic.example(index, size=(LOW[0] * 8, LOW[1] * 8), num_classes=classes)
    one_hot = np.eye(num_classes)[mask[4::8, 4::8]] * 6.0
    padded = np.pad(one_hot, ((1, 1), (1, 1), (0, 0)), mode="edge")
    smooth = sum(padded[i : i + LOW[0], j : j + LOW[1]] for i in range(3) for j in range(3)) / 9
    return smooth + rng.normal(0.0, 0.3, smooth.shape)


def _ties(rng, num_classes):
    """Integers (many exact ties), a class tied with the maximum at every fourth position, and
    one row where every class has the same score."""
    scores = np.round(rng.normal(0.0, 1.5, (*LOW, num_classes)))
    top = scores.max(-1)
    tied = rng.integers(0, num_classes, LOW)
    scores[::2, ::2][..., :] = np.where(
        np.arange(num_classes) == tied[::2, ::2, None], top[::2, ::2, None], scores[::2, ::2]
    )
    scores[1] = 2.0
    return scores


def _resize(x):
    return tf.raw_ops.ResizeBilinear(images=x, size=SIZE, half_pixel_centers=True)


def _convert(fn, num_classes, calibration, quantized):
    spec = tf.TensorSpec([1, *LOW, num_classes], tf.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(fn, input_signature=[spec]).get_concrete_function()]
    )
    if quantized:  # int8 in, and int8 out for the resized scores
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [x[None].astype(np.float32)] for x in calibration
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _run(model_bytes, scores, runtime, interpreter=None):
    interpreter = interpreter or Interpreter(
        model_content=model_bytes, num_threads=2, experimental_op_resolver_type=RUNTIMES[runtime]
    )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = scores[None].astype(np.float32)
    if detail["dtype"] == np.int8:
        scale, zero_point = detail["quantization"]
        x = np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def test_corner_index_clamps_at_the_border():
    index = corner_index(3, 4)
    assert index.shape == (4, 5, 4)
    np.testing.assert_array_equal(index[0, 0], [0, 0, 0, 0])  # the top-left corner repeats
    np.testing.assert_array_equal(index[1, 2], [1, 2, 5, 6])  # rows 0-1, columns 1-2
    np.testing.assert_array_equal(index[3, 4], [11, 11, 11, 11])


def test_shifted_corners_are_the_corner_index():
    """The corners the head slices out of the padded class map are those `corner_index` lists."""
    grid = np.arange(12, dtype=np.int32).reshape(3, 4) * 7 % 5
    corners = np.stack([c.numpy() for c in _corners(tf.constant(grid))], axis=-1)
    np.testing.assert_array_equal(corners, grid.ravel()[corner_index(3, 4)])


@pytest.mark.parametrize("k, num_classes", [(2, 128), (3, 128), (19, 128), (2, 256)])
def test_class_rows_pick_each_cells_class(k, num_classes):
    """Two classes of up to 128 by int64 arithmetic on block rows, else by GATHER: both are
    numpy's take_along_axis, 8 pixels to a row; the largest classes leave no carry behind."""
    rng = np.random.default_rng(k)
    classes = np.stack([np.sort(rng.choice(num_classes, k, replace=False)) for _ in range(6)])
    classes[0, [0, -1]] = 0, num_classes - 1
    pick = rng.integers(0, k, (6, 64))
    pick[0] = 1  # the largest class in every pixel of a row
    rows = _class_rows(tf.constant(pick, tf.int32), tf.constant(classes, tf.int32), num_classes)
    expected = np.take_along_axis(classes, pick, axis=1).astype(np.uint8)
    np.testing.assert_array_equal(rows.numpy().view(np.uint8).reshape(6, 64), expected)


def test_assemble_places_the_blocks_half_a_cell_up_and_left():
    """The int64 (BITCAST) transpose lays out blocks as numpy does with the 8x8 pixels of each
    cell, then drops the half cell outside the image."""
    rng = np.random.default_rng(0)
    table = rng.integers(0, 256, (7, 64)).astype(np.uint8)
    cell_row = rng.integers(0, 7, (4, 6)).astype(np.int32)
    rows = tf.constant(table.view(np.int64))  # (7, 8): one int64 per row of 8 pixels
    got = _assemble(rows, tf.constant(cell_row), (24, 40)).numpy()
    blocks = table[cell_row].reshape(4, 6, 8, 8).transpose(0, 2, 1, 3).reshape(32, 48)
    np.testing.assert_array_equal(got, blocks[None, 4:28, 4:44])


def test_supports_only_exact_eighths():
    assert supports((1, 6, 10, 3), (48, 80))
    assert not supports((1, 6, 10, 3), (48, 81))
    assert not supports((2, 6, 10, 3), (48, 80))
    with pytest.raises(ValueError, match="1/8 scores"):
        exact_mask(tf.zeros([1, 6, 10, 3]), (50, 80), quantized=False)


@pytest.mark.parametrize("num_classes", [2, 5, 19])
@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "int8"])
def test_mask_is_the_argmax_of_the_resized_scores(num_classes, quantized):
    """Every input kind in both runtimes; 19 classes reach every candidate tier (2, 4, 8, all)."""
    rng = np.random.default_rng(num_classes)
    inputs = {
        "noise": [_noise(rng, num_classes) for _ in range(2)],
        "scene": [_scene(rng, num_classes, i) for i in range(3)],
        "ties": [_ties(rng, num_classes) for _ in range(2)],
    }
    calibration = [x for xs in inputs.values() for x in xs]
    head = _convert(lambda x: exact_mask(x, SIZE, quantized), num_classes, calibration, quantized)
    resized = _convert(_resize, num_classes, calibration, quantized)
    for runtime in RUNTIMES:
        for kind, xs in inputs.items():
            for x in xs:
                expected = np.argmax(_run(resized, x, runtime), axis=-1)  # first max, as ARG_MAX
                mask = _run(head, x, runtime)
                assert mask.dtype == np.uint8 and mask.shape == SIZE
                mismatched = int(np.sum(mask != expected))
                assert mismatched == 0, f"{runtime}, {kind}: {mismatched} pixels differ"


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "int8"])
def test_boundaries_everywhere_take_the_plain_full_size_head(quantized, monkeypatch):
    """Noise scores (an untrained network's) resolve no cell: the head resizes every class to
    full size and takes ARG_MAX, bounding its cost by the plain head's; scene scores never
    resize at full size. Exact either way, also when every input takes one path."""
    from fastscnn_tf.export import exact_mask as module

    rng = np.random.default_rng(3)
    noise, scene = _noise(rng, 19), _scene(rng, 19)
    resized = _convert(_resize, 19, [noise, scene], quantized)
    for fraction, plain in ((module.FULL_RESIZE_FRACTION, (True, False)), (0.0, (True, True))):
        monkeypatch.setattr(module, "FULL_RESIZE_FRACTION", fraction)
        head = _convert(lambda x: exact_mask(x, SIZE, quantized), 19, [noise, scene], quantized)
        for runtime in RUNTIMES:
            for x, full in zip((noise, scene), plain, strict=True):
                interpreter = Interpreter(
                    model_content=head,
                    num_threads=2,
                    experimental_op_resolver_type=RUNTIMES[runtime],
                    experimental_preserve_all_tensors=True,
                )
                mask = _run(head, x, runtime, interpreter)
                np.testing.assert_array_equal(mask, np.argmax(_run(resized, x, runtime), -1))
                resizes = [
                    interpreter.get_tensor(op["outputs"][0]).shape
                    for op in interpreter._get_ops_details()
                    if op["op_name"] == "RESIZE_BILINEAR"
                ]
                full_size = [shape for shape in resizes if shape[1:3] == SIZE]
                assert full_size == [(int(full), *SIZE, 19)], (runtime, resizes)


def test_int8_mask_is_exact_at_the_tiny_scales_of_a_fresh_network():
    """At int8 scales around 1e-6 a comparison op rounds every difference to zero; the head
    only drops a class on a strict GREATER, so it resolves more cells and stays exact."""
    rng = np.random.default_rng(7)
    xs = [_scene(rng, 5, i) * 1e-5 + _noise(rng, 5) * 1e-6 for i in range(3)]
    head = _convert(lambda x: exact_mask(x, SIZE, True), 5, xs, True)
    resized = _convert(_resize, 5, xs, True)
    for runtime in RUNTIMES:
        for x in xs:
            expected = np.argmax(_run(resized, x, runtime), axis=-1)
            np.testing.assert_array_equal(_run(head, x, runtime), expected)


# --- the exported model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    model = FastSCNN(6)
    randomize_batchnorm(model, shift=0.3, max_variance=2.0)
    return model


def _images(n, size, seed=0):
    return [synthetic.example(i, seed=seed, size=size)[0] for i in range(n)]


def _full_size_argmax_export(model, size, precision, calibration):
    """The exact export before `exact_mask`: the model's own full-size scores, then ARG_MAX."""
    quantized = precision == "int8"
    scores = export.score_model(fold_input_normalization(export.with_input_size(model, size)))
    dtype = tf.float32 if quantized else tf.uint8

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], dtype)])
    def serve(image):
        if quantized:
            x = tf.quantization.fake_quant_with_min_max_args(image, min=0.0, max=255.0)
        else:
            x = tf.cast(image, tf.float32)
        return tf.cast(tf.argmax(scores(x, training=False), -1, output_type=tf.int32), tf.uint8)

    images = [im[None].astype(np.float32) for im in calibration]
    return export.convert(
        serve, precision, (lambda: iter([[x] for x in images])) if quantized else None
    )


def _invoke(model_bytes, image, runtime):
    interpreter = Interpreter(
        model_content=model_bytes, num_threads=2, experimental_op_resolver_type=RUNTIMES[runtime]
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("size", [(64, 96), (72, 100)], ids=["aligned", "padded"])
@pytest.mark.parametrize("precision", ["float32", pytest.param("int8", marks=pytest.mark.slow)])
def test_export_equals_the_full_size_argmax_export(model, tmp_path, precision, size):
    calibration = _images(6, size, seed=1)
    path = export.export_tflite(
        model,
        tmp_path / "m.tflite",
        size=size,
        precision=precision,
        representative=calibration,
        calibration_images=6,
        metadata=False,
    )
    new = open(path, "rb").read()
    assert "WHERE" in export.op_names(new) and "RESIZE_BILINEAR" in export.op_names(new)
    old = _full_size_argmax_export(model, size, precision, calibration)
    for runtime in RUNTIMES:
        for image in _images(3, size, seed=2) + [np.zeros((*size, 3), np.uint8)]:
            expected = _invoke(old, image, runtime)
            got = _invoke(new, image, runtime)
            assert got.dtype == np.uint8 and got.shape == (1, *size)  # what the app reads
            np.testing.assert_array_equal(got, expected, err_msg=runtime)


def test_int8_head_keeps_the_scores_scale(model, tmp_path):
    """The exactness argument for int8 holds in the converted graph: every int8 value the head
    moves, compares or resizes has the scores' scale (no requantization, no float detour)."""
    path = export.export_tflite(
        model, tmp_path / "m.tflite", size=(64, 96), precision="int8",
        representative=_images(4, (64, 96)), calibration_images=4, metadata=False,
    )  # fmt: skip
    interpreter = Interpreter(
        model_path=str(path), experimental_op_resolver_type=RUNTIMES["builtin"]
    )
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    # The head starts where the (1, 8, 12, 6) scores are flattened to (96, 6).
    start = next(
        i for i, op in enumerate(ops) if tensors[op["inputs"][0]]["shape"].tolist() == [1, 8, 12, 6]
    )
    scale = tensors[ops[start]["inputs"][0]]["quantization"]
    for op in ops[start:]:
        int8 = [
            i for i in [*op["inputs"], *op["outputs"]] if tensors.get(i, {}).get("dtype") == np.int8
        ]
        if int8:
            assert op["op_name"] in INT8_OPS, op["op_name"]
        for i in int8:
            assert tensors[i]["quantization"] == scale, op["op_name"]


@pytest.mark.slow
def test_align_corners_model_keeps_the_full_size_argmax(tmp_path):
    """The reference's corner-aligned upsampling has no 8x8 cells; its export resizes to full
    size and takes ARG_MAX, as before."""
    keras.utils.set_random_seed(5)
    model = FastSCNN(4, align_corners=True)
    path = export.export_tflite(
        model, tmp_path / "a.tflite", size=(64, 96), precision="float32", metadata=False
    )
    new = open(path, "rb").read()
    assert "WHERE" not in export.op_names(new) and "ARG_MAX" in export.op_names(new)
    old = _full_size_argmax_export(model, (64, 96), "float32", [])
    image = _images(1, (64, 96))[0]
    np.testing.assert_array_equal(_invoke(new, image, "xnnpack"), _invoke(old, image, "xnnpack"))
