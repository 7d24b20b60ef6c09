package dev.fastscnn.demo

import android.graphics.Bitmap
import dev.fastscnn.core.Label
import dev.fastscnn.core.TimingSummary

enum class Mode { LIVE, STILL }

/** Everything the screen shows; the ViewModel replaces it whole, the Activity only renders it. */
data class UiState(
    val mode: Mode = Mode.LIVE,
    val frontCamera: Boolean = false,
    /** Overlay opacity 0..255, as the core's overlay takes it. */
    val opacity: Int = 128,
    val threads: Int = 4,
    val requestedAccelerator: Accelerator = Accelerator.CPU,
    /** Where the model actually runs; null until it loaded. */
    val activeAccelerator: Accelerator? = null,
    val modelSummary: String? = null,
    val legend: List<Label> = emptyList(),
    /** Live mode: opaque class colours of the latest frame, drawn over the preview at [opacity]. */
    val liveOverlay: Bitmap? = null,
    /** Still mode: the photo with its overlay blended in. */
    val stillImage: Bitmap? = null,
    val inference: TimingSummary = TimingSummary(0, 0.0, 0.0, 0.0),
    /** Results shown per second (live mode), from the intervals between them. */
    val fps: Double = 0.0,
    /** An error or a notice (GPU fallback, missing model) for the user; null when all is well. */
    val message: String? = null,
)
