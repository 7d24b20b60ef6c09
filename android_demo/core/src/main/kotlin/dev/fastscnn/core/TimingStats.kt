package dev.fastscnn.core

/** Summary of the last [count] durations in milliseconds. */
data class TimingSummary(
    val count: Int,
    val meanMs: Double,
    val medianMs: Double,
    val p90Ms: Double,
) {
    /** Rate that the mean duration allows; 0 when nothing was measured. */
    val fps: Double get() = if (meanMs > 0) 1000.0 / meanMs else 0.0
}

/**
 * Rolling window of the last [capacity] durations. Fed inference times it reports model
 * speed; fed the intervals between shown results it reports the frame rate seen on screen.
 * Not thread-safe: feed it from the one inference thread.
 */
class RollingStats(val capacity: Int) {
    init {
        require(capacity > 0) { "capacity must be positive, got $capacity" }
    }

    private val window = DoubleArray(capacity)
    private var size = 0
    private var next = 0

    fun add(ms: Double) {
        require(ms >= 0 && ms.isFinite()) { "duration must be finite and >= 0, got $ms" }
        window[next] = ms
        next = (next + 1) % capacity
        if (size < capacity) size++
    }

    fun clear() {
        size = 0
        next = 0
    }

    /** Mean, median and 90th percentile (linear between ranks, as numpy.percentile). */
    fun summary(): TimingSummary {
        if (size == 0) return TimingSummary(0, 0.0, 0.0, 0.0)
        val sorted = window.copyOf(size).also { it.sort() }
        return TimingSummary(size, sorted.average(), percentile(sorted, 0.5), percentile(sorted, 0.9))
    }
}

internal fun percentile(sorted: DoubleArray, q: Double): Double {
    val pos = q * (sorted.size - 1)
    val lo = pos.toInt()
    val hi = minOf(lo + 1, sorted.size - 1)
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}
