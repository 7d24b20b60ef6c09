package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class ResizeTest {
    private fun gray(vararg v: Int) = IntArray(v.size) { (0xFF shl 24) or (v[it] * 0x010101) }

    private fun red(rgb: ByteArray) = IntArray(rgb.size / 3) { rgb[it * 3].toInt() and 0xFF }

    @Test
    fun sameSizeIsIdentity() {
        val w = 7
        val h = 5
        val argb = IntArray(w * h) { (it * 2654435761L).toInt() } // arbitrary bits, alpha too
        val rgb = resizeBilinearToRgb(argb, w, h, w, h)
        val expected = ByteArray(w * h * 3)
        for (i in argb.indices) {
            expected[i * 3] = (argb[i] shr 16).toByte()
            expected[i * 3 + 1] = (argb[i] shr 8).toByte()
            expected[i * 3 + 2] = argb[i].toByte()
        }
        assertArrayEquals(expected, rgb)
    }

    @Test
    fun upsamplesWithHalfPixelCentres() {
        // Output centres 0.5, 1.5, 2.5, 3.5 sit at source -0.25 (clamped), 0.25, 0.75, 1.25
        // (clamped): weights 0, 1/4, 3/4, 1 of the second pixel.
        assertArrayEquals(intArrayOf(0, 50, 150, 200), red(resizeBilinearToRgb(gray(0, 200), 2, 1, 4, 1)))
    }

    @Test
    fun downsamplesToPairAveragesRoundingHalfUp() {
        // Centres land half-way between source pixels: (10+20)/2 = 15, (30+41)/2 = 35.5 -> 36.
        assertArrayEquals(intArrayOf(15, 36), red(resizeBilinearToRgb(gray(10, 20, 30, 41), 4, 1, 2, 1)))
    }

    @Test
    fun interpolatesBothAxesAndChannelsIndependently() {
        // 2x2 -> 3x3: the centre is the mean of the corners, (0+100+200+255)/4 = 138.75 -> 139;
        // the corners stay put. Green and blue carry other values to catch channel mix-ups.
        val argb = intArrayOf(0x00000A14, 0x00640A14, 0x00C80A14, 0x00FF0A14)
        val rgb = resizeBilinearToRgb(argb, 2, 2, 3, 3)
        val r = red(rgb)
        assertEquals(139, r[4])
        assertEquals(0, r[0])
        assertEquals(255, r[8])
        for (p in 0 until 9) {
            assertEquals(10, rgb[p * 3 + 1].toInt())
            assertEquals(20, rgb[p * 3 + 2].toInt())
        }
    }

    @Test
    fun taps() {
        // 2 -> 3: num = (2x+1)*2 - 3 = -1, 3, 7 over den 6.
        val t = bilinearTaps(2, 3)
        assertArrayEquals(intArrayOf(0, 0, 1), t.i0)
        assertArrayEquals(intArrayOf(1, 1, 1), t.i1)
        assertArrayEquals(intArrayOf(0, 128, 42), t.frac)
    }

    @Test
    fun nearestPicksFlooredCentres() {
        assertArrayEquals(intArrayOf(0, 0, 1, 1), nearestIndices(2, 4))
        assertArrayEquals(intArrayOf(1, 3), nearestIndices(4, 2))
        assertArrayEquals(intArrayOf(0, 2), nearestIndices(3, 2))
        // 2 -> 3 rows: centres at 1/3, 1, 5/3 source rows -> rows 0, 1, 1.
        assertArrayEquals(intArrayOf(0, 1, 1), nearestIndices(2, 3))
        val map = intArrayOf(1, 2, 3, 4) // 2x2
        assertArrayEquals(
            intArrayOf(1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4),
            resizeNearest(map, 2, 2, 4, 3),
        )
    }

    @Test
    fun rejectsMismatchedSizes() {
        val e = assertThrows(IllegalArgumentException::class.java) { resizeBilinearToRgb(IntArray(5), 2, 2, 1, 1) }
        assertEquals("argb has 5 values, expected 2x2 = 4", e.message)
        assertThrows(IllegalArgumentException::class.java) { resizeNearest(IntArray(4), 2, 2, 0, 1) }
    }
}
