"""Class masks of LiteRT models on the CPU this runs on: one side of `make arm64-test`.

It needs only numpy and ai_edge_litert, so the same file runs under the host's Python (x86) and
under the emulated ARM64 Python (`.arm64/run VERSION CPU tflite/arm64/masks.py ...`). Every model
gets the same decoded images; a mask output is kept as it is, scores become their ARG_MAX.

    masks.py IMAGES.npy OUT.npz --model NAME=PATH [...] --threads 2 --kernels xnnpack
"""

import argparse
import os
import platform

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

# builtin: LiteRT's own kernels, without the XNNPACK delegate it applies by default.
RESOLVERS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def model_input(image, detail):
    """`image` (H, W, 3 uint8) as the model takes it: uint8 as is (the int8 models fold the
    quantization in), float models the same 0..255 values as float32."""
    return image[None].astype(detail["dtype"])


def masks(path, images, threads, kernels):
    """(N, H, W) uint8 class masks of the model at `path` for `images` (N, H, W, 3) uint8."""
    interpreter = Interpreter(
        model_path=path, num_threads=threads, experimental_op_resolver_type=RESOLVERS[kernels]
    )
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(source["index"], model_input(image, source))
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"])[0]
        # A quantized score keeps its order (scale > 0), so ARG_MAX needs no dequantization.
        results.append(output if output.ndim == 2 else np.argmax(output, axis=-1))
    return np.stack(results).astype(np.uint8)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", help=".npy of (N, H, W, 3) uint8 images")
    parser.add_argument("out", help=".npz written with one (N, H, W) mask array per model")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kernels", choices=sorted(RESOLVERS), default="xnnpack")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    images = np.load(args.images)
    results = {}
    for entry in args.model:
        name, path = entry.split("=", 1)
        results[name] = masks(path, images, args.threads, args.kernels)
    results["machine"] = np.array(platform.machine())
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, **results)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
