package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class OutputTest {
    private val input = TensorInfo(intArrayOf(1, 4, 4, 3), "uint8")

    private fun bytes(vararg v: Int) = ByteArray(v.size) { v[it].toByte() }

    @Test
    fun maskPassesThroughAsUnsigned() {
        assertArrayEquals(intArrayOf(0, 3, 200, 255), maskToClassMap(bytes(0, 3, 200, 255)))
    }

    @Test
    fun floatArgmaxTakesLowestIndexOnTies() {
        val logits = floatArrayOf(
            0.1f, 0.7f, 0.2f, // -> 1
            0.5f, 0.5f, 0.1f, // tie -> 0
            -3f, -2f, -2f, // tie -> 1
            0f, 0f, 0f, // all equal -> 0
        )
        assertArrayEquals(intArrayOf(1, 0, 1, 0), argmax(logits, 3))
    }

    @Test
    fun quantizedArgmaxComparesStoredValues() {
        // 200 beats 100 only when read as uint8; as int8 200 is -56.
        val raw = bytes(100, 200, 7, 7, 255, 0)
        assertArrayEquals(intArrayOf(1, 0, 0), argmaxQuantized(raw, 2, signed = false))
        assertArrayEquals(intArrayOf(0, 0, 1), argmaxQuantized(raw, 2, signed = true))
        assertArrayEquals(intArrayOf(1), argmaxQuantized(bytes(-128, -1), 2, signed = true))
    }

    @Test
    fun decodesEveryOutputKind() {
        val mask = ModelSpec.of(input, TensorInfo(intArrayOf(1, 1, 2), "uint8"), 4)
        assertArrayEquals(intArrayOf(3, 1), decodeOutput(bytes(3, 1), mask))

        val floats = ModelSpec.of(input, TensorInfo(intArrayOf(1, 1, 2, 2), "float32"), 2)
        // Little-endian 1.0f = 00 00 80 3F, -2.0f = 00 00 00 C0.
        val raw = bytes(0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0xC0, 0, 0, 0x80, 0x3F)
        assertArrayEquals(intArrayOf(0, 1), decodeOutput(raw, floats))

        val int8 = ModelSpec.of(input, TensorInfo(intArrayOf(1, 1, 2, 2), "int8", 0.1f, -5), 2)
        assertArrayEquals(intArrayOf(0, 1), decodeOutput(bytes(-1, -100, -100, 3), int8))

        val uint8 = ModelSpec.of(input, TensorInfo(intArrayOf(1, 1, 2, 2), "uint8", 0.1f, 128), 2)
        assertArrayEquals(intArrayOf(1, 0), decodeOutput(bytes(1, 255, 255, 1), uint8))
    }

    @Test
    fun rejectsWrongOutputSize() {
        val spec = ModelSpec.of(input, TensorInfo(intArrayOf(1, 2, 2), "uint8"), 4)
        val e = assertThrows(IllegalArgumentException::class.java) { decodeOutput(ByteArray(3), spec) }
        assertEquals("output has 3 bytes, the model's output tensor has 4", e.message)
        assertThrows(IllegalArgumentException::class.java) { argmax(FloatArray(5), 2) }
    }

    @Test
    fun classMapForFrameUpsamplesByNearest() {
        val spec = ModelSpec.of(input, TensorInfo(intArrayOf(1, 1, 2), "uint8"), 4)
        assertArrayEquals(intArrayOf(3, 3, 1, 1, 3, 3, 1, 1), classMapForFrame(bytes(3, 1), spec, 4, 2))
    }
}
