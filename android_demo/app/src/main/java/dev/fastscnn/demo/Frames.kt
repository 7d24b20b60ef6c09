package dev.fastscnn.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import androidx.camera.core.ImageProxy
import androidx.exifinterface.media.ExifInterface
import dev.fastscnn.core.exifOrientation
import dev.fastscnn.core.rgbaToArgb
import dev.fastscnn.core.rotate
import dev.fastscnn.core.rotatedSize
import java.io.IOException

/** An upright ARGB image, as the user sees it, in `Bitmap.getPixels` layout. */
class Frame(val width: Int, val height: Int, val argb: IntArray) {
    fun toBitmap(): Bitmap = Bitmap.createBitmap(argb, width, height, Bitmap.Config.ARGB_8888)
}

/**
 * The part of an RGBA_8888 analysis image that the preview shows (its crop rect, set by the
 * shared ViewPort), turned upright and mirrored like the preview for the front camera.
 */
fun ImageProxy.toUprightFrame(mirror: Boolean): Frame {
    val plane = planes[0]
    check(plane.pixelStride == 4) { "expected RGBA_8888 analysis output, pixel stride ${plane.pixelStride}" }
    val buffer = plane.buffer.duplicate().apply { rewind() }
    val rgba = ByteArray(buffer.remaining()).also { buffer.get(it) }
    val crop = cropRect
    val argb = rgbaToArgb(rgba, plane.rowStride, crop.left, crop.top, crop.width(), crop.height())
    val degrees = imageInfo.rotationDegrees
    val (width, height) = rotatedSize(crop.width(), crop.height(), degrees)
    return Frame(width, height, rotate(argb, crop.width(), crop.height(), degrees, mirror))
}

/**
 * Decodes a picked photo upright (EXIF orientation applied by the core's [rotate]) with its
 * long side at most [maxSide], which keeps the overlay and its redraws cheap.
 */
fun decodeUpright(resolver: ContentResolver, uri: Uri, maxSide: Int = 1280): Frame {
    fun open() = resolver.openInputStream(uri) ?: throw IOException("cannot open $uri")
    val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
    open().use { BitmapFactory.decodeStream(it, null, bounds) }
    if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw IOException("$uri is not an image")
    var sample = 1
    while (maxOf(bounds.outWidth, bounds.outHeight) / sample > maxSide) sample *= 2
    val options = BitmapFactory.Options().apply {
        inSampleSize = sample
        inPreferredConfig = Bitmap.Config.ARGB_8888
    }
    val bitmap = open().use { BitmapFactory.decodeStream(it, null, options) }
        ?: throw IOException("cannot decode $uri")
    val tag = open().use {
        ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
    }
    val pixels = IntArray(bitmap.width * bitmap.height)
    bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
    val orientation = exifOrientation(tag)
    val (width, height) = rotatedSize(bitmap.width, bitmap.height, orientation.degrees)
    val upright = rotate(pixels, bitmap.width, bitmap.height, orientation.degrees, orientation.mirror)
    bitmap.recycle()
    return Frame(width, height, upright)
}
