package dev.fastscnn.core

private fun colorOf(palette: IntArray, cls: Int, pixel: Int): Int {
    if (cls < 0 || cls >= palette.size) {
        throw IllegalArgumentException(
            "class $cls at pixel $pixel has no colour: the palette has ${palette.size} classes",
        )
    }
    return palette[cls]
}

/** Opaque palette colour of every pixel's class: the overlay layer over a live preview. */
fun colorize(classMap: IntArray, palette: IntArray): IntArray =
    IntArray(classMap.size) { i -> colorOf(palette, classMap[i], i) or OPAQUE }

/**
 * Blends each pixel's class colour over [argb] with [opacity] a in 0..255, per channel
 * (src * (255 - a) + colour * a + 127) / 255 in integers (so Python computes the same
 * bytes); the result is opaque.
 */
fun overlay(argb: IntArray, classMap: IntArray, palette: IntArray, opacity: Int): IntArray {
    require(opacity in 0..255) { "opacity must be in 0..255, got $opacity" }
    require(argb.size == classMap.size) {
        "argb has ${argb.size} pixels but classMap has ${classMap.size}; resize the class map first"
    }
    return IntArray(argb.size) { i ->
        val src = argb[i]
        val color = colorOf(palette, classMap[i], i)
        OPAQUE or blend(src, color, opacity, 16) or blend(src, color, opacity, 8) or blend(src, color, opacity, 0)
    }
}

// One channel (at bit [shift]) of the blend, back at its bit position.
@Suppress("NOTHING_TO_INLINE")
private inline fun blend(src: Int, color: Int, opacity: Int, shift: Int): Int {
    val s = (src shr shift) and 0xFF
    val c = (color shr shift) and 0xFF
    return ((s * (255 - opacity) + c * opacity + 127) / 255) shl shift
}

private const val OPAQUE = 0xFF shl 24
