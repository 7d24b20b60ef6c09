// LiteRT.js behind three calls: start the runtime, compile a model on the best backend the
// browser has (WebGPU, else Wasm/XNNPACK on the CPU) with the reason for any fallback, and run
// one uint8 image. Everything the page shows about the backend comes from here.

import {Environment, Tensor, loadAndCompile, loadLiteRt, supportsFeature} from '@litertjs/core';

// Served from web/node_modules by `fastscnn serve`; nothing comes from a CDN.
const WASM_DIR = new URL('../node_modules/@litertjs/core/wasm/', import.meta.url).href;
export const BACKENDS = ['auto', 'wasm'];

// LiteRT's exceptions say only where they were thrown ("ERROR: [litert_web.cc:245]"); why is
// in its log (e.g. "dynamic-sized tensors"). Emscripten takes `printErr` from a global Module
// object that the loader script finds; the lines still go to the console.
const LOG_LINES = 200;
const liteRtLog = {count: 0, lines: []};

function logLine(line) {
  liteRtLog.lines.push([liteRtLog.count++, String(line)]);
  if (liteRtLog.lines.length > LOG_LINES) liteRtLog.lines.shift();
  console.error(line);
}

/** LiteRT's first warning logged since line `start`, without its prefix, or undefined. */
function warningSince(start) {
  const found = liteRtLog.lines.find(([n, l]) => n >= start && l.includes('WARNING:') && !l.includes('npu_registry'));
  return found?.[1].replace(/^.*?WARNING:\s*/s, '').replace(/\.+$/, '');
}

/**
 * How the WebGPU delegate split the graph it compiled since log line `start`, from its log
 * ("N operations will run on the GPU, and the remaining M operations will run on the CPU",
 * after one "OP: reason" line per refused op), or null when all of it runs on the GPU.
 */
function splitSince(start) {
  const lines = liteRtLog.lines.filter(([n]) => n >= start).map(([, l]) => l);
  const counts = lines.map((l) => /(\d+) operations will run on the GPU, and the remaining (\d+)/.exec(l)).find(Boolean);
  if (!counts || Number(counts[2]) === 0) return null;
  const ops = new Set(lines.map((l) => /^([A-Z][A-Z0-9_]+): /.exec(l)?.[1])
      .filter((op) => op && !['INFO', 'WARNING', 'ERROR', 'VERBOSE'].includes(op)));
  return {gpu: Number(counts[1]), cpu: Number(counts[2]), ops: [...ops]};
}

/** A WebGPU device, or null and why there is none (shown on the page). */
async function probeWebGpu() {
  if (!('gpu' in navigator)) return {device: null, reason: 'this browser has no WebGPU'};
  try {
    const adapter = await navigator.gpu.requestAdapter({powerPreference: 'high-performance'});
    if (!adapter) return {device: null, reason: 'WebGPU found no GPU adapter'};
    // The adapter's own limits: the defaults are too small for a full-size activation.
    const {maxBufferSize, maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage} = adapter.limits;
    const requiredFeatures = ['shader-f16'].filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {maxBufferSize, maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage},
    });
    return {device, reason: ''};
  } catch (error) {
    return {device: null, reason: `WebGPU device failed: ${messageOf(error)}`};
  }
}

/**
 * Loads the LiteRT.js Wasm build for `backend` ('auto' or 'wasm'); a page keeps the build it
 * loaded (a second one in the same page hung in Chromium 156), so changing backend reloads.
 * With a GPU the JSPI build: WebGPU needs it to read quantized results back ("Asyncify is not
 * defined" otherwise), and its Wasm fallback runs one thread. Without, the multi-threaded
 * build, where cross-origin isolation (sent by `fastscnn serve`) and relaxed SIMD allow it.
 */
export async function startRuntime(backend) {
  if (!BACKENDS.includes(backend)) throw new Error(`backend '${backend}': choose one of ${BACKENDS.join(', ')}`);
  const gpu = backend === 'wasm' ? {device: null, reason: 'Wasm was chosen'} : await probeWebGpu();
  const jspi = gpu.device !== null && (await supportsFeature('jspi'));
  const threads = !gpu.device && self.crossOriginIsolated && (await supportsFeature('relaxedSimd')) &&
      (await supportsFeature('threads'));
  self.Module = {printErr: logLine}; // read (and cleared) by the loader script
  const liteRt = await loadLiteRt(WASM_DIR, jspi ? {jspi: true} : {threads});
  return {
    gpu,
    build: jspi ? 'JSPI' : threads ? 'multi-threaded' : 'single-threaded',
    maxThreads: threads ? liteRt.liteRtWasm.getThreadCount() : 1,
    cpuEnvironment: await Environment.create({webGpuDevice: null}),
  };
}

/**
 * Compiles `bytes` on WebGPU if there is a device, else (or if WebGPU fails) on Wasm, and runs
 * it once on a blank image, so a backend that compiles but cannot run falls back here, not on
 * the first photo. Returns {model, accelerator, threads, note}; `note` says why not WebGPU.
 */
export async function compile(runtime, bytes, numThreads = 0) {
  let note = runtime.gpu.reason;
  if (runtime.gpu.device) {
    const logStart = liteRtLog.count;
    let model = null;
    try {
      // A fresh environment per model: after a failed compile, the next WebGPU model in the
      // same environment never finished compiling (Chromium 156, SwiftShader's WebGPU).
      const environment = await Environment.create({webGpuDevice: runtime.gpu.device});
      model = await loadAndCompile(bytes, {accelerator: 'webgpu', environment});
      await warmUp(model);
      const split = splitSince(logStart);
      if (model.options.accelerator === 'webgpu' && !split) {
        return {model, accelerator: 'webgpu', threads: 0, note: ''};
      }
      if (split) {
        // A graph split between WebGPU and Wasm returned class indices beyond the model's
        // classes (Chromium 156, LiteRT.js 2.5.3, mask exports with --mask-stride 2..8), so a
        // split graph runs wholly on Wasm.
        note = `WebGPU runs ${split.gpu} of ${split.gpu + split.cpu} ops of this model, not ` +
            `${split.ops.join(', ') || 'the others'}, and a graph split with Wasm gave wrong masks`;
      } else {
        // LiteRT.js compiled it again for Wasm: WebGPU lacks one of its ops or types.
        const why = warningSince(logStart);
        note = `WebGPU cannot run every op of this model${why ? ': ' + why : ''}`;
      }
    } catch (error) {
      note = `WebGPU failed: ${warningSince(logStart) ?? messageOf(error)}`;
    }
    model?.delete();
  }
  const threads = Math.max(1, Math.min(numThreads || runtime.maxThreads, runtime.maxThreads));
  const model = await loadAndCompile(bytes, {
    accelerator: 'wasm', environment: runtime.cpuEnvironment, cpuOptions: {numThreads: threads},
  });
  await warmUp(model);
  return {model, accelerator: 'wasm', threads, note};
}

async function warmUp(model) {
  const {input} = tensors(model);
  if (input.dtype !== 'uint8' || input.shape.some((v) => !(v > 0))) return; // contract.modelSpec says why
  await infer(model, new Uint8Array(input.shape.reduce((a, b) => a * b, 1)), input.shape[1], input.shape[2]);
}

/** The model's single input and output as {shape, dtype}, for contract.modelSpec. */
export function tensors(model) {
  const inputs = model.getInputDetails();
  const outputs = model.getOutputDetails();
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new Error(`expected one input and one output tensor, got ${inputs.length} and ${outputs.length}`);
  }
  const plain = ({shape, dtype}) => ({shape: Array.from(shape), dtype});
  return {input: plain(inputs[0]), output: plain(outputs[0])};
}

/** Runs one uint8 RGB image; returns the output tensor's values (copied out of the runtime). */
export async function infer(model, rgb, height, width) {
  // In the model's environment: a tensor of another one lives on another WebGPU device.
  const input = new Tensor(rgb, [1, height, width, 3], model.options.environment);
  let outputs = [];
  try {
    outputs = await model.run(input);
    return await outputs[0].data(); // a copy; on WebGPU it is read back first
  } finally {
    input.delete();
    outputs.forEach((t) => t.delete());
  }
}

/**
 * A readable message for anything thrown, including the bare numbers (C++ exception pointers)
 * that a Wasm abort can throw.
 */
export function messageOf(error) {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'number') return `LiteRT.js aborted (Wasm exception ${error})`;
  return String(error);
}
