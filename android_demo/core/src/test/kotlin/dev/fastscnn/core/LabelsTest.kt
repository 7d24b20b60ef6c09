package dev.fastscnn.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class LabelsTest {
    @Test
    fun parsesNamesColoursAndComments() {
        val text = "# 3 classes; ignore_index=255\r\n" +
            "road\t#804080\r\n" +
            "\r\n" +
            "traffic light\t#FAAA1E\n" +
            "   \n" +
            "  sky  \t #4682b4 \n"
        assertEquals(
            listOf(
                Label("road", 0xFF804080.toInt()),
                Label("traffic light", 0xFFFAAA1E.toInt()),
                Label("sky", 0xFF4682B4.toInt()),
            ),
            parseLabels(text),
        )
    }

    @Test
    fun missingColourFallsBackByClassIndex() {
        val labels = parseLabels("\uFEFFa\nb\t#010203\nc\t\n")
        assertEquals(listOf("a", "b", "c"), labels.map { it.name })
        assertEquals(fallbackColor(0), labels[0].color)
        assertEquals(0xFF010203.toInt(), labels[1].color)
        assertEquals(fallbackColor(2), labels[2].color)
    }

    @Test
    fun fallbackIsThePascalVocPaletteShiftedByOne() {
        // VOC colours of 1, 2, 3, 4, 8, 9: (128,0,0) (0,128,0) (128,128,0) (0,0,128) (64,0,0) (192,0,0)
        assertArrayEquals(
            longArrayOf(0xFF800000, 0xFF008000, 0xFF808000, 0xFF000080, 0xFF400000, 0xFFC00000)
                .map { it.toInt() }.toIntArray(),
            intArrayOf(0, 1, 2, 3, 7, 8).map { fallbackColor(it) }.toIntArray(),
        )
        assertEquals(256, (0 until 256).map { fallbackColor(it) }.toSet().size)
    }

    @Test
    fun malformedColourNamesTheLine() {
        val e = assertThrows(LabelsFormatException::class.java) {
            parseLabels("# header\nroad\t#804080\ncar\t#12345\n", source = "assets/labels.txt")
        }
        assertEquals("assets/labels.txt:3: colour '#12345' of class 'car' is not #RRGGBB", e.message)
        assertThrows(LabelsFormatException::class.java) { parseLabels("car\t#GG0000") }
        assertThrows(LabelsFormatException::class.java) { parseLabels("car\t#00000000") }
        assertThrows(LabelsFormatException::class.java) { parseLabels("car\t#+1+1+1") }
    }

    @Test
    fun emptyFilesAndNamesAreErrors() {
        assertEquals("labels.txt: no class names found",
            assertThrows(LabelsFormatException::class.java) { parseLabels("# only\n\n") }.message)
        assertEquals("labels.txt:2: empty class name",
            assertThrows(LabelsFormatException::class.java) { parseLabels("a\n\t#000000") }.message)
    }

    @Test
    fun paletteFollowsClassOrder() {
        assertArrayEquals(intArrayOf(1, 2), palette(listOf(Label("x", 1), Label("y", 2))))
    }
}
