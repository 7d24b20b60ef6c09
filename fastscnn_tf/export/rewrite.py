"""Rewrites of a converted int8 flatbuffer that keep every integer it computes, for XNNPACK.

The converter fixes the int8 graph: its scales, zero points and integer weights. These rewrites
change only how LiteRT is asked to compute it, so an exported mask stays the same pixel for
pixel with or without them (tests compare both graphs' outputs with and without XNNPACK).
"""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl


def _read(tflite_bytes):
    return tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(tflite_bytes, 0))


def _write(model, size_hint):
    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _builtin(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _opcode(model, builtin):
    """Index of `builtin`'s operator code in `model`, added (version 1) if it has none."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _add_buffer(model, array):
    buffer = tfl.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _add_tensor(graph, name, shape, dtype, buffer=0, quantization=None):
    tensor = tfl.TensorT()
    tensor.name, tensor.type, tensor.buffer = name, dtype, buffer
    tensor.shape = np.array(shape, np.int32)
    tensor.quantization = quantization
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def dequantize_uint8_input(tflite_bytes):
    """The int8 graph's `CAST` of its uint8 image to float as a `DEQUANTIZE` with scale 1.

    Same values (the bytes as floats, then quantized exactly by the fake quantization's scale
    1), but XNNPACK runs a DEQUANTIZE, multi-threaded, where it leaves CAST to LiteRT's
    single-threaded kernel (0.4 ms of ~10 at 512x1024 here). The image input then carries
    quantization (1.0, 0): raw camera bytes, as a converter-made uint8 input does.
    """
    model = _read(tflite_bytes)
    graph = model.subgraphs[0]
    image = graph.tensors[graph.inputs[0]]
    casts = [
        op
        for op in graph.operators
        if _builtin(model, op) == tfl.BuiltinOperator.CAST and list(op.inputs) == [graph.inputs[0]]
    ]
    if image.type != tfl.TensorType.UINT8 or len(casts) != 1:
        return tflite_bytes
    (cast,) = casts
    users = sum(op.opcodeIndex == cast.opcodeIndex for g in model.subgraphs for op in g.operators)
    if users == 1:  # the CAST code goes, so the file lists only the ops it runs
        code = model.operatorCodes[cast.opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.DEQUANTIZE
        code.version = 1
    else:
        cast.opcodeIndex = _opcode(model, tfl.BuiltinOperator.DEQUANTIZE)
    cast.builtinOptionsType, cast.builtinOptions = 0, None
    image.quantization = tfl.QuantizationParametersT()
    image.quantization.scale, image.quantization.zeroPoint = [1.0], [0]
    return _write(model, len(tflite_bytes))


def pair_input_columns(tflite_bytes, max_channels=4):
    """Every int8 `CONV_2D` over few channels (the first conv reads the 3-channel image) with
    column stride 2 and no padding, computed over pairs of columns: its input viewed as (H,
    W/2, 2C) (a RESHAPE, the same bytes) and convolved with column stride 1 by a kernel of
    ceil(kw/2) columns of 2C channels, tap `dx` of the old kernel at column `dx // 2`, channels
    `(dx % 2) * C:`, zeros elsewhere.

    Each output sums the same products plus zeros, with the same per-channel scales, bias and
    zero points, so its integers are the ones the old conv computes. XNNPACK's int8 conv kernels
    take each tap's channels in fixed-width blocks, so 3 channels leave most of a block empty;
    6 taps of 6 channels waste less than 9 taps of 3 (`benchmarks/int8_rewrites.py`: 0.3 ms of
    the whole graph at 512x1024, 2 threads)."""
    model = _read(tflite_bytes)
    graph = model.subgraphs[0]
    changed = False
    for op in list(graph.operators):
        if _builtin(model, op) != tfl.BuiltinOperator.CONV_2D:
            continue
        image, weights = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        options = op.builtinOptions
        n, h, w, c = (int(v) for v in image.shape)
        out, kh, kw, _ = (int(v) for v in weights.shape)
        constant = model.buffers[weights.buffer].data is not None
        if not (
            constant
            and image.type == weights.type == tfl.TensorType.INT8
            and min(n, h, w, c) > 0  # static shapes only
            and c <= max_channels
            and w % 2 == 0
            and options.strideW == 2
            and options.padding == tfl.Padding.VALID
            and options.dilationWFactor == options.dilationHFactor == 1
        ):
            continue
        kernel = np.frombuffer(bytes(model.buffers[weights.buffer].data), np.int8)
        kernel = kernel.reshape(out, kh, kw, c)
        paired = np.zeros((out, kh, (kw + 1) // 2, 2 * c), np.int8)
        for dx in range(kw):
            paired[:, :, dx // 2, (dx % 2) * c : (dx % 2 + 1) * c] = kernel[:, :, dx]
        shared = sum(t.buffer == weights.buffer for g in model.subgraphs for t in g.tensors)
        if shared == 1:  # the old kernel's bytes go with it
            model.buffers[weights.buffer].data = np.frombuffer(paired.tobytes(), np.uint8)
        else:
            weights.buffer = _add_buffer(model, paired)
        weights.shape = np.array(paired.shape, np.int32)
        weights.shapeSignature = None
        options.strideW = 1

        shape = [n, h, w // 2, 2 * c]
        name = (image.name or b"") + b"/column_pairs"
        shape_tensor = _add_tensor(
            graph, name + b"/shape", [4], tfl.TensorType.INT32, _add_buffer(model, np.int32(shape))
        )
        pairs = _add_tensor(graph, name, shape, image.type, quantization=image.quantization)
        reshape = tfl.OperatorT()
        reshape.opcodeIndex = _opcode(model, tfl.BuiltinOperator.RESHAPE)
        reshape.inputs = np.array([op.inputs[0], shape_tensor], np.int32)
        reshape.outputs = np.array([pairs], np.int32)
        reshape.builtinOptionsType = tfl.BuiltinOptions.ReshapeOptions
        reshape.builtinOptions = tfl.ReshapeOptionsT()
        reshape.builtinOptions.newShape = shape
        op.inputs = np.array([pairs, *op.inputs[1:]], np.int32)
        graph.operators.insert(graph.operators.index(op), reshape)
        changed = True
    return _write(model, len(tflite_bytes)) if changed else tflite_bytes
