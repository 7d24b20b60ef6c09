"""The reference PyTorch Fast-SCNN's CPU latency, and end-to-end parity of `import-weights`.

The reference model is `fastscnn_tf.torch_reference` (a rewrite with the reference's module
layout and behaviour).

    python benchmarks/reference_pytorch.py            # latency at 512x1024 + parity check
    python benchmarks/reference_pytorch.py --size 256x512 --threads 2 --runs 10
    python benchmarks/reference_pytorch.py --model runs/camvid/model.keras \\
        --images ../shared/data/camvid/val              # the int8 export on real scenes

It then times the reference forward against the project's default int8 export (uint8 image in,
exact uint8 class mask out, LiteRT + XNNPACK), alternating call by call (`--pairs` after
`--warmup` pairs), and prints the median of the pairwise ratios. The exact mask head costs more
where classes change (`fastscnn_tf.export.exact_mask`), so that export runs a model on a scene:
`--model` (default: the reference's random weights in the project's FastSCNN) on the first of
`--images` (default: a synthetic scene), and it prints how often neighbouring 8x8 blocks of
the mask differ in class.

Needs torch (`pip install torch==2.13.0`, the CPU wheel).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from fastscnn_tf.torch_reference import FastSCNN, normalize, randomize


def import_with_cli(model, workdir, aux):
    """Save `model`'s state dict as .pth and run `fastscnn import-weights` on it (a subprocess,
    so torch and TensorFlow don't share this process' threads); returns the .keras path."""
    checkpoint = os.path.join(workdir, "reference.pth")
    output = os.path.join(workdir, "imported.keras")
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    command = [sys.executable, "-m", "fastscnn_tf.cli", "import-weights", checkpoint]
    command += ["--output", output] + (["--aux"] if aux else [])
    subprocess.run(command, check=True)
    return output


def parity(model, imported, images):
    """Max abs difference of main (and aux) logits: reference vs imported Keras model; also the
    largest |logit| so the difference can be read relative to the output scale."""
    with torch.inference_mode():
        expected = [y.permute(0, 2, 3, 1).numpy() for y in model(normalize(images))]
    got = imported.predict(images, verbose=0)
    got = got if isinstance(got, list) else [got]
    return [
        (float(abs(g - e).max()), float(abs(e).max())) for g, e in zip(got, expected, strict=True)
    ]


def time_side_by_side(reference, imported, images, runs, warmup=2):
    """Forward times (s) of the PyTorch and the Keras model, alternating run by run so that both
    see the same load on a shared machine."""
    import tensorflow as tf

    forward = tf.function(lambda x: imported(x, training=False))
    keras_input = tf.constant(images)
    torch_input = normalize(images)
    times = {"torch": [], "keras": []}
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            reference(torch_input)
            middle = time.perf_counter()
            forward(keras_input).numpy()
            end = time.perf_counter()
            if i >= warmup:
                times["torch"].append(middle - start)
                times["keras"].append(end - middle)
    return times


def time_pairs(first, second, pairs, warmup):
    """Seconds of `first()` and `second()` called in turn: `warmup` untimed pairs, then `pairs`
    timed ones, so that a shared machine's load falls on both alike."""
    times = ([], [])
    for i in range(warmup + pairs):
        for fn, out in zip((first, second), times, strict=True):
            start = time.perf_counter()
            fn()
            if i >= warmup:
                out.append(time.perf_counter() - start)
    return np.array(times[0]), np.array(times[1])


def int8_mask_runner(model, image, calibration, threads):
    """(invoke, mask) of the project's default int8 export of `model` at the image's size (the
    exact full-size class mask), with `image` (H, W, 3) uint8 set as its input."""
    from ai_edge_litert.interpreter import Interpreter

    from fastscnn_tf import export

    size = image.shape[:2]
    serve = export.build_export_model(model, export.ExportSpec(size, "int8"))
    images = [x[None].astype(np.float32) for x in calibration]
    interpreter = Interpreter(
        model_content=export.convert(serve, "int8", lambda: ([x] for x in images)),
        num_threads=threads,
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
    interpreter.invoke()
    mask = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    return interpreter.invoke, mask


def scenes(folder, size, count=8):
    """Up to `count` uint8 images (count, H, W, 3): the sorted .jpg/.png of `folder` resized,
    or synthetic scenes when `folder` is None."""
    from tflite_ops import load_images

    from fastscnn_tf.data import synthetic

    if folder is None:
        return np.stack([synthetic.example(i, size=size)[0] for i in range(count)])
    return load_images(folder, size, count)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="512x1024", help="input HxW (default 512x1024)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each (default 2)")
    parser.add_argument("--runs", type=int, default=10, help="timed forward passes")
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--pairs", type=int, default=30, help="timed pairs, reference vs int8")
    parser.add_argument("--warmup", type=int, default=8, help="untimed pairs first")
    parser.add_argument("--model", help="trained .keras for the int8 export (see above)")
    parser.add_argument("--images", help="folder: int8 calibration and the timed scene")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    model = randomize(FastSCNN(args.num_classes, aux=True))
    params = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("auxlayer"))
    print(f"reference Fast-SCNN: {params:,} parameters without aux head")

    single = FastSCNN(args.num_classes).eval()
    main_head = {k: v for k, v in model.state_dict().items() if not k.startswith("auxlayer.")}
    single.load_state_dict(main_head)
    try:
        single(torch.randn(1, 3, 360, 480))
        print("reference at 360x480: ran")
    except RuntimeError as error:
        print(f"reference at 360x480 fails: {str(error).splitlines()[0]}")

    # TensorFlow only here, so the PyTorch model above works (e.g. makes checkpoints) without it.
    import keras
    import tensorflow as tf

    import fastscnn_tf.layers  # noqa: F401  (registers the custom layers for loading .keras)

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with tempfile.TemporaryDirectory() as workdir:
        imported = keras.saving.load_model(import_with_cli(model, workdir, aux=True))
    images = torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(1)).numpy() * 255
    diffs = parity(model, imported, images)
    for name, (diff, scale) in zip(("main", "aux"), diffs, strict=True):
        print(f"{name} logits {h}x{w}: max |keras - torch| {diff:.2e}, max |logit| {scale:.2f}")
    small = (torch.rand(1, 360, 480, 3).numpy() * 255).astype("float32")
    print(f"imported Keras model at 360x480: logits {imported.predict(small, verbose=0)[0].shape}")

    main_only = keras.Model(imported.input, imported.outputs[0])  # same layers, no aux head
    times = time_side_by_side(single, main_only, images, args.runs)
    print(f"forward {h}x{w}, batch 1, {args.threads} threads, {args.runs} runs alternating:")
    for name, label in (("torch", "reference PyTorch"), ("keras", "imported Keras float32")):
        print(
            f"  {label:<24} median {np.median(times[name]) * 1e3:7.1f} ms"
            f"   min {min(times[name]) * 1e3:7.1f} ms"
        )
    ratio = np.median(times["keras"]) / np.median(times["torch"])
    print(f"  ratio keras/torch (median) {ratio:.2f}")

    from fastscnn_tf.export.exact_mask import FACTOR
    from fastscnn_tf.model import FastSCNN as ProjectFastSCNN
    from fastscnn_tf.modelfile import load_keras_model

    if args.model:
        project = load_keras_model(args.model)
    else:  # the same random weights in the project's own network (half-pixel upsampling)
        project = ProjectFastSCNN(args.num_classes, aux=True)
        project.set_weights(imported.get_weights())
        project = keras.Model(project.input, project.outputs[0])
    images = scenes(args.images, (h, w))
    run_int8, mask = int8_mask_runner(project, images[0], images, args.threads)
    cells = mask[FACTOR // 2 :: FACTOR, FACTOR // 2 :: FACTOR]  # one pixel per 8x8 block
    changes = np.mean((cells[1:] != cells[:-1])[:, 1:] | (cells[:, 1:] != cells[:, :-1])[1:])
    torch_scene = normalize(images[:1].astype(np.float32))
    with torch.inference_mode():
        reference, int8 = time_pairs(lambda: single(torch_scene), run_int8, args.pairs, args.warmup)
    print(
        f"reference forward vs int8 exact-mask export ({args.model or 'random weights'} on "
        f"{args.images or 'a synthetic scene'}; classes change between {changes:.1%} of "
        f"neighbouring 8x8 blocks), {h}x{w}, {args.threads} threads, {args.pairs} pairs "
        f"after {args.warmup}:"
    )
    for name, t in (("reference PyTorch", reference), ("int8 exact mask", int8)):
        print(f"  {name:<24} median {np.median(t) * 1e3:7.1f} ms   min {t.min() * 1e3:7.1f} ms")
    print(f"  median pairwise ratio reference/int8 {np.median(reference / int8):.2f}")


if __name__ == "__main__":
    main()
