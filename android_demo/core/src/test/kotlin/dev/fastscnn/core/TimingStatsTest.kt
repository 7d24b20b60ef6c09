package dev.fastscnn.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test

class TimingStatsTest {
    @Test
    fun summarisesTheWindow() {
        val stats = RollingStats(4)
        listOf(40.0, 10.0, 30.0, 20.0).forEach(stats::add)
        // sorted 10 20 30 40: median (20+30)/2; p90 at rank 0.9*3 = 2.7 -> 30 + 0.7*10.
        val s = stats.summary()
        assertEquals(4, s.count)
        assertEquals(25.0, s.meanMs, 1e-9)
        assertEquals(25.0, s.medianMs, 1e-9)
        assertEquals(37.0, s.p90Ms, 1e-9)
        assertEquals(40.0, s.fps, 1e-9)
    }

    @Test
    fun keepsOnlyTheLastN() {
        val stats = RollingStats(3)
        listOf(1000.0, 10.0, 20.0, 60.0).forEach(stats::add)
        val s = stats.summary()
        assertEquals(3, s.count)
        assertEquals(30.0, s.meanMs, 1e-9)
        assertEquals(20.0, s.medianMs, 1e-9)
        assertEquals(52.0, s.p90Ms, 1e-9) // rank 1.8 -> 20 + 0.8*40
    }

    @Test
    fun emptyAndClearedWindowsReportZero() {
        val stats = RollingStats(2)
        assertEquals(TimingSummary(0, 0.0, 0.0, 0.0), stats.summary())
        stats.add(5.0)
        assertEquals(5.0, stats.summary().p90Ms, 0.0)
        stats.clear()
        assertEquals(0.0, stats.summary().fps, 0.0)
    }

    @Test
    fun rejectsBadInput() {
        assertThrows(IllegalArgumentException::class.java) { RollingStats(0) }
        assertThrows(IllegalArgumentException::class.java) { RollingStats(2).add(-1.0) }
        assertThrows(IllegalArgumentException::class.java) { RollingStats(2).add(Double.NaN) }
    }
}
