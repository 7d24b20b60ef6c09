package dev.fastscnn.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class ModelSpecTest {
    private val input = TensorInfo(intArrayOf(1, 96, 128, 3), "uint8", 1f, 0)

    private fun error(output: TensorInfo, labels: Int, input: TensorInfo = this.input): String? =
        assertThrows(IllegalArgumentException::class.java) { ModelSpec.of(input, output, labels) }.message

    @Test
    fun readsAMaskModel() {
        val spec = ModelSpec.of(input, TensorInfo(intArrayOf(1, 96, 128), "uint8"), 11)
        assertEquals(ModelSpec(96, 128, 96, 128, 11, OutputKind.Mask), spec)
        assertEquals(96 * 128, spec.outputBytes)
        assertEquals("96x128 uint8 -> 96x128 uint8 mask, 11 classes", spec.toString())
    }

    @Test
    fun readsLogitModels() {
        val q = ModelSpec.of(input, TensorInfo(intArrayOf(1, 12, 16, 19), "int8", 0.05f, -3), 19)
        assertEquals(OutputKind.Logits("int8", 0.05f, -3), q.output)
        assertEquals(12 * 16 * 19, q.outputBytes)
        val f = ModelSpec.of(input, TensorInfo(intArrayOf(1, 12, 16, 19), "float32"), 19)
        assertEquals(12 * 16 * 19 * 4, f.outputBytes)
    }

    @Test
    fun explainsDisagreements() {
        assertEquals(
            "the model scores 19 classes but labels.txt has 11; use the labels.txt exported with this model",
            error(TensorInfo(intArrayOf(1, 12, 16, 19), "float32"), 11),
        )
        assertEquals(
            "model input must be [1, H, W, 3] uint8 (RGB bytes), got [1, 96, 128, 3] float32; " +
                "export the model with uint8 input",
            error(TensorInfo(intArrayOf(1, 96, 128), "uint8"), 11, TensorInfo(intArrayOf(1, 96, 128, 3), "float32")),
        )
        assertEquals(
            "a 3-d model output must be a [1, H, W] uint8 class mask, got [1, 96, 128] int32",
            error(TensorInfo(intArrayOf(1, 96, 128), "int32"), 11),
        )
        assertEquals(
            "quantized logits need a scale > 0 to keep their order, got 0.0",
            error(TensorInfo(intArrayOf(1, 12, 16, 4), "uint8"), 4),
        )
        assertEquals("labels.txt lists no classes", error(TensorInfo(intArrayOf(1, 2, 2), "uint8"), 0))
        assertEquals(
            "a uint8 mask can index 256 classes, but labels.txt has 300",
            error(TensorInfo(intArrayOf(1, 2, 2), "uint8"), 300),
        )
        assertEquals(
            "model output must be a [1, H, W] uint8 mask or [1, h, w, C] logits, got [1, 2] uint8",
            error(TensorInfo(intArrayOf(1, 2), "uint8"), 3),
        )
        error(TensorInfo(intArrayOf(1, 12, 16, 4), "int16", 1f, 0), 4)
        error(TensorInfo(intArrayOf(1, 2, 2), "uint8"), 3, TensorInfo(intArrayOf(1, 96, 128, 4), "uint8"))
    }

    @Test
    fun tensorInfoKeepsItsOwnShape() {
        val shape = intArrayOf(1, 2, 2)
        val info = TensorInfo(shape, "uint8")
        shape[1] = 9
        assertEquals("[1, 2, 2] uint8", info.toString())
    }
}
