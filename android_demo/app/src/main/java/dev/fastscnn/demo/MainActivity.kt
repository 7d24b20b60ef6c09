package dev.fastscnn.demo

import android.Manifest
import android.content.pm.PackageManager
import android.hardware.display.DisplayManager
import android.os.Bundle
import android.text.SpannableString
import android.text.Spanned
import android.text.style.ForegroundColorSpan
import android.util.Size
import android.view.Surface
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.SeekBar
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.core.UseCaseGroup
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.core.resolutionselector.ResolutionStrategy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.lifecycleScope
import androidx.lifecycle.repeatOnLifecycle
import dev.fastscnn.core.Label
import dev.fastscnn.demo.databinding.ActivityMainBinding
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import kotlinx.coroutines.launch

/**
 * Renders [UiState] and wires the camera. Live mode binds Preview and ImageAnalysis in one
 * UseCaseGroup with the PreviewView's ViewPort, so each analysis crop is exactly the visible
 * preview; the frame is turned upright (and mirrored for the front camera) before inference,
 * so its class colours line up with the preview in every rotation.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding
    private val viewModel: SegmentationViewModel by viewModels()
    private lateinit var analysisExecutor: ExecutorService
    private var cameraProvider: ProcessCameraProvider? = null
    private var preview: Preview? = null
    private var analysis: ImageAnalysis? = null
    private var boundFront: Boolean? = null
    private var shownLegend: List<Label>? = null
    private var rendering = false // set while render() moves widgets, so listeners ignore it

    private val requestCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) bindCamera() else viewModel.notify(getString(R.string.camera_denied))
    }

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) viewModel.segmentPhoto(uri)
    }

    // A 180-degree turn does not recreate the activity; keep rotationDegrees right anyway.
    private val displayListener = object : DisplayManager.DisplayListener {
        override fun onDisplayAdded(displayId: Int) = Unit
        override fun onDisplayRemoved(displayId: Int) = Unit
        override fun onDisplayChanged(displayId: Int) {
            val display = binding.preview.display ?: return
            if (display.displayId != displayId) return
            analysis?.targetRotation = display.rotation
            preview?.targetRotation = display.rotation
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)
        analysisExecutor = Executors.newSingleThreadExecutor()
        setUpControls()
        getSystemService(DisplayManager::class.java).registerDisplayListener(displayListener, null)
        // The ViewPort needs the PreviewView's size: (re)bind whenever that changes.
        binding.preview.addOnLayoutChangeListener { _, left, top, right, bottom, oldLeft, oldTop, oldRight, oldBottom ->
            if (right - left != oldRight - oldLeft || bottom - top != oldBottom - oldTop) {
                boundFront = null
                render(viewModel.state.value)
            }
        }
        lifecycleScope.launch {
            repeatOnLifecycle(Lifecycle.State.STARTED) { viewModel.state.collect(::render) }
        }
    }

    override fun onDestroy() {
        getSystemService(DisplayManager::class.java).unregisterDisplayListener(displayListener)
        analysisExecutor.shutdown()
        super.onDestroy()
    }

    private fun setUpControls() {
        binding.live.setOnClickListener { viewModel.showLive() }
        binding.pick.setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        binding.flip.setOnClickListener { viewModel.flipCamera() }
        binding.opacity.setOnSeekBarChangeListener(object : SeekBar.OnSeekBarChangeListener {
            override fun onProgressChanged(bar: SeekBar, progress: Int, fromUser: Boolean) {
                if (fromUser) viewModel.setOpacity(progress)
            }
            override fun onStartTrackingTouch(bar: SeekBar) = Unit
            override fun onStopTrackingTouch(bar: SeekBar) = Unit
        })
        binding.threads.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, THREAD_CHOICES)
        // Start on the current choice so the spinner's first callback does not change it.
        binding.threads.setSelection(THREAD_CHOICES.indexOf(viewModel.state.value.threads).coerceAtLeast(0), false)
        binding.threads.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>, view: View?, position: Int, id: Long) {
                if (!rendering) viewModel.setThreads(THREAD_CHOICES[position])
            }
            override fun onNothingSelected(parent: AdapterView<*>) = Unit
        }
        binding.accelerator.setOnCheckedChangeListener { _, checkedId ->
            if (!rendering) viewModel.setAccelerator(if (checkedId == R.id.gpu) Accelerator.GPU else Accelerator.CPU)
        }
    }

    private fun render(state: UiState) {
        rendering = true
        val live = state.mode == Mode.LIVE
        binding.preview.visibility = if (live) View.VISIBLE else View.INVISIBLE
        binding.overlay.visibility = if (live) View.VISIBLE else View.GONE
        binding.overlay.setImageBitmap(state.liveOverlay)
        binding.overlay.alpha = state.opacity / 255f
        binding.still.visibility = if (live) View.GONE else View.VISIBLE
        binding.still.setImageBitmap(state.stillImage)
        binding.flip.isEnabled = live
        if (binding.opacity.progress != state.opacity) binding.opacity.progress = state.opacity
        val threadIndex = THREAD_CHOICES.indexOf(state.threads)
        if (threadIndex >= 0 && binding.threads.selectedItemPosition != threadIndex) binding.threads.setSelection(threadIndex)
        val checked = if (state.requestedAccelerator == Accelerator.GPU) R.id.gpu else R.id.cpu
        if (binding.accelerator.checkedRadioButtonId != checked) binding.accelerator.check(checked)
        binding.stats.text = statsText(state)
        binding.message.text = state.message
        binding.message.visibility = if (state.message == null) View.GONE else View.VISIBLE
        if (state.legend !== shownLegend) showLegend(state.legend)
        rendering = false
        if (live) ensureCamera(state.frontCamera) else unbindCamera()
    }

    private fun statsText(state: UiState): String {
        val where = state.activeAccelerator ?: return getString(R.string.loading)
        val t = state.inference
        return getString(
            R.string.stats, where.name, state.threads, state.modelSummary ?: "",
            t.meanMs, t.medianMs, t.p90Ms, if (state.mode == Mode.LIVE) state.fps else t.fps,
        )
    }

    private fun showLegend(labels: List<Label>) {
        shownLegend = labels
        binding.legend.removeAllViews()
        for (label in labels) {
            val text = SpannableString("■ ${label.name}")
            text.setSpan(ForegroundColorSpan(label.color), 0, 1, Spanned.SPAN_EXCLUSIVE_EXCLUSIVE)
            binding.legend.addView(TextView(this).apply {
                this.text = text
                setPadding(12, 4, 12, 4)
            })
        }
    }

    private fun ensureCamera(front: Boolean) {
        if (boundFront == front) return
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            requestCamera.launch(Manifest.permission.CAMERA)
            boundFront = front // ask once; the permission callback binds
            return
        }
        boundFront = front
        bindCamera()
    }

    private fun unbindCamera() {
        if (boundFront == null) return
        cameraProvider?.unbindAll()
        boundFront = null
    }

    private fun bindCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get().also { cameraProvider = it }
            val state = viewModel.state.value
            // Not laid out yet: the layout listener binds once the view has a size.
            val viewPort = binding.preview.viewPort ?: return@addListener
            if (state.mode != Mode.LIVE) return@addListener
            val front = state.frontCamera
            val selector = if (front) CameraSelector.DEFAULT_FRONT_CAMERA else CameraSelector.DEFAULT_BACK_CAMERA
            if (!provider.hasCamera(selector)) {
                viewModel.notify(getString(R.string.no_camera, getString(if (front) R.string.front else R.string.back)))
                return@addListener
            }
            val rotation = binding.preview.display?.rotation ?: Surface.ROTATION_0
            val aspect = AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY
            val newPreview = Preview.Builder()
                .setResolutionSelector(ResolutionSelector.Builder().setAspectRatioStrategy(aspect).build())
                .setTargetRotation(rotation)
                .build()
            newPreview.setSurfaceProvider(binding.preview.surfaceProvider)
            // A small analysis stream: the model input is far smaller than any camera mode.
            val analysisSize = ResolutionSelector.Builder()
                .setAspectRatioStrategy(aspect)
                .setResolutionStrategy(
                    ResolutionStrategy(Size(640, 480), ResolutionStrategy.FALLBACK_RULE_CLOSEST_HIGHER_THEN_LOWER),
                )
                .build()
            val newAnalysis = ImageAnalysis.Builder()
                .setResolutionSelector(analysisSize)
                .setTargetRotation(rotation)
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            newAnalysis.setAnalyzer(analysisExecutor) { image ->
                image.use { viewModel.onFrame(it.toUprightFrame(mirror = front)) }
            }
            val group = UseCaseGroup.Builder()
                .setViewPort(viewPort)
                .addUseCase(newPreview)
                .addUseCase(newAnalysis)
                .build()
            provider.unbindAll()
            provider.bindToLifecycle(this, selector, group)
            preview = newPreview
            analysis = newAnalysis
        }, ContextCompat.getMainExecutor(this))
    }

    private companion object {
        val THREAD_CHOICES = listOf(1, 2, 4, 6, 8)
    }
}
