package dev.fastscnn.core

// The two ends of one inference, composed from the pieces above so that the app, the
// golden-vector tests and fastscnn_tf.android_mirror all run the same steps.

/** Upright ARGB frame -> the model's uint8 RGB input bytes. */
fun preprocess(frame: IntArray, width: Int, height: Int, spec: ModelSpec): ByteArray =
    resizeBilinearToRgb(frame, width, height, spec.inputWidth, spec.inputHeight)

/** Raw output tensor -> one class index per frame pixel ([width] x [height]). */
fun classMapForFrame(raw: ByteArray, spec: ModelSpec, width: Int, height: Int): IntArray =
    resizeNearest(decodeOutput(raw, spec), spec.outputWidth, spec.outputHeight, width, height)
