package dev.fastscnn.core

/** A uint8 class mask as class indices 0..255. */
fun maskToClassMap(mask: ByteArray): IntArray = IntArray(mask.size) { mask[it].toInt() and 0xFF }

/**
 * Per-pixel argmax over [classes] scores stored pixel-major (`[h, w, C]`). Ties go to the
 * lowest class index, as numpy.argmax does.
 */
fun argmax(logits: FloatArray, classes: Int): IntArray {
    requireClasses(logits.size, classes)
    return IntArray(logits.size / classes) { p ->
        val base = p * classes
        var best = 0
        for (c in 1 until classes) if (logits[base + c] > logits[base + best]) best = c
        best
    }
}

/**
 * [argmax] over quantized scores, compared as stored: with scale > 0 the dequantized
 * (q - zeroPoint) * scale has the same order as q. [signed] reads int8, otherwise uint8.
 */
fun argmaxQuantized(logits: ByteArray, classes: Int, signed: Boolean): IntArray {
    requireClasses(logits.size, classes)
    val mask = if (signed) -1 else 0xFF // -1 keeps the sign-extended int8 value
    return IntArray(logits.size / classes) { p ->
        val base = p * classes
        var best = 0
        var bestValue = logits[base].toInt() and mask
        for (c in 1 until classes) {
            val v = logits[base + c].toInt() and mask
            if (v > bestValue) {
                best = c
                bestValue = v
            }
        }
        best
    }
}

private fun requireClasses(size: Int, classes: Int) {
    require(classes > 0) { "classes must be positive, got $classes" }
    require(size % classes == 0) { "logits have $size values, not a multiple of $classes classes" }
}

/**
 * The class map (`outputHeight x outputWidth`) of one raw output tensor as the interpreter
 * wrote it. float32 bytes are little-endian, the byte order of every Android ABI.
 */
fun decodeOutput(raw: ByteArray, spec: ModelSpec): IntArray {
    require(raw.size == spec.outputBytes) {
        "output has ${raw.size} bytes, the model's output tensor has ${spec.outputBytes}"
    }
    return when (val kind = spec.output) {
        OutputKind.Mask -> maskToClassMap(raw)
        is OutputKind.Logits -> when (kind.dtype) {
            "float32" -> argmax(littleEndianFloats(raw), spec.numClasses)
            "int8" -> argmaxQuantized(raw, spec.numClasses, signed = true)
            else -> argmaxQuantized(raw, spec.numClasses, signed = false)
        }
    }
}

private fun littleEndianFloats(raw: ByteArray): FloatArray = FloatArray(raw.size / 4) { i ->
    val o = i * 4
    val bits = (raw[o].toInt() and 0xFF) or
        ((raw[o + 1].toInt() and 0xFF) shl 8) or
        ((raw[o + 2].toInt() and 0xFF) shl 16) or
        ((raw[o + 3].toInt() and 0xFF) shl 24)
    Float.fromBits(bits)
}
