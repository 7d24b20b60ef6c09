package dev.fastscnn.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import android.os.SystemClock
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import dev.fastscnn.core.RollingStats
import dev.fastscnn.core.classMapForFrame
import dev.fastscnn.core.colorize
import dev.fastscnn.core.overlay
import dev.fastscnn.core.palette
import dev.fastscnn.core.preprocess
import java.io.IOException
import java.util.concurrent.Executors
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/**
 * Runs the model for both modes. All interpreter work happens on one thread ([inference]):
 * the GPU delegate must stay on the thread that created it, and a reload can never race a
 * running inference.
 */
class SegmentationViewModel(application: Application) : AndroidViewModel(application) {
    private val executor = Executors.newSingleThreadExecutor { Thread(it, "segmentation") }
    private val inference = executor.asCoroutineDispatcher()
    private val helper = SegmentationHelper(application.assets)

    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state.asStateFlow()

    // Holds at most one waiting frame; a newer frame replaces it, so the model always works on
    // the latest frame and frames that arrive while it is busy are dropped.
    private val liveFrames = MutableSharedFlow<Frame>(
        extraBufferCapacity = 1,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )

    // Fields below are touched only on the inference thread.
    private var model: LoadedModel? = null
    private var colors = IntArray(0)
    private val inferenceTimes = RollingStats(WINDOW)
    private val resultIntervals = RollingStats(WINDOW)
    private var lastResultNanos = 0L
    private var stillFrame: Frame? = null
    private var stillClasses: IntArray? = null

    init {
        viewModelScope.launch(inference) { reload() }
        viewModelScope.launch(inference) { liveFrames.collect(::segmentLive) }
        // A StateFlow collector only sees the newest value, so dragging the slider queues
        // at most one redraw of the photo.
        viewModelScope.launch(inference) {
            state.map { it.opacity }.distinctUntilChanged().collect { redrawStill() }
        }
    }

    /** Called by the camera analyzer for every frame; never blocks it. */
    fun onFrame(frame: Frame) {
        if (_state.value.mode == Mode.LIVE) liveFrames.tryEmit(frame)
    }

    fun setOpacity(opacity: Int) = _state.update { it.copy(opacity = opacity.coerceIn(0, 255)) }

    fun setThreads(threads: Int) {
        if (threads == _state.value.threads) return
        _state.update { it.copy(threads = threads) }
        viewModelScope.launch(inference) { reload() }
    }

    fun setAccelerator(accelerator: Accelerator) {
        if (accelerator == _state.value.requestedAccelerator) return
        _state.update { it.copy(requestedAccelerator = accelerator) }
        viewModelScope.launch(inference) { reload() }
    }

    fun flipCamera() = _state.update { it.copy(frontCamera = !it.frontCamera, liveOverlay = null) }

    fun showLive() = _state.update { it.copy(mode = Mode.LIVE, stillImage = null) }

    fun notify(message: String) = _state.update { it.copy(message = message) }

    /** Still mode: decode the picked photo, segment it once, then redraw on opacity changes. */
    fun segmentPhoto(uri: Uri) {
        _state.update { it.copy(mode = Mode.STILL, liveOverlay = null) }
        viewModelScope.launch(inference) {
            val frame = try {
                withContext(Dispatchers.IO) { decodeUpright(getApplication<Application>().contentResolver, uri) }
            } catch (e: IOException) {
                notify("Cannot read that photo: ${e.message}")
                return@launch
            }
            stillFrame = frame
            segmentStill()
        }
    }

    private fun reload() {
        helper.close()
        model = null
        val s = _state.value
        try {
            val loaded = helper.load(s.threads, s.requestedAccelerator)
            model = loaded
            colors = palette(loaded.labels)
            inferenceTimes.clear()
            resultIntervals.clear()
            lastResultNanos = 0L
            _state.update {
                it.copy(
                    modelSummary = loaded.spec.toString(),
                    legend = loaded.labels,
                    activeAccelerator = loaded.accelerator,
                    message = loaded.notice,
                )
            }
            segmentStill()
        } catch (e: IOException) {
            _state.update {
                it.copy(
                    activeAccelerator = null,
                    message = "Cannot read the model or labels from the app's assets (${e.message}). " +
                        "Copy them in with: fastscnn android-assets --model M.tflite " +
                        "--dest android_demo/app/src/main/assets",
                )
            }
        } catch (e: IllegalArgumentException) {
            // Labels that do not parse, or a model the app cannot run (ModelSpec says why).
            _state.update { it.copy(activeAccelerator = null, message = e.message) }
        }
    }

    /** The class of every frame pixel, or null after reporting why not. */
    private fun classify(frame: Frame): IntArray? {
        val loaded = model ?: return null
        val input = preprocess(frame.argb, frame.width, frame.height, loaded.spec)
        val result = try {
            helper.run(input)
        } catch (e: RuntimeException) {
            onRunFailure(loaded, e)
            return null
        }
        inferenceTimes.add(result.millis)
        return try {
            classMapForFrame(result.output, loaded.spec, frame.width, frame.height)
        } catch (e: IllegalArgumentException) {
            notify(e.message ?: e.toString())
            null
        }
    }

    private fun onRunFailure(loaded: LoadedModel, error: RuntimeException) {
        if (loaded.accelerator != Accelerator.GPU) {
            notify("Inference failed: ${error.message}")
            return
        }
        // Some GPU drivers accept the model at load time and fail on the first run.
        _state.update { it.copy(requestedAccelerator = Accelerator.CPU) }
        reload()
        notify("The GPU failed while running the model (${error.message}); switched to the CPU.")
    }

    private fun segmentLive(frame: Frame) {
        if (_state.value.mode != Mode.LIVE) return
        val classes = classify(frame) ?: return
        val overlay = safely { colorize(classes, colors) } ?: return
        val now = SystemClock.elapsedRealtimeNanos()
        if (lastResultNanos != 0L) resultIntervals.add((now - lastResultNanos) / 1e6)
        lastResultNanos = now
        val bitmap = Frame(frame.width, frame.height, overlay).toBitmap()
        _state.update {
            if (it.mode != Mode.LIVE) it
            else it.copy(liveOverlay = bitmap, inference = inferenceTimes.summary(), fps = resultIntervals.summary().fps)
        }
    }

    private fun segmentStill() {
        val frame = stillFrame ?: return
        if (_state.value.mode != Mode.STILL) return
        stillClasses = classify(frame) ?: return
        _state.update { it.copy(inference = inferenceTimes.summary(), fps = 0.0) }
        redrawStill()
    }

    private fun redrawStill() {
        val frame = stillFrame ?: return
        val classes = stillClasses ?: return
        if (_state.value.mode != Mode.STILL) return
        val opacity = _state.value.opacity
        val blended = safely { overlay(frame.argb, classes, colors, opacity) } ?: return
        val bitmap: Bitmap = Frame(frame.width, frame.height, blended).toBitmap()
        _state.update { if (it.mode == Mode.STILL) it.copy(stillImage = bitmap) else it }
    }

    // The core rejects class indices without a colour (a mask with more classes than labels).
    private fun safely(block: () -> IntArray): IntArray? = try {
        block()
    } catch (e: IllegalArgumentException) {
        notify(e.message ?: e.toString())
        null
    }

    override fun onCleared() {
        // viewModelScope is already cancelled; close on the thread that owns the interpreter.
        executor.execute { helper.close() }
        executor.shutdown()
    }

    private companion object {
        const val WINDOW = 30
    }
}
