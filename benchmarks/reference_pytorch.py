"""The reference PyTorch Fast-SCNN, its CPU latency, and end-to-end parity of `import-weights`.

A PyTorch Fast-SCNN written from the paper's architecture with the module layout of the widely
used reference implementation, so that its `state_dict()` has exactly the keys and shapes of
`tests/data/fast_scnn_pytorch_state_dict.txt`. Its behaviour follows the reference too:
learning-to-downsample conv 3x3 stride 2 without padding, ReLU (not ReLU6) bottlenecks, PPM with
`AdaptiveAvgPool2d` and bilinear `align_corners=True` upsampling, and a feature fusion module
that upsamples the 1/32 stream by a fixed factor 4 (so inputs whose 1/32 map is not a quarter of
the 1/8 map, like CamVid's 360x480, fail there; the Keras model resizes to the 1/8 map instead).

    python benchmarks/reference_pytorch.py            # latency at 512x1024 + parity check
    python benchmarks/reference_pytorch.py --size 256x512 --threads 2 --runs 10
    python benchmarks/reference_pytorch.py --model runs/camvid/model.keras \\
        --images ../shared/data/camvid/val              # the int8 export on real scenes

It then times the reference forward against the project's default int8 export (uint8 image in,
exact uint8 class mask out, LiteRT + XNNPACK), alternating call by call (`--pairs` after
`--warmup` pairs), and prints the median of the pairwise ratios. The exact mask head costs more
where classes change (`fastscnn_tf.exact_mask`), so that export runs a model on a scene:
`--model` (default: the reference's random weights in the project's FastSCNN) on the first of
`--images` (default: a synthetic scene), and it prints how often neighbouring 8x8 blocks of
the mask differ in class.

Needs torch (`pip install torch==2.13.0`, the CPU wheel); used by tests/test_weights.py too.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _upsample(x, size):
    return F.interpolate(x, size, mode="bilinear", align_corners=True)


class ConvBNReLU(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )

    def forward(self, x):
        return self.conv(x)


class DWConv(nn.Module):
    """Depthwise 3x3 + BN + ReLU."""

    def __init__(self, channels, stride=1):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        )

    def forward(self, x):
        return self.conv(x)


class DSConv(nn.Module):
    """Depthwise-separable conv: depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )

    def forward(self, x):
        return self.conv(x)


class LinearBottleneck(nn.Module):
    def __init__(self, in_channels, out_channels, expansion=6, stride=2):
        super().__init__()
        hidden = in_channels * expansion
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.block = nn.Sequential(
            ConvBNReLU(in_channels, hidden, 1),
            DWConv(hidden, stride),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        out = self.block(x)
        return x + out if self.use_shortcut else out


class PyramidPooling(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        inter = in_channels // 4
        self.conv1 = ConvBNReLU(in_channels, inter, 1)
        self.conv2 = ConvBNReLU(in_channels, inter, 1)
        self.conv3 = ConvBNReLU(in_channels, inter, 1)
        self.conv4 = ConvBNReLU(in_channels, inter, 1)
        self.out = ConvBNReLU(in_channels * 2, out_channels, 1)

    def forward(self, x):
        size = x.shape[2:]
        feats = [
            _upsample(conv(F.adaptive_avg_pool2d(x, bins)), size)
            for conv, bins in ((self.conv1, 1), (self.conv2, 2), (self.conv3, 3), (self.conv4, 6))
        ]
        return self.out(torch.cat([x, *feats], dim=1))


class LearningToDownsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = ConvBNReLU(3, 32, 3, 2)  # padding 0, as the reference
        self.dsconv1 = DSConv(32, 48, 2)
        self.dsconv2 = DSConv(48, 64, 2)

    def forward(self, x):
        return self.dsconv2(self.dsconv1(self.conv(x)))


def _stage(in_channels, out_channels, blocks, stride):
    layers = [LinearBottleneck(in_channels, out_channels, 6, stride)]
    layers += [LinearBottleneck(out_channels, out_channels, 6, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class GlobalFeatureExtractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.bottleneck1 = _stage(64, 64, 3, 2)
        self.bottleneck2 = _stage(64, 96, 3, 2)
        self.bottleneck3 = _stage(96, 128, 3, 1)
        self.ppm = PyramidPooling(128, 128)

    def forward(self, x):
        return self.ppm(self.bottleneck3(self.bottleneck2(self.bottleneck1(x))))


class FeatureFusion(nn.Module):
    def __init__(self, higher_channels=64, lower_channels=128, out_channels=128, scale_factor=4):
        super().__init__()
        self.scale_factor = scale_factor
        self.dwconv = DWConv(lower_channels)
        self.conv_lower_res = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 1), nn.BatchNorm2d(out_channels)
        )
        self.conv_higher_res = nn.Sequential(
            nn.Conv2d(higher_channels, out_channels, 1), nn.BatchNorm2d(out_channels)
        )

    def forward(self, higher, lower):
        lower = F.interpolate(
            lower, scale_factor=self.scale_factor, mode="bilinear", align_corners=True
        )
        lower = self.conv_lower_res(self.dwconv(lower))
        return F.relu(self.conv_higher_res(higher) + lower)


class Classifier(nn.Module):
    def __init__(self, channels, num_classes):
        super().__init__()
        self.dsconv1 = DSConv(channels, channels)
        self.dsconv2 = DSConv(channels, channels)
        self.conv = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(channels, num_classes, 1))

    def forward(self, x):
        return self.conv(self.dsconv2(self.dsconv1(x)))


class FastSCNN(nn.Module):
    """Input: ImageNet-normalised NCHW; output: list [logits] (+ [aux logits]) at input size."""

    def __init__(self, num_classes, aux=False):
        super().__init__()
        self.aux = aux
        self.learning_to_downsample = LearningToDownsample()
        self.global_feature_extractor = GlobalFeatureExtractor()
        self.feature_fusion = FeatureFusion()
        self.classifier = Classifier(128, num_classes)
        if aux:
            self.auxlayer = nn.Sequential(
                nn.Conv2d(64, 32, 3, padding=1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(True),
                nn.Dropout(0.1),
                nn.Conv2d(32, num_classes, 1),
            )

    def forward(self, x):
        size = x.shape[2:]
        higher = self.learning_to_downsample(x)
        x = self.feature_fusion(higher, self.global_feature_extractor(higher))
        outputs = [_upsample(self.classifier(x), size)]
        if self.aux:
            outputs.append(_upsample(self.auxlayer(higher), size))
        return outputs


def randomize(model, seed=0):
    """Random weights, BN affine parameters and BN statistics (from `seed`), scaled so that the
    activations stay O(1) through the network: the running statistics are measured by one
    train-mode pass over random images, then jittered so they are not exact batch statistics."""
    generator = torch.Generator().manual_seed(seed)

    def draw(shape, scale, offset=0.0):
        return (torch.rand(shape, generator=generator) * 2 - 1) * scale + offset

    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(draw(module.weight.shape, (6 / fan_in) ** 0.5))
                if module.bias is not None:
                    module.bias.copy_(draw(module.bias.shape, 0.1))
        for module in batch_norms:
            module.weight.copy_(draw(module.num_features, 0.25, 1.0))
            module.bias.copy_(draw(module.num_features, 0.2))
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one pass stores the batch statistics
        model.train()
        model(torch.randn(16, 3, 128, 256, generator=generator))
        for module in batch_norms:
            module.running_mean.add_(draw(module.num_features, 0.05))
            module.running_var.mul_(draw(module.num_features, 0.2, 1.0))
            module.momentum = 0.1
    return model.eval()


def normalize(images):
    """NHWC RGB [0, 255] numpy -> the reference's ImageNet-normalised NCHW tensor."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


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
    serve = export.build_export_model(model, size, "mask", quantized_input=True)
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

    from fastscnn_tf import synthetic

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

    from fastscnn_tf.exact_mask import FACTOR
    from fastscnn_tf.export import load_keras_model
    from fastscnn_tf.model import FastSCNN as ProjectFastSCNN

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
