package dev.fastscnn.core

/** Per output coordinate along one axis: the two source indices and the 8-bit weight of i1. */
internal class BilinearTaps(val i0: IntArray, val i1: IntArray, val frac: IntArray)

/**
 * Half-pixel-centre bilinear taps in integer fixed point, so that this code and
 * `fastscnn_tf.android_mirror` agree bit for bit: src = (x + 0.5) * inSize / outSize - 0.5 is
 * num / den with num = (2x + 1) * inSize - outSize, den = 2 * outSize, clamped at 0 on the
 * left; the fraction is floored to 1/256.
 */
internal fun bilinearTaps(inSize: Int, outSize: Int): BilinearTaps {
    val i0 = IntArray(outSize)
    val i1 = IntArray(outSize)
    val frac = IntArray(outSize)
    val den = 2L * outSize
    for (x in 0 until outSize) {
        val num = (2L * x + 1) * inSize - outSize
        if (num > 0) {
            val lo = num / den
            i0[x] = lo.toInt()
            frac[x] = ((num - lo * den) * 256 / den).toInt()
        }
        i1[x] = minOf(i0[x] + 1, inSize - 1)
    }
    return BilinearTaps(i0, i1, frac)
}

/**
 * Resizes an ARGB frame to the model's [outWidth] x [outHeight] and returns its RGB bytes,
 * row-major HWC: the uint8 input tensor. Bilinear with half-pixel centres (see
 * [bilinearTaps]); each channel is ((p00*(256-fx) + p01*fx)*(256-fy) +
 * (p10*(256-fx) + p11*fx)*fy + 32768) >> 16. Same size in and out is the identity.
 * Alpha is ignored.
 */
fun resizeBilinearToRgb(
    argb: IntArray,
    width: Int,
    height: Int,
    outWidth: Int,
    outHeight: Int,
): ByteArray {
    requirePixels(argb.size, width, height, "argb")
    requirePositiveSize(outWidth, outHeight, "output")
    val xs = bilinearTaps(width, outWidth)
    val ys = bilinearTaps(height, outHeight)
    val out = ByteArray(outWidth * outHeight * 3)
    var o = 0
    for (y in 0 until outHeight) {
        val row0 = ys.i0[y] * width
        val row1 = ys.i1[y] * width
        val fy = ys.frac[y]
        for (x in 0 until outWidth) {
            val fx = xs.frac[x]
            val p00 = argb[row0 + xs.i0[x]]
            val p01 = argb[row0 + xs.i1[x]]
            val p10 = argb[row1 + xs.i0[x]]
            val p11 = argb[row1 + xs.i1[x]]
            out[o++] = bilinear(p00, p01, p10, p11, 16, fx, fy)
            out[o++] = bilinear(p00, p01, p10, p11, 8, fx, fy)
            out[o++] = bilinear(p00, p01, p10, p11, 0, fx, fy)
        }
    }
    return out
}

// One channel (at bit [shift]) of four ARGB neighbours; the sum stays below 2^24.
@Suppress("NOTHING_TO_INLINE")
private inline fun bilinear(p00: Int, p01: Int, p10: Int, p11: Int, shift: Int, fx: Int, fy: Int): Byte {
    val top = ((p00 shr shift) and 0xFF) * (256 - fx) + ((p01 shr shift) and 0xFF) * fx
    val bottom = ((p10 shr shift) and 0xFF) * (256 - fx) + ((p11 shr shift) and 0xFF) * fx
    return ((top * (256 - fy) + bottom * fy + 32768) shr 16).toByte()
}

/** Nearest source index per output index: floor((2x + 1) * inSize / (2 * outSize)). */
internal fun nearestIndices(inSize: Int, outSize: Int): IntArray =
    IntArray(outSize) { x -> ((2L * x + 1) * inSize / (2L * outSize)).toInt() }

/**
 * Nearest-neighbour resize of any per-pixel IntArray (a class map, or ARGB pixels): class
 * maps must never be interpolated. Source index per axis: see [nearestIndices].
 */
fun resizeNearest(values: IntArray, width: Int, height: Int, outWidth: Int, outHeight: Int): IntArray {
    requirePixels(values.size, width, height, "values")
    requirePositiveSize(outWidth, outHeight, "output")
    val xs = nearestIndices(width, outWidth)
    val ys = nearestIndices(height, outHeight)
    val out = IntArray(outWidth * outHeight)
    for (y in 0 until outHeight) {
        val src = ys[y] * width
        val dst = y * outWidth
        for (x in 0 until outWidth) out[dst + x] = values[src + xs[x]]
    }
    return out
}
