package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class OverlayTest {
    private val palette = intArrayOf(0xFFFF0000.toInt(), 0xFF00FF00.toInt())

    @Test
    fun blendsWithIntegerRounding() {
        // R: (0x10*127 + 255*128 + 127) / 255 = 34799 / 255 = 136 (0x88)
        // G: (0x20*127 + 0 + 127) / 255 = 4191 / 255 = 16 (0x10)
        // B: (0x30*127 + 0 + 127) / 255 = 6223 / 255 = 24 (0x18)
        val out = overlay(intArrayOf(0x00102030), intArrayOf(0), palette, 128)
        assertArrayEquals(intArrayOf(0xFF881018.toInt()), out)
    }

    @Test
    fun opacityEndsGiveSourceOrColour() {
        val src = intArrayOf(0x12345678, 0x7F010203)
        val map = intArrayOf(0, 1)
        assertArrayEquals(intArrayOf(0xFF345678.toInt(), 0xFF010203.toInt()), overlay(src, map, palette, 0))
        assertArrayEquals(palette, overlay(src, map, palette, 255))
    }

    @Test
    fun colorizeIsOpaquePalette() {
        val pal = intArrayOf(0x00123456, 0xFFABCDEF.toInt())
        assertArrayEquals(
            intArrayOf(0xFFABCDEF.toInt(), 0xFF123456.toInt(), 0xFFABCDEF.toInt()),
            colorize(intArrayOf(1, 0, 1), pal),
        )
    }

    @Test
    fun unknownClassIsAnError() {
        val e = assertThrows(IllegalArgumentException::class.java) { colorize(intArrayOf(0, 2), palette) }
        assertEquals("class 2 at pixel 1 has no colour: the palette has 2 classes", e.message)
        assertThrows(IllegalArgumentException::class.java) { overlay(IntArray(2), IntArray(2), palette, 256) }
        assertThrows(IllegalArgumentException::class.java) { overlay(IntArray(2), IntArray(3), palette, 9) }
    }
}
