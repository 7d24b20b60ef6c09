package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class PixelsTest {
    // 3 wide, 2 high:   1 2 3
    //                   4 5 6
    private val img = intArrayOf(1, 2, 3, 4, 5, 6)

    @Test
    fun rotatesClockwise() {
        assertArrayEquals(img, rotate(img, 3, 2, 0, mirror = false))
        // 90 clockwise: the left column, read bottom-up, becomes the top row.
        assertArrayEquals(intArrayOf(4, 1, 5, 2, 6, 3), rotate(img, 3, 2, 90, mirror = false))
        assertArrayEquals(intArrayOf(6, 5, 4, 3, 2, 1), rotate(img, 3, 2, 180, mirror = false))
        assertArrayEquals(intArrayOf(3, 6, 2, 5, 1, 4), rotate(img, 3, 2, 270, mirror = false))
    }

    @Test
    fun mirrorsAfterRotating() {
        assertArrayEquals(intArrayOf(3, 2, 1, 6, 5, 4), rotate(img, 3, 2, 0, mirror = true))
        assertArrayEquals(intArrayOf(1, 4, 2, 5, 3, 6), rotate(img, 3, 2, 90, mirror = true))
        assertArrayEquals(intArrayOf(4, 5, 6, 1, 2, 3), rotate(img, 3, 2, 180, mirror = true))
        assertArrayEquals(intArrayOf(6, 3, 5, 2, 4, 1), rotate(img, 3, 2, 270, mirror = true))
    }

    @Test
    fun rotationsCompose() {
        val w = 5
        val h = 3
        val pixels = IntArray(w * h) { it * 7 + 1 }
        val twice = rotate(rotate(pixels, w, h, 90, false), h, w, 90, false)
        assertArrayEquals(rotate(pixels, w, h, 180, false), twice)
        assertArrayEquals(pixels, rotate(rotate(pixels, w, h, 90, false), h, w, 270, false))
    }

    @Test
    fun rotatedSizeSwapsForQuarterTurns() {
        assertEquals(640 to 480, rotatedSize(640, 480, 180))
        assertEquals(480 to 640, rotatedSize(640, 480, 90))
        assertEquals(480 to 640, rotatedSize(640, 480, 270))
    }

    @Test
    fun rejectsBadRotationArguments() {
        val e = assertThrows(IllegalArgumentException::class.java) { rotate(img, 3, 2, 45, false) }
        assertEquals("degrees must be 0, 90, 180 or 270, got 45", e.message)
        assertThrows(IllegalArgumentException::class.java) { rotate(img, 2, 2, 0, false) }
    }

    @Test
    fun exifOrientationsMakePhotosUpright() {
        // Independent definitions: transpose out(x, y) = in(y, x); transverse = transpose
        // through the other diagonal.
        val w = 3
        val h = 2
        val transpose = IntArray(6)
        val transverse = IntArray(6)
        for (y in 0 until w) for (x in 0 until h) {
            transpose[y * h + x] = img[x * w + y]
            transverse[y * h + x] = img[(h - 1 - x) * w + (w - 1 - y)]
        }
        fun apply(tag: Int): IntArray = exifOrientation(tag).let { rotate(img, w, h, it.degrees, it.mirror) }
        assertArrayEquals(img, apply(1))
        assertArrayEquals(img, apply(0))
        assertArrayEquals(intArrayOf(3, 2, 1, 6, 5, 4), apply(2))
        assertArrayEquals(intArrayOf(6, 5, 4, 3, 2, 1), apply(3))
        assertArrayEquals(intArrayOf(4, 5, 6, 1, 2, 3), apply(4))
        assertArrayEquals(transpose, apply(5))
        assertArrayEquals(intArrayOf(4, 1, 5, 2, 6, 3), apply(6))
        assertArrayEquals(transverse, apply(7))
        assertArrayEquals(intArrayOf(3, 6, 2, 5, 1, 4), apply(8))
    }

    @Test
    fun rgbaPlaneCropBecomesArgb() {
        // 3x2 plane with 16-byte rows (4 padding bytes); crop the right 2x2 pixels.
        val stride = 16
        val plane = ByteArray(stride * 2)
        fun put(x: Int, y: Int, r: Int, g: Int, b: Int, a: Int) {
            val i = y * stride + x * 4
            plane[i] = r.toByte(); plane[i + 1] = g.toByte(); plane[i + 2] = b.toByte(); plane[i + 3] = a.toByte()
        }
        put(0, 0, 9, 9, 9, 9)
        put(1, 0, 0x11, 0x22, 0x33, 0xFF)
        put(2, 0, 0xFE, 0x80, 0x01, 0x7F)
        put(1, 1, 0, 0, 0, 0)
        put(2, 1, 0xAA, 0xBB, 0xCC, 0xDD)
        val argb = rgbaToArgb(plane.copyOf(stride + 12), stride, left = 1, top = 0, width = 2, height = 2)
        assertArrayEquals(
            intArrayOf(0xFF112233.toInt(), 0x7FFE8001, 0x00000000, 0xDDAABBCC.toInt()),
            argb,
        )
    }

    @Test
    fun rgbaCropMustFitThePlane() {
        val e = assertThrows(IllegalArgumentException::class.java) {
            rgbaToArgb(ByteArray(20), 8, left = 0, top = 1, width = 2, height = 2)
        }
        assertEquals("rgba has 20 bytes, the crop needs 24", e.message)
        assertThrows(IllegalArgumentException::class.java) { rgbaToArgb(ByteArray(64), 4, 0, 0, 2, 2) }
    }
}
