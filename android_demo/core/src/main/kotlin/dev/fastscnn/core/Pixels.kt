package dev.fastscnn.core

// Images are IntArrays of 0xAARRGGBB pixels, row-major, exactly as Android's
// Bitmap.getPixels/createBitmap use them; sizes travel alongside as plain Ints.

internal fun requirePositiveSize(width: Int, height: Int, what: String) {
    require(width > 0 && height > 0) { "$what size must be positive, got ${width}x$height" }
}

internal fun requirePixels(size: Int, width: Int, height: Int, what: String) {
    requirePositiveSize(width, height, what)
    require(size.toLong() == width.toLong() * height) {
        "$what has $size values, expected ${width}x$height = ${width.toLong() * height}"
    }
}

/**
 * Copies the [left], [top], [width] x [height] window of an RGBA_8888 plane (4 bytes per
 * pixel, rows [rowStride] bytes apart, as CameraX's ImageAnalysis delivers it) into ARGB ints.
 * The window is the ImageProxy's crop rect, which a ViewPort sets to what the preview shows.
 */
fun rgbaToArgb(
    rgba: ByteArray,
    rowStride: Int,
    left: Int,
    top: Int,
    width: Int,
    height: Int,
): IntArray {
    requirePositiveSize(width, height, "crop")
    require(left >= 0 && top >= 0) { "crop origin must be >= 0, got ($left, $top)" }
    require(rowStride >= (left + width) * 4) {
        "rowStride $rowStride is too small for a crop ending at column ${left + width}"
    }
    // The last row of a camera plane may stop right after its last pixel.
    val needed = (top + height - 1).toLong() * rowStride + (left + width) * 4L
    require(rgba.size >= needed) { "rgba has ${rgba.size} bytes, the crop needs $needed" }
    val out = IntArray(width * height)
    for (y in 0 until height) {
        var i = (top + y) * rowStride + left * 4
        val row = y * width
        for (x in 0 until width) {
            val r = rgba[i].toInt() and 0xFF
            val g = rgba[i + 1].toInt() and 0xFF
            val b = rgba[i + 2].toInt() and 0xFF
            val a = rgba[i + 3].toInt() and 0xFF
            out[row + x] = (a shl 24) or (r shl 16) or (g shl 8) or b
            i += 4
        }
    }
    return out
}

/** Width and height after [rotate] by [degrees]: swapped for 90 and 270. */
fun rotatedSize(width: Int, height: Int, degrees: Int): Pair<Int, Int> =
    if (checkDegrees(degrees) % 180 == 0) width to height else height to width

private fun checkDegrees(degrees: Int): Int {
    require(degrees == 0 || degrees == 90 || degrees == 180 || degrees == 270) {
        "degrees must be 0, 90, 180 or 270, got $degrees"
    }
    return degrees
}

/**
 * Rotates a [width] x [height] image clockwise by [degrees], then flips it left-right when
 * [mirror] is set. The result is [rotatedSize] large.
 *
 * CameraX's rotationDegrees is the clockwise rotation that makes a frame upright, and
 * PreviewView shows the front camera mirrored, so (rotationDegrees, isFront) turns an
 * analysis frame into exactly what the preview shows.
 */
fun rotate(argb: IntArray, width: Int, height: Int, degrees: Int, mirror: Boolean): IntArray {
    requirePixels(argb.size, width, height, "argb")
    val (outW, outH) = rotatedSize(width, height, degrees)
    val out = IntArray(argb.size)
    for (y in 0 until outH) {
        for (x in 0 until outW) {
            val sx = if (mirror) outW - 1 - x else x
            // Source pixel of rotated position (sx, y).
            val src = when (degrees) {
                0 -> y * width + sx
                90 -> (height - 1 - sx) * width + y
                180 -> (height - 1 - y) * width + (width - 1 - sx)
                else -> sx * width + (width - 1 - y)
            }
            out[y * outW + x] = argb[src]
        }
    }
    return out
}

/** A clockwise rotation followed by an optional left-right flip, as [rotate] applies it. */
data class Orientation(val degrees: Int, val mirror: Boolean)

/**
 * The [rotate] arguments that make a photo upright, for an EXIF orientation tag (1..8).
 * Gallery photos are stored as shot and tagged; BitmapFactory ignores the tag.
 * Unknown or missing tags (0) mean "as stored".
 */
fun exifOrientation(tag: Int): Orientation = when (tag) {
    2 -> Orientation(0, true)
    3 -> Orientation(180, false)
    4 -> Orientation(180, true) // vertical flip
    5 -> Orientation(90, true) // transpose
    6 -> Orientation(90, false)
    7 -> Orientation(270, true) // transverse
    8 -> Orientation(270, false)
    else -> Orientation(0, false)
}
