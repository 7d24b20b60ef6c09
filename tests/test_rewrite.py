"""`export.rewrite`: converted int8 graphs rewritten op by op compute the same integers."""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from fastscnn_tf.export import rewrite

RESOLVERS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def conv_model(shape, kernel_size, strides, padding, seed=0):
    """An int8 TFLite conv + ReLU (int8 in and out) over `shape` (H, W, C), random weights."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    kernel = rng.normal(0, 0.2, (*kernel_size, c, 16)).astype(np.float32)
    bias = rng.normal(0, 0.2, 16).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, c], tf.float32)])
    def serve(x):
        y = tf.nn.conv2d(x, kernel, [1, *strides, 1], padding) + bias
        return tf.nn.relu(y)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-2, 2, (1, h, w, c)).astype(np.float32)] for _ in range(4)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def run(tflite_bytes, x, resolver):
    interpreter = Interpreter(
        model_content=tflite_bytes, num_threads=2, experimental_op_resolver_type=resolver
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def conv_ops(tflite_bytes):
    """(op name, input shapes, strides) of every operator, read from the flatbuffer."""
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(tflite_bytes, 0))
    names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        shapes = [tuple(graph.tensors[i].shape) for i in op.inputs if i >= 0]
        strides = None
        if name == "CONV_2D":
            strides = (op.builtinOptions.strideH, op.builtinOptions.strideW)
        ops.append((name, shapes, strides))
    return ops


@pytest.mark.parametrize("resolver", RESOLVERS.values(), ids=RESOLVERS.keys())
@pytest.mark.parametrize(
    "shape, kernel_size, strides",
    [((17, 32, 3), (3, 3), (2, 2)), ((16, 30, 3), (3, 2), (1, 2)), ((9, 24, 4), (1, 5), (2, 2))],
    ids=["3x3", "3x2", "1x5"],
)
def test_paired_columns_compute_the_same_integers(shape, kernel_size, strides, resolver):
    original = conv_model(shape, kernel_size, strides, "VALID")
    paired = rewrite.pair_input_columns(original)
    h, w, c = shape
    kw = kernel_size[1]
    ops = conv_ops(paired)
    assert [name for name, _, _ in ops] == ["RESHAPE", "CONV_2D"]
    _, (image, kernel, _), conv_strides = ops[1]
    assert image == (1, h, w // 2, 2 * c)
    assert kernel == (16, kernel_size[0], (kw + 1) // 2, 2 * c)
    assert conv_strides == (strides[0], 1)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, *shape), dtype=np.int8)
        np.testing.assert_array_equal(run(paired, x, resolver), run(original, x, resolver))


@pytest.mark.parametrize(
    "shape, strides, padding",
    [
        ((16, 31, 3), (2, 2), "VALID"),  # odd width: no pairs
        ((16, 32, 3), (2, 2), "SAME"),  # padding would fall inside a pair
        ((16, 32, 3), (2, 1), "VALID"),  # column stride 1
        ((16, 32, 8), (2, 2), "VALID"),  # enough channels already
    ],
)
def test_other_convs_are_left_alone(shape, strides, padding):
    original = conv_model(shape, (3, 3), strides, padding)
    assert rewrite.pair_input_columns(original) == original
