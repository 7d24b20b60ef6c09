package dev.fastscnn.core

/**
 * What the app knows about one model tensor, read from the interpreter: shape, element type
 * by its numpy name ("uint8", "int8", "float32", ...) and affine quantization (scale 0 when
 * the tensor is not quantized).
 */
class TensorInfo(
    shape: IntArray,
    val dtype: String,
    val scale: Float = 0f,
    val zeroPoint: Int = 0,
) {
    val shape: IntArray = shape.copyOf()

    override fun toString(): String = "${shape.contentToString()} $dtype"
}

/** How the output tensor encodes classes. */
sealed interface OutputKind {
    /** `[1, H, W]` uint8 class indices (the model already took the argmax). */
    data object Mask : OutputKind

    /** `[1, h, w, C]` scores; [dtype] is "float32", "uint8" or "int8". */
    data class Logits(val dtype: String, val scale: Float, val zeroPoint: Int) : OutputKind
}

/**
 * The model's interface as the app uses it, built by [ModelSpec.of] from the tensors and the
 * number of labels, and checked there so that a model and labels file that disagree fail
 * at load time with a message saying how, not with garbage colours.
 */
data class ModelSpec(
    val inputHeight: Int,
    val inputWidth: Int,
    val outputHeight: Int,
    val outputWidth: Int,
    val numClasses: Int,
    val output: OutputKind,
) {
    /** Bytes of the raw output tensor. */
    val outputBytes: Int
        get() = outputHeight * outputWidth * when (output) {
            OutputKind.Mask -> 1
            is OutputKind.Logits -> numClasses * (if (output.dtype == "float32") 4 else 1)
        }

    override fun toString(): String {
        val out = when (output) {
            OutputKind.Mask -> "uint8 mask"
            is OutputKind.Logits -> "${output.dtype} logits"
        }
        return "${inputHeight}x$inputWidth uint8 -> ${outputHeight}x$outputWidth $out, $numClasses classes"
    }

    companion object {
        private val LOGIT_TYPES = setOf("float32", "uint8", "int8")

        /** Validates the tensors against the app's contract; see the messages for the rules. */
        fun of(input: TensorInfo, output: TensorInfo, numLabels: Int): ModelSpec {
            require(numLabels > 0) { "labels.txt lists no classes" }
            val inShape = input.shape
            require(inShape.size == 4 && inShape[0] == 1 && inShape[3] == 3 && input.dtype == "uint8") {
                "model input must be [1, H, W, 3] uint8 (RGB bytes), got $input; " +
                    "export the model with uint8 input"
            }
            require(inShape[1] > 0 && inShape[2] > 0) { "model input has no fixed size: $input" }
            val outShape = output.shape
            return when {
                outShape.size == 3 -> {
                    require(outShape[0] == 1 && outShape[1] > 0 && outShape[2] > 0 && output.dtype == "uint8") {
                        "a 3-d model output must be a [1, H, W] uint8 class mask, got $output"
                    }
                    require(numLabels <= 256) {
                        "a uint8 mask can index 256 classes, but labels.txt has $numLabels"
                    }
                    ModelSpec(inShape[1], inShape[2], outShape[1], outShape[2], numLabels, OutputKind.Mask)
                }
                outShape.size == 4 -> {
                    require(outShape[0] == 1 && outShape[1] > 0 && outShape[2] > 0 && output.dtype in LOGIT_TYPES) {
                        "a 4-d model output must be [1, h, w, C] float32/uint8/int8 logits, got $output"
                    }
                    require(outShape[3] == numLabels) {
                        "the model scores ${outShape[3]} classes but labels.txt has $numLabels; " +
                            "use the labels.txt exported with this model"
                    }
                    require(output.dtype == "float32" || output.scale > 0f) {
                        "quantized logits need a scale > 0 to keep their order, got ${output.scale}"
                    }
                    val kind = OutputKind.Logits(output.dtype, output.scale, output.zeroPoint)
                    ModelSpec(inShape[1], inShape[2], outShape[1], outShape[2], numLabels, kind)
                }
                else -> throw IllegalArgumentException(
                    "model output must be a [1, H, W] uint8 mask or [1, h, w, C] logits, got $output",
                )
            }
        }
    }
}
