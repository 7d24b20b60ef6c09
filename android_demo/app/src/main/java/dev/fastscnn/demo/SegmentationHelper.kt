package dev.fastscnn.demo

import android.content.res.AssetManager
import android.os.SystemClock
import dev.fastscnn.core.Label
import dev.fastscnn.core.ModelSpec
import dev.fastscnn.core.TensorInfo
import dev.fastscnn.core.parseLabels
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.ByteOrder

enum class Accelerator { CPU, GPU }

/** The model as loaded: its contract, its classes, where it runs and why, if not as asked. */
class LoadedModel(
    val spec: ModelSpec,
    val labels: List<Label>,
    val accelerator: Accelerator,
    val notice: String?,
)

/** One inference: the raw output tensor and the interpreter's time for it. */
class Inference(val output: ByteArray, val millis: Double)

/**
 * Owns the LiteRT interpreter (and its GPU delegate). Everything the app knows about the model
 * (input size, output kind, classes) is read here from the model's tensors and labels.txt and
 * checked by [ModelSpec.of]. Not thread-safe: the ViewModel calls it from one thread, which
 * the GPU delegate requires anyway.
 */
class SegmentationHelper(
    private val assets: AssetManager,
    private val modelAsset: String = MODEL_ASSET,
    private val labelsAsset: String = LABELS_ASSET,
) : Closeable {
    private var modelBuffer: ByteBuffer? = null
    private var interpreter: Interpreter? = null
    private var gpuDelegate: GpuDelegate? = null
    private var input: ByteBuffer = ByteBuffer.allocateDirect(0)
    private var output: ByteBuffer = ByteBuffer.allocateDirect(0)

    /** (Re)creates the interpreter. A GPU that cannot run the model falls back to the CPU. */
    fun load(threads: Int, accelerator: Accelerator): LoadedModel {
        close()
        val labels = parseLabels(assets.open(labelsAsset).use { it.readBytes() }.decodeToString(), labelsAsset)
        val model = modelBuffer ?: readModel().also { modelBuffer = it }
        var notice: String? = null
        var created: Interpreter? = null
        if (accelerator == Accelerator.GPU) {
            val (gpu, why) = createOnGpu(model, threads)
            created = gpu
            notice = why
        }
        val active = if (created != null) Accelerator.GPU else Accelerator.CPU
        val interpreter = created ?: Interpreter(model, Interpreter.Options().setNumThreads(threads))
        this.interpreter = interpreter
        val inputTensor = interpreter.getInputTensor(0)
        val outputTensor = interpreter.getOutputTensor(0)
        val spec = ModelSpec.of(inputTensor.info(), outputTensor.info(), labels.size)
        input = ByteBuffer.allocateDirect(inputTensor.numBytes()).order(ByteOrder.nativeOrder())
        output = ByteBuffer.allocateDirect(outputTensor.numBytes()).order(ByteOrder.nativeOrder())
        return LoadedModel(spec, labels, active, notice)
    }

    private fun readModel(): ByteBuffer {
        // A direct copy works whether or not the asset is stored compressed in the APK.
        val bytes = assets.open(modelAsset).use { it.readBytes() }
        return ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).apply {
            put(bytes)
            rewind()
        }
    }

    private fun createOnGpu(model: ByteBuffer, threads: Int): Pair<Interpreter?, String?> {
        val compatibility = CompatibilityList()
        try {
            if (!compatibility.isDelegateSupportedOnThisDevice) {
                return null to "The LiteRT GPU delegate does not support this device; running on the CPU."
            }
            val delegate = GpuDelegate(compatibility.bestOptionsForThisDevice)
            return try {
                val options = Interpreter.Options().setNumThreads(threads).addDelegate(delegate)
                val created = Interpreter(model, options)
                gpuDelegate = delegate
                created to null
            } catch (e: RuntimeException) {
                // Typically "Failed to apply delegate": an op or type the GPU cannot run.
                delegate.close()
                null to "The GPU delegate cannot run this model (${e.message}); running on the CPU."
            }
        } finally {
            compatibility.close()
        }
    }

    /** Runs the model on uint8 RGB input bytes; returns the raw output tensor. */
    fun run(inputBytes: ByteArray): Inference {
        val interpreter = checkNotNull(interpreter) { "load() the model first" }
        input.clear()
        input.put(inputBytes)
        input.rewind()
        output.clear()
        val start = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val millis = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        output.rewind()
        val bytes = ByteArray(output.capacity()).also { output.get(it) }
        return Inference(bytes, millis)
    }

    override fun close() {
        interpreter?.close()
        interpreter = null
        gpuDelegate?.close()
        gpuDelegate = null
    }

    companion object {
        const val MODEL_ASSET = "fastscnn_int8.tflite"
        const val LABELS_ASSET = "labels.txt"
    }
}

private fun Tensor.info(): TensorInfo {
    val quantization = quantizationParams()
    // LiteRT's DataType names (UINT8, INT8, FLOAT32, ...) lower-cased are numpy's dtype names.
    return TensorInfo(shape(), dataType().name.lowercase(), quantization.scale, quantization.zeroPoint)
}
