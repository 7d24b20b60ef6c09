"""Fast-SCNN as a Keras 3 functional model.

Poudel, Liwicki, Cipolla, "Fast-SCNN: Fast Semantic Segmentation Network", BMVC 2019.
The parameter structure follows the reference PyTorch implementation layer for layer (its
state-dict layout is in `shared/reference/fast_scnn_pytorch_state_dict.txt`), so its
checkpoints load with `fastscnn_tf.weights` and reproduce its outputs.

Layer names say where a layer sits in the paper: `ltd_*` learning to downsample,
`gfe_b{stage}_{block}_*` global-feature-extractor bottlenecks, `gfe_ppm_*` pyramid pooling,
`ffm_*` feature fusion, `cls_*` classifier, `aux_*` / `aux2_*` auxiliary heads.
"""

import keras
import numpy as np

from fastscnn_tf import presets
from fastscnn_tf.geometry import ALIGN, check_size, needs_alignment
from fastscnn_tf.layers import (
    AdaptiveAveragePooling,
    BatchNorm,
    CropLike,
    PadToMultiple,
    ResizeLike,
)

BN_EPSILON = 1e-5  # PyTorch's BatchNorm2d default, as in the reference.
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1 is Keras momentum 0.9.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PPM_BINS = (1, 2, 3, 6)
# (expanded-from channels, out channels, blocks, first stride) of the three bottleneck stages.
GFE_STAGES = ((64, 64, 3, 2), (64, 96, 3, 2), (96, 128, 3, 1))
EXPANSION = 6


def _bn(x, name):
    return BatchNorm(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _pad_for_stride(x, stride, name):
    # PyTorch pads 3x3 convs by 1 on every side; Keras "same" pads stride-2 convs only at the
    # bottom/right on even sizes, which shifts every window. Pad explicitly to stay identical.
    if stride == 1:
        return x, "same"
    return keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x), "valid"


def conv_bn_relu(x, filters, kernel_size, name, strides=1, padding="valid"):
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    x = _bn(x, f"{name}_bn")
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def depthwise_bn_relu(x, stride, name):
    x, padding = _pad_for_stride(x, stride, name)
    x = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding=padding, use_bias=False, name=f"{name}_dw"
    )(x)
    x = _bn(x, f"{name}_dw_bn")
    return keras.layers.ReLU(name=f"{name}_dw_relu")(x)


def dsconv(x, filters, stride, name):
    """Depthwise-separable conv: dw 3x3 + BN + ReLU, then pw 1x1 + BN + ReLU."""
    x = depthwise_bn_relu(x, stride, name)
    return conv_bn_relu(x, filters, 1, f"{name}_pw")


def bottleneck(x, filters, stride, name):
    """MobileNetV2 inverted residual: expand 1x1, dw 3x3, linear 1x1 projection."""
    in_channels = x.shape[-1]
    y = conv_bn_relu(x, in_channels * EXPANSION, 1, f"{name}_expand")
    y = depthwise_bn_relu(y, stride, name)
    y = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = _bn(y, f"{name}_project_bn")
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def learning_to_downsample(x):
    # The reference's first conv has no padding (PyTorch padding=0).
    x = conv_bn_relu(x, 32, 3, "ltd_conv", strides=2)
    x = dsconv(x, 48, 2, "ltd_dsconv1")
    return dsconv(x, 64, 2, "ltd_dsconv2")


def pyramid_pooling(x, align_corners, name="gfe_ppm"):
    channels = x.shape[-1]
    branches = [x]
    for bins in PPM_BINS:
        prefix = f"{name}_bin{bins}"
        y = AdaptiveAveragePooling(bins, name=f"{prefix}_pool")(x)
        y = conv_bn_relu(y, channels // 4, 1, f"{prefix}_conv")
        branches.append(ResizeLike(align_corners, name=f"{prefix}_up")([y, x]))
    y = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    return conv_bn_relu(y, channels, 1, f"{name}_out")


def global_feature_extractor(x, align_corners):
    for stage, (_, filters, blocks, stride) in enumerate(GFE_STAGES, start=1):
        for block in range(1, blocks + 1):
            x = bottleneck(x, filters, stride if block == 1 else 1, f"gfe_b{stage}_{block}")
    return pyramid_pooling(x, align_corners)


def feature_fusion(high, low, align_corners, filters=128, name="ffm"):
    low = ResizeLike(align_corners, name=f"{name}_up")([low, high])
    low = depthwise_bn_relu(low, 1, f"{name}_low")
    low = keras.layers.Conv2D(filters, 1, name=f"{name}_low_conv")(low)
    low = _bn(low, f"{name}_low_bn")
    high = keras.layers.Conv2D(filters, 1, name=f"{name}_high_conv")(high)
    high = _bn(high, f"{name}_high_bn")
    x = keras.layers.Add(name=f"{name}_add")([high, low])
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def classifier(x, num_classes, dropout, name="cls"):
    x = dsconv(x, 128, 1, f"{name}_dsconv1")
    x = dsconv(x, 128, 1, f"{name}_dsconv2")
    x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Conv2D(num_classes, 1, name=f"{name}_conv")(x)


def aux_head(x, num_classes, dropout, name):
    x = conv_bn_relu(x, 32, 3, f"{name}_conv", padding="same")
    x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Conv2D(num_classes, 1, name=f"{name}_cls")(x)


def _upsample_to_input(x, padded, image, align_corners, name):
    # float32 so that softmax and the loss stay in full precision under mixed precision.
    if padded is image:
        return ResizeLike(align_corners, name=name, dtype="float32")([x, image])
    x = ResizeLike(align_corners, name=f"{name}_up", dtype="float32")([x, padded])
    return CropLike(name=name, dtype="float32")([x, image])


def FastSCNN(
    num_classes,
    input_shape=(None, None, 3),
    aux=False,
    aux2=False,
    align_corners=False,
    dropout=0.1,
    include_preprocessing=True,
    align=ALIGN,
    name="fast_scnn",
):
    """Fast-SCNN semantic segmentation network.

    Args:
        num_classes: number of output classes.
        input_shape: `(H, W, 3)`; `(None, None, 3)` accepts any size from 64x64 up (training,
            evaluation); a static size is what TFLite export wants.
        aux: add the auxiliary head on the 1/8 learning-to-downsample output (training aid,
            loss weight 0.4 in the paper).
        aux2: add the paper's second auxiliary head on the global-feature-extractor output.
        align_corners: bilinear upsampling with corner alignment, as the PyTorch reference;
            the default (half-pixel centres) is what TFLite's delegates and tf.image prefer.
        dropout: dropout rate before the classifier's and the aux heads' last 1x1 conv.
        include_preprocessing: the model takes RGB in [0, 255] and normalises with ImageNet
            mean/std itself (no weights); otherwise it takes already-normalised input.
        align: pad the input (zeros, bottom/right) to a multiple of this and crop the outputs
            back, so that any size gets the accuracy of an aligned one (see `PadToMultiple`);
            0 runs the network at the input size as it is. No-op for aligned static sizes.
        name: model name.

    Returns:
        A `keras.Model` returning logits `(N, H, W, num_classes)` at the input size, or the
        list `[main, aux]`, `[main, aux2]` or `[main, aux, aux2]` when aux heads are enabled.

    Example:
        >>> model = FastSCNN(19, input_shape=(512, 1024, 3))
        >>> model(np.zeros((1, 512, 1024, 3), "float32")).shape
        TensorShape([1, 512, 1024, 19])
    """
    check_size(input_shape[:2], "input_shape")
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape={tuple(input_shape)}: expected (H, W, 3) RGB.")

    image = keras.Input(shape=input_shape, name="image")
    x = image
    if needs_alignment(input_shape, align):
        x = PadToMultiple(align, name="align_pad")(x)
    padded = x
    if include_preprocessing:
        std = np.array(IMAGENET_STD)
        x = keras.layers.Rescaling(
            scale=list(1.0 / (255.0 * std)),
            offset=list(-np.array(IMAGENET_MEAN) / std),
            name="preprocess",
        )(x)
    high = learning_to_downsample(x)
    low = global_feature_extractor(high, align_corners)
    fused = feature_fusion(high, low, align_corners)
    logits = classifier(fused, num_classes, dropout)
    outputs = [_upsample_to_input(logits, padded, image, align_corners, "logits")]
    if aux:
        y = aux_head(high, num_classes, dropout, "aux")
        outputs.append(_upsample_to_input(y, padded, image, align_corners, "aux_logits"))
    if aux2:
        y = aux_head(low, num_classes, dropout, "aux2")
        outputs.append(_upsample_to_input(y, padded, image, align_corners, "aux2_logits"))
    return keras.Model(image, outputs[0] if len(outputs) == 1 else outputs, name=name)


def init_like_pytorch(model, seed=0):
    """Redraw every conv's kernel and bias as PyTorch's `nn.Conv2d` draws them by default, in
    place: uniform in +-1/sqrt(fan_in), fan_in = input channels per group x kernel area.
    Returns `model`.

    Keras' glorot_uniform counts a depthwise kernel's fan_in as channels x 9, so it draws
    depthwise kernels up to 8x smaller than the reference (1/3 for any 3x3 depthwise kernel).
    A kernel before batch norm trains at an effective rate of about lr / |w|^2, so the two
    initialisations start the same recipe at different speeds. Batch norm starts at gamma 1,
    beta 0 in both.

    Example:
        >>> model = init_like_pytorch(FastSCNN(11, aux=True), seed=0)
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            fan_in = int(np.prod(layer.kernel.shape[:2]))  # one input channel per group
        elif isinstance(layer, keras.layers.Conv2D):
            fan_in = int(np.prod(layer.kernel.shape[:3]))
        else:
            continue
        bound = fan_in**-0.5
        for weight in (layer.kernel, layer.bias):
            if weight is not None:
                weight.assign(rng.uniform(-bound, bound, tuple(weight.shape)).astype("float32"))
    return model


def copy_weights_by_name(model, source):
    """Copy `source`'s weights into `model` layer by layer (the names say where a layer sits
    in the paper, the same in every Fast-SCNN built here); returns what happened.

    Returns:
        dict with `loaded` (layer names), `reinitialised` ([(name, why)]: shapes differ, e.g.
        the classifier for another class count), `not_in_source` (model layers the source
        lacks, e.g. an aux head) and `unused` (source layers the model lacks).
    """
    found = {layer.name: layer for layer in source.layers if layer.weights}
    report = {"loaded": [], "reinitialised": [], "not_in_source": [], "unused": []}
    for layer in model.layers:
        if not layer.weights:
            continue
        other = found.pop(layer.name, None)
        if other is None:
            report["not_in_source"].append(layer.name)
            continue
        have = [tuple(w.shape) for w in layer.weights]
        given = [tuple(w.shape) for w in other.weights]
        if have != given:
            report["reinitialised"].append((layer.name, f"source {given[0]}, here {have[0]}"))
            continue
        layer.set_weights(other.get_weights())
        report["loaded"].append(layer.name)
    report["unused"] = sorted(found)
    return report


def aligns_corners(model):
    """Whether a Fast-SCNN upsamples with `align_corners=True` (as the PyTorch reference)."""
    return any(isinstance(layer, ResizeLike) and layer.align_corners for layer in model.layers)


def inference_model(model, num_classes=None):
    """The deployable network of a (training) Fast-SCNN: no aux heads, any input size,
    float32, the same upsampling; weights copied by layer name."""
    num_classes = num_classes or int(model.outputs[0].shape[-1])
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        result = FastSCNN(num_classes, align_corners=aligns_corners(model))
    finally:
        keras.config.set_dtype_policy(previous)
    for layer in result.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return result


def from_preset(name, num_classes=None, *, aux=False, aux2=False):
    """The trained preset `name` (`fastscnn presets`) as a float Fast-SCNN taking RGB in
    [0, 255] at any size, read from the package (nothing is downloaded).

    With another `num_classes`, or aux heads for training, the network is built for them and
    every layer that fits is loaded: only the classifier (and the aux heads) start fresh, as
    keras-hub's `from_preset(..., num_classes=)` does. A preset trained for frames larger than
    its data's (`presets.info(name)["scale"]`, 2 for `camvid`) expects images at that scale:
    resize them first, or let `runtime.load_runtime(name)` do it.

    Example:
        >>> model = FastSCNN.from_preset("camvid")                    # 11 CamVid classes
        >>> model = FastSCNN.from_preset("camvid", num_classes=6, aux=True)  # to fine-tune
    """
    from fastscnn_tf.modelfile import load_keras_model

    trained = load_keras_model(presets.path(name, "float"))
    classes = int(trained.outputs[0].shape[-1])
    if num_classes in (None, classes) and not aux and not aux2:
        return trained
    model = FastSCNN(
        num_classes or classes, aux=aux, aux2=aux2, align_corners=aligns_corners(trained)
    )
    copy_weights_by_name(model, trained)
    return model


# Keras-style preset loading, `FastSCNN.from_preset("camvid")`, as keras-hub's models offer it.
FastSCNN.from_preset = from_preset
