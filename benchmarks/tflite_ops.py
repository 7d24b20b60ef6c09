"""Where the int8 graph spends its time, and which graph formulations make int8 win.

Three tables, every row measured side by side in one process (the interpreters take turns, so
a busy shared CPU slows all rows alike; read the ratios):

1. Whole-model variants of the exported graph (float32 ms, int8 ms, int8/float32): the
   network as trained (Rescaling in the graph, ARG_MAX on full-size scores), then with the
   normalisation folded into the first conv: the previous exact head (full-size scores, then
   ARG_MAX), the exact head of the export (`exact_mask`), and the ARG_MAX at 1/2, 1/4, 1/8 of
   the input followed by a nearest copy of the class map (`export.mask_head`).
2. Single ops and stages of the graph as their own small models, float32 and int8, each with
   and without the XNNPACK delegate: where "with" equals "without", XNNPACK did not take the
   op and it runs in LiteRT's own single-threaded kernel. The two exact mask heads take the
   network's 1/8 scores of the first image (their cost depends on how many 8x8 cells hold a
   class boundary, printed with the table; random pixels on random weights are the worst case).
3. With `--images` (e.g. CamVid val) and a trained `--model`: for each exported mask variant
   the share of pixels equal to the Keras float32 argmax at the input size.

    python benchmarks/tflite_ops.py                       # random weights, 512x1024, 2 threads
    python benchmarks/tflite_ops.py --model runs/camvid/model.keras --size 360x480 \\
        --images ../shared/data/camvid/val --threads 2 --runs 30

With `--images` every whole-model variant is timed on the first image instead of random pixels.
"""

import argparse
import glob
import os
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from PIL import Image

from fastscnn_tf import export
from fastscnn_tf.export import fold_input_normalization
from fastscnn_tf.export.exact_mask import corner_index, exact_mask
from fastscnn_tf.geometry import parse_size
from fastscnn_tf.model import FastSCNN, pyramid_pooling
from fastscnn_tf.modelfile import load_keras_model


def randomized_model(num_classes, size, seed=0):
    """Random weights with BN statistics away from identity, so int8 ranges are not trivial."""
    keras.utils.set_random_seed(seed)
    model = FastSCNN(num_classes, input_shape=(*size, 3))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    return model


def load_images(folder, size, limit):
    files = sorted(
        glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png"))
    )
    if not files:
        raise SystemExit(f"--images {folder}: no .jpg/.png images there.")
    images = []
    for path in files[:limit]:
        image = Image.open(path).convert("RGB").resize(size[::-1], Image.BILINEAR)
        images.append(np.asarray(image, np.uint8))
    return np.stack(images)


def run_images(model, images, resolver=OpResolverType.AUTO, threads=2):
    """Yield the first output (batch axis dropped) of a TFLite model (a path or bytes) on each
    uint8 image (H, W, 3) of `images`."""
    if isinstance(model, (str, os.PathLike)):
        source = {"model_path": str(model)}
    else:
        source = {"model_content": model}
    interpreter = Interpreter(**source, num_threads=threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]
    for image in images:
        interpreter.set_tensor(index, image[None])
        interpreter.invoke()
        yield interpreter.get_tensor(output)[0]  # get_tensor copies


def time_alternating(graphs, image, threads, runs, warmup=10):
    """Seconds of `invoke` of each TFLite model in `graphs` ({label: bytes}) on `image`, the
    models called in turn (`warmup` untimed rounds first) so that load falls on all alike."""
    interpreters = {}
    for label, tflite_bytes in graphs.items():
        interpreter = Interpreter(model_content=tflite_bytes, num_threads=threads)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreters[label] = interpreter
    times = {label: [] for label in interpreters}
    for i in range(warmup + runs):
        for label, interpreter in interpreters.items():
            start = time.perf_counter()
            interpreter.invoke()
            if i >= warmup:
                times[label].append(time.perf_counter() - start)
    return times


def as_trained_graph(model, size):
    """The graph before any export work: uint8 -> CAST -> the Keras model -> ARG_MAX."""
    scores = export.score_model(export.with_input_size(model, size))

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)])
    def serve(image):
        logits = scores(tf.cast(image, tf.float32), training=False)
        return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)

    return serve


def full_size_argmax_graph(model, size, quantized):
    """The previous exact export: folded normalisation, the model's full-size scores, ARG_MAX."""
    scores = export.score_model(fold_input_normalization(export.with_input_size(model, size)))
    dtype = tf.float32 if quantized else tf.uint8

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], dtype)])
    def serve(image):
        if quantized:
            x = tf.quantization.fake_quant_with_min_max_args(image, min=0.0, max=255.0)
        else:
            x = tf.cast(image, tf.float32)
        return tf.cast(tf.argmax(scores(x, training=False), -1, output_type=tf.int32), tf.uint8)

    return serve


def boundary_share(scores8):
    """Share of the 8x8 output cells of (h, w, C) 1/8 scores whose four corners do not share
    their argmax: the cells the exact mask head resolves per pixel."""
    classes = scores8.argmax(-1).ravel()[corner_index(*scores8.shape[:2])]
    return float(np.mean(classes.min(-1) != classes.max(-1)))


def convert_pair(serve_float, serve_int8, calibration):
    """(float32 bytes, int8 bytes); int8 takes the uint8 image through `export.convert`."""
    images = list(calibration)
    dtype = serve_int8.get_concrete_function().inputs[0].dtype.as_numpy_dtype
    float_bytes = export.convert(serve_float, "float32")
    int8_bytes = export.convert(
        serve_int8, "int8", lambda: ([im[None].astype(dtype)] for im in images)
    )
    return float_bytes, int8_bytes


def model_variants(model, size, calibration):
    """name -> (float32 bytes, int8 bytes) for the whole-model table."""
    variants = {}
    plain = as_trained_graph(model, size)
    variants["as trained: Rescaling in graph, ARG_MAX at input size"] = convert_pair(
        plain, plain, calibration
    )
    variants["folded normalisation, full-size scores + ARG_MAX (previous exact)"] = convert_pair(
        full_size_argmax_graph(model, size, False),
        full_size_argmax_graph(model, size, True),
        calibration,
    )
    for stride, name in (
        (1, "folded, exact mask head (`exact_mask`, the export's default)"),
        (2, "folded, ARG_MAX at 1/2 + nearest x2"),
        (4, "folded, ARG_MAX at 1/4 + nearest x4"),
        (8, "folded, ARG_MAX at 1/8 + nearest x8"),
    ):
        variants[name] = convert_pair(
            export.build_export_model(model, export.ExportSpec(size, mask_stride=stride)),
            export.build_export_model(model, export.ExportSpec(size, "int8", mask_stride=stride)),
            calibration,
        )
    for stride, name in ((1, "folded, logits at input size"), (8, "folded, logits at 1/8")):
        variants[name] = convert_pair(
            export.build_export_model(
                model, export.ExportSpec(size, "float32", "logits", output_stride=stride)
            ),
            export.build_export_model(
                model, export.ExportSpec(size, "int8", "logits", output_stride=stride)
            ),
            calibration,
        )
    return variants


def _op_model(fn, shape, dtype, low, high, sample=None):
    """float32 and int8 bytes of a one-input tf function (int8 input/output for int8),
    calibrated on uniform noise in [low, high], or on `sample` when given."""
    spec = tf.TensorSpec(shape, dtype)
    concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            if sample is not None:
                yield [sample.astype(np.float32)]
            else:
                yield [rng.uniform(low, high, shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    float_bytes = converter.convert()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if dtype == tf.float32:
        converter.inference_input_type = tf.int8
    return float_bytes, converter.convert()


def op_variants(size, num_classes, scores8):
    """Pieces of the graph that run outside the convolutions, as small models: name ->
    (float32 bytes, int8 bytes, input or None for random values). The mask heads take (and
    are calibrated on) the 1/8 scores `scores8` (1, h8, w8, C) of a padded network too, so
    they work at 8 x (h8, w8)."""
    h, w = size
    h8, w8 = scores8.shape[1:3]
    full = [1, h, w, num_classes]
    low = [1, h8, w8, num_classes]

    def argmax(x):
        return tf.cast(tf.argmax(x, axis=-1, output_type=tf.int32), tf.uint8)

    def resize(x):
        return tf.raw_ops.ResizeBilinear(images=x, size=(8 * h8, 8 * w8), half_pixel_centers=True)

    def tile(x):
        return export.upsample_mask(argmax(x), (8 * h8, 8 * w8))

    def broadcast(x):
        m = tf.reshape(argmax(x), [1, h8, 1, w8, 1])
        return tf.reshape(tf.broadcast_to(m, [1, h8, 8, w8, 8]), [1, 8 * h8, 8 * w8])

    def rescale(x):
        std = np.array([0.229, 0.224, 0.225])
        return x * (1 / (255 * std)).astype(np.float32) - (
            np.array([0.485, 0.456, 0.406]) / std
        ).astype(np.float32)

    ppm_in = keras.Input((h // 32, w // 32, 128), batch_size=1)
    ppm = keras.Model(ppm_in, pyramid_pooling(ppm_in, False))

    def pool(x):
        return ppm(x, training=False)

    def previous_head(x):
        return argmax(resize(x))

    def exact_head(quantized):
        return lambda x: exact_mask(x, (8 * h8, 8 * w8), quantized)

    float_head, _ = _op_model(exact_head(False), low, tf.float32, 0, 0, scores8)
    _, int8_head = _op_model(exact_head(True), low, tf.float32, 0, 0, scores8)
    return {
        "mask head: RESIZE_BILINEAR + ARG_MAX (previous exact)": (
            *_op_model(previous_head, low, tf.float32, 0, 0, scores8),
            scores8,
        ),
        "mask head: `exact_mask` (same mask)": (float_head, int8_head, scores8),
        f"ARG_MAX over {num_classes} classes at {h}x{w}": (
            *_op_model(argmax, full, tf.float32, -8, 8),
            None,
        ),
        f"RESIZE_BILINEAR {h8}x{w8}x{num_classes} -> {8 * h8}x{8 * w8}": (
            *_op_model(resize, low, tf.float32, -8, 8),
            None,
        ),
        "ARG_MAX at 1/8 + TILE x8 (uint8 mask)": (*_op_model(tile, low, tf.float32, -8, 8), None),
        "ARG_MAX at 1/8 + BROADCAST_TO x8": (
            *_op_model(broadcast, low, tf.float32, -8, 8),
            None,
        ),
        f"Rescaling MUL+ADD at {h}x{w}x3": (
            *_op_model(rescale, [1, h, w, 3], tf.float32, 0, 255),
            None,
        ),
        f"pyramid pooling at {h // 32}x{w // 32}x128": (
            *_op_model(pool, [1, h // 32, w // 32, 128], tf.float32, 0, 4),
            None,
        ),
    }


def _interpreter(model_bytes, threads, delegate=True, x=None):
    """A ready interpreter with its input set: `x` (float, quantized for an integer input),
    else random values."""
    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_content=model_bytes, num_threads=threads, experimental_op_resolver_type=resolver
    )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    scale, zero_point = detail["quantization"]
    if x is not None and detail["dtype"] in (np.int8, np.uint8) and scale not in (0, 1):
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])
    elif x is not None:
        x = np.asarray(x).astype(detail["dtype"])
    elif np.issubdtype(detail["dtype"], np.integer):
        info = np.iinfo(detail["dtype"])
        x = rng.integers(info.min, int(info.max) + 1, detail["shape"]).astype(detail["dtype"])
    else:
        x = rng.uniform(0, 255, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter


def time_side_by_side(interpreters, runs):
    """Median ms of each interpreter, taking turns one invocation at a time."""
    times = [[] for _ in interpreters]
    for _ in range(runs):
        for i, interpreter in enumerate(interpreters):
            start = time.perf_counter()
            interpreter.invoke()
            times[i].append((time.perf_counter() - start) * 1e3)
    return [float(np.median(t)) for t in times]


def agreement(variants, model, images):
    """Share of pixels of each exported mask equal to the Keras float32 argmax."""
    keras_masks = [
        np.argmax(model(im[None].astype(np.float32), training=False)[0], -1) for im in images
    ]  # one image per call: the reference needs no batching
    rows = {}
    for name, pair in variants.items():
        if "logits" in name:
            continue
        for precision, model_bytes in zip(("float32", "int8"), pair, strict=True):
            interpreter = _interpreter(model_bytes, 2)
            inp = interpreter.get_input_details()[0]["index"]
            out = interpreter.get_output_details()[0]["index"]
            equal = []
            for image, reference in zip(images, keras_masks, strict=True):
                interpreter.set_tensor(inp, image[None])
                interpreter.invoke()
                equal.append(np.mean(interpreter.get_tensor(out)[0] == reference))
            rows.setdefault(name, {})[precision] = 100 * float(np.mean(equal))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="trained .keras model (default: random weights)")
    parser.add_argument("--num-classes", type=int, default=19, help="for random weights")
    parser.add_argument("--size", type=parse_size, default=(512, 1024))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--images", help="folder of images: calibration and pixel agreement")
    parser.add_argument("--max-images", type=int, default=30)
    parser.add_argument("--skip-ops", action="store_true", help="only the whole-model table")
    args = parser.parse_args(argv)
    size = tuple(args.size)
    if args.model:
        model = load_keras_model(args.model)
    else:
        model = randomized_model(args.num_classes, size)
    num_classes = int(model.outputs[0].shape[-1])
    if args.images:
        images = load_images(args.images, size, args.max_images)
    else:
        images = np.random.default_rng(1).integers(0, 256, (8, *size, 3)).astype(np.uint8)
    print(
        f"{size[0]}x{size[1]}, {num_classes} classes, {args.threads} threads, "
        f"{args.runs} runs side by side; CPU shared: read the ratios",
        flush=True,
    )

    variants = model_variants(model, size, images[:16])
    timed = images[:1] if args.images else None  # a scene, else random pixels
    interpreters = [
        _interpreter(b, args.threads, x=timed) for pair in variants.values() for b in pair
    ]
    medians = time_side_by_side(interpreters, args.runs)
    print("\n| graph variant | float32 ms | int8 ms | int8 / float32 |\n|---|---:|---:|---:|")
    for i, name in enumerate(variants):
        f32, i8 = medians[2 * i], medians[2 * i + 1]
        print(f"| {name} | {f32:.1f} | {i8:.1f} | {i8 / f32:.2f} |")
    with tempfile.TemporaryDirectory() as tmp:  # sizes as files, as an app would ship them
        path = os.path.join(tmp, "m.tflite")
        sizes = []
        for pair in variants.values():
            for b in pair:
                with open(path, "wb") as f:
                    f.write(b)
                sizes.append(os.path.getsize(path) / 1e6)
    print(f"\nfile sizes: float32 {sizes[0]:.2f} MB, int8 {sizes[1]:.2f} MB")

    if not args.skip_ops:
        scores = keras.Model(model.inputs, model.get_layer(export.STRIDE8_LAYER).output)
        scores8 = scores(images[:1].astype(np.float32), training=False).numpy()
        ops = op_variants(size, num_classes, scores8)
        interpreters = []
        for *pair, sample in ops.values():
            for b in pair:
                interpreters += [
                    _interpreter(b, args.threads, x=sample),
                    _interpreter(b, args.threads, delegate=False, x=sample),
                ]
        medians = time_side_by_side(interpreters, args.runs)
        print(
            f"\nThe mask heads run on the 1/8 scores of the first image: "
            f"{boundary_share(scores8[0]):.1%} of the 8x8 cells hold a class boundary."
        )
        print("\n| op / stage | float32 ms (no XNNPACK) | int8 ms (no XNNPACK) |\n|---|---:|---:|")
        for i, name in enumerate(ops):
            f, fn, q, qn = medians[4 * i : 4 * i + 4]
            print(f"| {name} | {f:.2f} ({fn:.2f}) | {q:.2f} ({qn:.2f}) |")

    if args.images and args.model:
        rows = agreement(variants, model, images)
        print(
            f"\nPixels equal to the Keras float32 argmax at {size[0]}x{size[1]}, "
            f"{len(images)} images of {args.images}:\n"
        )
        print("| mask variant | float32 | int8 |\n|---|---:|---:|")
        for name, row in rows.items():
            print(f"| {name} | {row['float32']:.2f}% | {row['int8']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
