"""The reference PyTorch Fast-SCNN, rewritten: the other side of weight-import parity, of the
latency and training benchmarks and of the twin runs. Needs torch (`pip install torch==2.13.0`,
the CPU wheel); nothing in the package imports it.

Written from the paper's architecture with the module layout of the widely used reference
implementation, so that its `state_dict()` has exactly the keys and shapes of
`tests/data/fast_scnn_pytorch_state_dict.txt`. Its behaviour follows the reference too:
learning-to-downsample conv 3x3 stride 2 without padding, ReLU (not ReLU6) bottlenecks, PPM with
`AdaptiveAvgPool2d` and bilinear `align_corners=True` upsampling, and a feature fusion module
that upsamples the 1/32 stream by a fixed factor 4 (so inputs whose 1/32 map is not a quarter of
the 1/8 map, like CamVid's 360x480, fail there; the Keras model resizes to the 1/8 map instead).
"""

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
