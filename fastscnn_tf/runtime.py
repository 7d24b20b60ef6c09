"""One runtime for both model kinds: a `.keras` model or a `.tflite` file behind one interface.

Evaluate, predict and benchmark call `load_runtime(path).segment(images)`, so the parity of a
quantized TFLite model is measured by exactly the code that measures the Keras model. Images
go in as uint8 RGB `(N, H, W, 3)` at any size; class maps come back at the images' size.
Where the model has a static input size, images are resized to it (bilinear) and the output
back to the image size (logits bilinear then argmax; a class-mask output nearest).
`segment(images, scales=..., flip=True)` averages class probabilities over rescaled and
mirrored images (test-time augmentation) for models that output scores. A float preset trained
for frames larger than its data's (`preset.json` `"scale"`) sees every image at that scale.
"""

import os

import numpy as np
import tensorflow as tf

from fastscnn_tf import labels as labels_lib
from fastscnn_tf import metadata, presets, tflog
from fastscnn_tf.files import check_input_file
from fastscnn_tf.geometry import aligned_size, check_scales, check_size, scaled_size
from fastscnn_tf.modelfile import load_keras_model

KINDS = {".keras": "keras", ".tflite": "tflite"}


def _check_images(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB images (N, H, W, 3), got shape {images.shape}.")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images in [0, 255], got dtype {images.dtype}.")
    return images


def _resize_images(images, size):
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    resized = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def resize_scores(scores, size):
    """(N, h, w, C) scores -> float32 (N, H, W, C) at `size`, resized bilinearly.

    1/8 scores of a model that padded its input to a multiple of 32 (`model.PadToMultiple`)
    cover the padded size: they are resized to it and cropped.
    """
    h, w = size
    if tuple(scores.shape[1:3]) == (h, w):
        return np.asarray(scores, np.float32)
    padded = aligned_size(size)
    if (scores.shape[1] * 8, scores.shape[2] * 8) == padded != (h, w):
        return tf.image.resize(scores, padded, method="bilinear").numpy()[:, :h, :w]
    return tf.image.resize(scores, size, method="bilinear").numpy()


def logits_to_classes(logits, size):
    """(N, h, w, C) scores -> int32 (N, H, W) classes, resizing scores bilinearly first."""
    return np.argmax(resize_scores(logits, size), axis=-1).astype(np.int32)


def mask_to_size(mask, size):
    """(N, h, w) class map -> int32 (N, H, W) by nearest-neighbour resizing."""
    mask = mask.astype(np.int32)
    if tuple(mask.shape[1:3]) == tuple(size):
        return mask
    resized = tf.image.resize(mask[..., None], size, method="nearest")
    return resized.numpy()[..., 0].astype(np.int32)


class Runtime:
    """A segmentation model that maps uint8 RGB images to class maps.

    Attributes:
        kind: "keras" or "tflite".
        path: the model file.
        input_size: the model's static input `(H, W)`, or None for a dynamic Keras model.
        num_classes: number of classes the model predicts.
        labels: the model's `LabelSet` (`labels.labels_for`), or None.
        output_kind: "logits", "probabilities" or "mask" (TFLite); "logits" for Keras.
        input_scale: a dynamic model sees every image at this many times its size (a preset
            trained at 2x its data's size says 2); `scales` are relative to it. 1 for a
            static-size model, whose input size says it.
    """

    kind = ""

    def __init__(self, path, input_size, num_classes, output_kind, input_scale=1.0):
        self.path = str(path)
        self.input_size = input_size
        self.num_classes = int(num_classes)
        self.output_kind = output_kind
        if not input_scale > 0 or (input_size is not None and input_scale != 1.0):
            raise ValueError(
                f"{path}: input_scale={input_scale} needs a model of any input size and a "
                "positive scale."
            )
        self.input_scale = float(input_scale)
        self.labels = labels_lib.labels_for(path, self.num_classes)

    def _model_size(self, images):
        if self.input_size is not None:
            return self.input_size
        size = scaled_size(images.shape[1:3], self.input_scale)
        check_size(size, "image")  # the model runs at the image's own size (times input_scale)
        return size

    def _run(self, images):
        """uint8 images at the model's input size -> raw output (scores or mask)."""
        raise NotImplementedError

    def logits(self, images):
        """Float32 scores `(N, h, w, C)` as the model outputs them (its own resolution)."""
        if self.output_kind == "mask":
            raise ValueError(f"{self.path} outputs a class mask, not logits or probabilities.")
        images = _check_images(images)
        return self._run(_resize_images(images, self._model_size(images)))

    def segment(self, images, scales=(1.0,), flip=False):
        """uint8 `(N, H, W, 3)` -> int32 class maps `(N, H, W)` at the images' size.

        `scales` and `flip` add test-time augmentation (`probabilities`); the default is one
        plain pass, and a mask model's own class map.
        """
        images = _check_images(images)
        size = tuple(images.shape[1:3])
        if check_scales(scales) != (1.0,) or flip:
            return np.argmax(self.probabilities(images, scales, flip), -1).astype(np.int32)
        output = self._run(_resize_images(images, self._model_size(images)))
        if self.output_kind == "mask":
            return mask_to_size(output, size)
        return logits_to_classes(output, size)

    def check_augmentation(self, scales, flip):
        """`scales` as a tuple of floats; a ValueError if this model cannot average them."""
        scales = check_scales(scales)
        if self.output_kind == "mask" and (scales != (1.0,) or flip):
            raise ValueError(f"{self.path} outputs a class mask; averaging needs scores.")
        if self.input_size is not None and scales != (1.0,):
            h, w = self.input_size
            raise ValueError(
                f"{self.path} has a fixed input size {h}x{w}, so it cannot see images at "
                f"scales {scales}; use a model that runs at any size (.keras), or export one "
                "at the size you want."
            )
        return scales

    def probabilities(self, images, scales=(1.0,), flip=False):
        """Float32 class probabilities `(N, H, W, C)` at the images' size, averaged over the
        images scaled by each of `scales` and, with `flip`, over their mirror images too.

        Multi-scale and flip averaging of softmax scores is the usual test-time augmentation
        of segmentation benchmarks (mmsegmentation's `--aug-test`): it costs one pass per
        scale and flip (the sum of the scales squared in pixels) and helps thin and small
        classes most. Scales other than 1 need a model that runs at any size.
        """
        images = _check_images(images)
        scales = self.check_augmentation(scales, flip)
        size = tuple(images.shape[1:3])
        views = [(images, False)] + ([(images[:, :, ::-1], True)] if flip else [])
        total = 0.0
        for scale in scales:
            if self.input_size is None:
                seen = scaled_size(size, scale * self.input_scale)
            else:
                seen = scaled_size(self.input_size, scale)
            check_size(seen, f"image at scale {scale:g}")
            for view, mirrored in views:
                scores = resize_scores(self._run(_resize_images(view, seen)), size)
                if self.output_kind == "logits":
                    scores = tf.nn.softmax(scores).numpy()
                total = total + (scores[:, :, ::-1] if mirrored else scores)
        return (total / (len(scales) * len(views))).astype(np.float32)


class KerasRuntime(Runtime):
    kind = "keras"

    def __init__(self, path, model=None, input_scale=1.0):
        if model is None:
            # The one .keras loader: its errors say what is wrong with the file.
            model = load_keras_model(path)
        self.model = model
        output = model.outputs[0]
        h, w = model.inputs[0].shape[1:3]
        input_size = (int(h), int(w)) if h is not None and w is not None else None
        super().__init__(path, input_size, output.shape[-1], "logits", input_scale)
        # One graph for every size: a graph frees each activation after its last use, where
        # an eager call holds them all (half the peak memory on a large photo).
        self._forward = tf.function(
            self._main_output,
            input_signature=[tf.TensorSpec([None, h, w, 3], tf.float32)],
        )

    def _main_output(self, images):
        output = self.model(images, training=False)
        if isinstance(output, (list, tuple)):  # aux heads: the main output comes first
            output = output[0]
        return output

    def _run(self, images):
        return self._forward(images.astype(np.float32)).numpy().astype(np.float32)


def _quantize(values, detail):
    scale, zero_point = detail["quantization"]
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return values.astype(dtype)
    if scale == 0:  # an integer tensor without quantization parameters takes raw values
        return values.astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(values.astype(np.float32) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(values, detail):
    scale, zero_point = detail["quantization"]
    if scale == 0 or np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


class TFLiteRuntime(Runtime):
    kind = "tflite"

    def __init__(self, path, num_threads=None):
        try:
            self.interpreter = tflog.interpreter(path, num_threads=num_threads)
        except ValueError as error:
            raise ValueError(f"{path}: not a loadable TFLite model ({error}).") from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{path}: expected one input and one output tensor.")
        self.input_detail, self.output_detail = inputs[0], outputs[0]
        shape = tuple(int(v) for v in self.input_detail["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ValueError(f"{path}: input shape {shape} is not [1, H, W, 3].")
        out_shape = tuple(int(v) for v in self.output_detail["shape"])
        if len(out_shape) == 3:
            output_kind, num_classes = "mask", _mask_classes(path)
        elif len(out_shape) == 4:
            output_kind, num_classes = _score_kind(self.output_detail), out_shape[3]
        else:
            raise ValueError(f"{path}: output shape {out_shape} is neither [1,H,W] nor [1,H,W,C].")
        super().__init__(path, shape[1:3], num_classes, output_kind)

    def _run(self, images):
        results = []
        for image in images:
            self.interpreter.set_tensor(
                self.input_detail["index"], _quantize(image[None], self.input_detail)
            )
            self.interpreter.invoke()
            output = self.interpreter.get_tensor(self.output_detail["index"])
            results.append(
                output if self.output_kind == "mask" else _dequantize(output, self.output_detail)
            )
        return np.concatenate(results, axis=0)


def _score_kind(detail):
    # The exporter names the output tensor after what it holds ("probabilities" or "logits").
    return "probabilities" if "probabilities" in detail["name"] else "logits"


def _mask_classes(path):
    """A mask output does not carry the class count: the class names the export embedded do,
    else the labels beside the model."""
    names = metadata.read_class_names(path)
    if names:
        return len(names)
    labels = labels_lib.labels_for(path)
    if labels is None:
        raise ValueError(
            f"{path} outputs a class mask and has neither embedded labels nor a labels.txt "
            "beside it, so its number of classes is unknown."
        )
    return labels.num_classes


def load_runtime(path, num_threads=None):
    """Open a `.keras` or `.tflite` model for inference.

    Args:
        path: the model file, or a preset name (`camvid`, `camvid:int8`; see `presets`).
        num_threads: interpreter threads for TFLite (None: LiteRT's default); ignored for Keras.
    """
    input_scale = presets.input_scale(path)
    path = str(presets.resolve_model(path))
    kind = KINDS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise ValueError(f"{path}: unknown model type; expected a .keras or .tflite file.")
    check_input_file(path, "model file")  # missing, or a directory
    if kind == "keras":
        return KerasRuntime(path, input_scale=input_scale)
    return TFLiteRuntime(path, num_threads=num_threads)
