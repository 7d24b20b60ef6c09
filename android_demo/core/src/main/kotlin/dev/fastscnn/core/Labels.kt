package dev.fastscnn.core

/** One class: its display [name] and opaque [color] (0xFFRRGGBB). */
data class Label(val name: String, val color: Int)

/** A `labels.txt` that cannot be read; the message names the line. */
class LabelsFormatException(message: String) : IllegalArgumentException(message)

private val HEX_COLOR = Regex("#[0-9A-Fa-f]{6}")

/**
 * Parses the `labels.txt` written beside every exported model (`fastscnn_tf/labels.py`):
 * UTF-8, one class per line in class-index order, `name<TAB>#RRGGBB`. The colour is
 * optional ([fallbackColor] of the class index fills in); lines that are blank or start
 * with `#` are comments; names may contain spaces and are trimmed.
 */
fun parseLabels(text: String, source: String = "labels.txt"): List<Label> {
    val parsed = mutableListOf<Pair<String, Int?>>()
    text.removePrefix("\uFEFF").lines().forEachIndexed { index, raw ->
        val line = raw.removeSuffix("\r")
        if (line.startsWith("#") || line.isBlank()) return@forEachIndexed
        val tab = line.indexOf('\t')
        val name = (if (tab < 0) line else line.substring(0, tab)).trim()
        val colorText = if (tab < 0) "" else line.substring(tab + 1).trim()
        if (name.isEmpty()) throw LabelsFormatException("$source:${index + 1}: empty class name")
        val color = when {
            colorText.isEmpty() -> null
            HEX_COLOR.matches(colorText) -> colorText.substring(1).toInt(16) or (0xFF shl 24)
            else -> throw LabelsFormatException(
                "$source:${index + 1}: colour '$colorText' of class '$name' is not #RRGGBB",
            )
        }
        parsed += name to color
    }
    if (parsed.isEmpty()) throw LabelsFormatException("$source: no class names found")
    return parsed.mapIndexed { i, (name, color) -> Label(name, color ?: fallbackColor(i)) }
}

/**
 * Colour of class [index] when labels.txt names none, identical to
 * `fastscnn_tf.labels.default_colors`: the bits of index + 1 dealt out to R, G, B from the
 * most significant bit down, like the PASCAL VOC palette but with class 0 not black.
 */
fun fallbackColor(index: Int): Int {
    require(index >= 0) { "class index must be >= 0, got $index" }
    var c = index + 1
    var r = 0
    var g = 0
    var b = 0
    for (bit in 7 downTo 0) {
        r = r or ((c and 1) shl bit)
        g = g or (((c shr 1) and 1) shl bit)
        b = b or (((c shr 2) and 1) shl bit)
        c = c shr 3
    }
    return (0xFF shl 24) or (r shl 16) or (g shl 8) or b
}

/** The labels' colours indexed by class, as [colorize] and [overlay] take them. */
fun palette(labels: List<Label>): IntArray = IntArray(labels.size) { labels[it].color }
