package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.nio.ByteBuffer
import java.util.zip.GZIPInputStream

/**
 * Golden vectors written by `fastscnn_tf.cli.android.make_golden`: a real photo (the camera frame),
 * the uint8 input Python made from it, the LiteRT interpreter's output, the class map and the
 * overlay. The core must reproduce every byte.
 */
class GoldenTest {
    private fun bytes(name: String): ByteArray =
        checkNotNull(javaClass.getResourceAsStream("/golden/$name")) { "missing golden/$name" }.use { it.readBytes() }

    // The vectors (NAME.bin) are stored gzip-compressed: a 720x960 model's are 3.5 MB raw.
    private fun vector(name: String): ByteArray = GZIPInputStream(bytes("$name.gz").inputStream()).use { it.readBytes() }

    private fun argb(name: String): IntArray {
        val buffer = ByteBuffer.wrap(vector(name)) // big-endian, as written
        return IntArray(buffer.remaining() / 4) { buffer.getInt() }
    }

    @Suppress("UNCHECKED_CAST")
    private val meta = MiniJson.parse(bytes("meta.json").decodeToString()) as Map<String, Any?>

    @Suppress("UNCHECKED_CAST")
    private fun section(key: String) = meta[key] as Map<String, Any?>

    private fun tensor(key: String): TensorInfo {
        val t = section(key)
        @Suppress("UNCHECKED_CAST")
        val shape = (t["shape"] as List<Double>).map { it.toInt() }.toIntArray()
        return TensorInfo(shape, t["dtype"] as String, (t["scale"] as Double).toFloat(), (t["zero_point"] as Double).toInt())
    }

    private val width = (section("frame")["width"] as Double).toInt()
    private val height = (section("frame")["height"] as Double).toInt()
    private val labels = parseLabels(bytes("labels.txt").decodeToString())
    private val spec = ModelSpec.of(tensor("input"), tensor("output"), labels.size)
    private val frame = argb("frame_argb.bin")

    @Test
    fun labelsMatchWhatPythonRead() {
        assertEquals(meta["labels"], labels.map { it.name })
        assertEquals(meta["colors"], labels.map { "#%06X".format(it.color and 0xFFFFFF) })
    }

    @Test
    fun specIsReadFromTheTensors() {
        assertEquals(width * height, frame.size)
        val expectedKind = if (meta["output_kind"] == "mask") OutputKind.Mask::class else OutputKind.Logits::class
        assertEquals(expectedKind, spec.output::class)
    }

    @Test
    fun preprocessingReproducesTheInputBytes() {
        assertArrayEquals(vector("input_rgb.bin"), preprocess(frame, width, height, spec))
    }

    @Test
    fun decodingReproducesTheClassMap() {
        val expected = maskToClassMap(vector("class_map.bin"))
        assertArrayEquals(expected, decodeOutput(vector("output.bin"), spec))
        assertTrue("a one-class golden map would prove little", expected.toSet().size > 1)
    }

    @Test
    fun overlayReproducesPython() {
        val classes = classMapForFrame(vector("output.bin"), spec, width, height)
        val opacity = (meta["opacity"] as Double).toInt()
        assertArrayEquals(argb("overlay_argb.bin"), overlay(frame, classes, palette(labels), opacity))
    }
}
