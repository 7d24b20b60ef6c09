package dev.fastscnn.core

/**
 * Just enough JSON for golden/meta.json (objects, arrays, strings without escapes beyond
 * \" \\ \/ \n \t \uXXXX, numbers, true/false/null): the core tests use no libraries but JUnit.
 */
internal class MiniJson private constructor(private val text: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? = MiniJson(text).run {
            val value = value()
            skipSpace()
            require(i == text.length) { "trailing characters at $i" }
            value
        }
    }

    private fun skipSpace() {
        while (i < text.length && text[i].isWhitespace()) i++
    }

    private fun value(): Any? {
        skipSpace()
        return when (val c = text[i]) {
            '{' -> obj()
            '[' -> array()
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c.isDigit()) number() else error("unexpected '$c' at $i")
        }
    }

    private fun literal(word: String, value: Any?): Any? {
        require(text.startsWith(word, i)) { "expected $word at $i" }
        i += word.length
        return value
    }

    private fun obj(): Map<String, Any?> {
        val map = LinkedHashMap<String, Any?>()
        i++
        skipSpace()
        if (text[i] == '}') return map.also { i++ }
        while (true) {
            skipSpace()
            val key = string()
            skipSpace()
            require(text[i++] == ':') { "expected ':' at ${i - 1}" }
            map[key] = value()
            skipSpace()
            when (text[i++]) {
                ',' -> continue
                '}' -> return map
                else -> error("expected ',' or '}' at ${i - 1}")
            }
        }
    }

    private fun array(): List<Any?> {
        val list = ArrayList<Any?>()
        i++
        skipSpace()
        if (text[i] == ']') return list.also { i++ }
        while (true) {
            list += value()
            skipSpace()
            when (text[i++]) {
                ',' -> continue
                ']' -> return list
                else -> error("expected ',' or ']' at ${i - 1}")
            }
        }
    }

    private fun string(): String {
        require(text[i++] == '"') { "expected a string at ${i - 1}" }
        val out = StringBuilder()
        while (true) {
            val c = text[i++]
            when {
                c == '"' -> return out.toString()
                c != '\\' -> out.append(c)
                else -> when (val e = text[i++]) {
                    'n' -> out.append('\n')
                    't' -> out.append('\t')
                    'u' -> out.append(text.substring(i, i + 4).toInt(16).toChar()).also { i += 4 }
                    else -> out.append(e)
                }
            }
        }
    }

    private fun number(): Double {
        val start = i
        while (i < text.length && (text[i].isDigit() || text[i] in "+-.eE")) i++
        return text.substring(start, i).toDouble()
    }
}
