"""What an export makes, as one validated spec: size, precision, output kind and strides.

Every entry point (`export_tflite`, `fastscnn export`, `fastscnn benchmark`) builds an
`ExportSpec`, so each choice is checked here and only here, with errors that name the option.
"""

import dataclasses

from fastscnn_tf.geometry import check_size

PRECISIONS = ("float32", "float16", "dynamic", "int8")
OUTPUT_KINDS = ("mask", "logits", "probabilities")
OUTPUT_STRIDES = (1, 8)
MASK_STRIDES = (1, 2, 4, 8)  # where a full-size mask's ARG_MAX runs (graph.mask_head)


def check_choice(option, value, choices):
    if value not in choices:
        raise ValueError(f"{option}={value!r}: choose one of {', '.join(map(str, choices))}.")


def check_precision(precision):
    check_choice("precision", precision, PRECISIONS)


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """One exported graph.

    Args:
        size: static input `(H, W)`.
        precision: "float32", "float16", "dynamic" (int8 weights, float activations) or
            "int8" (full integer, uint8 image in).
        output_kind: "mask" (uint8 `[1, H, W]`), "logits" or "probabilities" (`[1, H, W, C]`;
            uint8 with quantization parameters for int8).
        output_stride: 1 (output at the input size) or 8 (the 1/8 map).
        mask_stride: for a mask at the input size: 1 gives the ARG_MAX of the scores bilinearly
            upsampled to the input size (exact, see `exact_mask`); 2, 4 or 8 take it at that
            fraction of the input size and upsample the class map (nearest).
    """

    size: tuple
    precision: str = "float32"
    output_kind: str = "mask"
    output_stride: int = 1
    mask_stride: int = 1

    def __post_init__(self):
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        check_size(self.size, "size=")
        check_precision(self.precision)
        check_choice("output_kind", self.output_kind, OUTPUT_KINDS)
        check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        check_choice("mask_stride", self.mask_stride, MASK_STRIDES)

    @property
    def quantized(self):
        """Full-integer int8: the graph takes its uint8 image through a fake quantization."""
        return self.precision == "int8"

    @property
    def full_size_mask(self):
        return self.output_kind == "mask" and self.output_stride == 1
