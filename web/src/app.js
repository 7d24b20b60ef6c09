// The page: a model (served by `fastscnn serve`, or chosen by the user), a picture (file,
// drop or webcam), the class mask over it, legend, timing and backend. The pixel work is
// contract.js; LiteRT.js is behind backend.js. `window.fastscnn` is what the browser tests read.

import {compile, infer, messageOf, startRuntime, tensors} from './backend.js';
import {
  RollingStats, classCounts, classMapForPicture, colorize, fitWithin, modelSpec, parseLabels,
  resizeBilinearToRgb,
} from './contract.js';

const MAX_SIDE = 2048; // larger photos are scaled down first, as `fastscnn predict --max-size`
const STATS_WINDOW = 30; // frames in the median shown
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const page = {
  runtime: null,
  loaded: null, // {model, spec, labels, name, accelerator, threads, note}
  picture: null, // the photo's ImageBitmap, kept for the benchmark
  inference: new RollingStats(STATS_WINDOW), // model.run and reading its output
  frame: new RollingStats(STATS_WINDOW), // the whole frame: resize, inference, class map, drawing
  busy: false,
  webcam: null, // the MediaStream while the webcam runs
};

// What the browser tests read: state, models loaded, the last class map, pictures segmented.
window.fastscnn = {state: 'loading', error: '', loads: 0, segmented: 0, result: null, benchmark};

function setState(state) {
  window.fastscnn.state = state;
  document.body.dataset.state = state;
}

function showError(error) {
  const message = messageOf(error);
  window.fastscnn.error = message;
  $('error').textContent = message;
  $('error').hidden = false;
  console.error(error);
}

function clearError() {
  window.fastscnn.error = '';
  $('error').hidden = true;
}

// ---- model ---------------------------------------------------------------------------------

/** Compiles model bytes on the chosen backend and checks them against the labels. */
async function loadModel(bytes, labelsText, name) {
  setState('loading');
  $('model-info').textContent = `Loading ${name}…`;
  stopWebcam();
  page.loaded?.model.delete(); // one model at a time: a failed load leaves none
  page.loaded = null;
  if (!(bytes[4] === 0x54 && bytes[5] === 0x46 && bytes[6] === 0x4c && bytes[7] === 0x33)) {
    throw new Error(`${name} is not a TFLite model (no TFL3 identifier)`);
  }
  const labels = parseLabels(labelsText);
  const compiled = await compileOrExplain(bytes, name);
  let spec;
  try {
    const {input, output} = tensors(compiled.model);
    spec = modelSpec(input, output, labels.length);
  } catch (error) {
    compiled.model.delete(); // a model that does not fit the contract is not kept
    throw error;
  }
  page.loaded = {...compiled, spec, labels, name};
  page.inference.clear();
  page.frame.clear();
  showModel(page.loaded);
  window.fastscnn.loads += 1;
  setState('ready');
  $('webcam').disabled = false;
}

async function compileOrExplain(bytes, name) {
  try {
    return await compile(page.runtime, bytes, Number(params.get('threads') || 0));
  } catch (error) {
    throw new Error(`LiteRT.js cannot load ${name}: ${messageOf(error)}`);
  }
}

function showModel({spec, labels, name, accelerator, threads, note}) {
  const out = spec.kind === 'mask' ? 'uint8 class mask' : `${spec.dtype} logits (argmax here)`;
  $('model-info').textContent =
      `${name}: ${spec.inputHeight}×${spec.inputWidth} uint8 RGB in, ` +
      `${spec.outputHeight}×${spec.outputWidth} ${out}, ${labels.length} classes`;
  const where = accelerator === 'webgpu' ? 'WebGPU (GPU)' :
      `Wasm (XNNPACK, CPU, ${threads} thread${threads === 1 ? '' : 's'}, ` +
      `${page.runtime.build} build)`;
  $('backend-info').textContent = note ? `${where}. Not WebGPU: ${note}.` : where;
  $('backend-info').dataset.accelerator = accelerator;
  showLegend(labels, null);
  showTiming();
}

async function loadServedModel() {
  const response = await fetch('served/config.json');
  const config = response.ok ? await response.json() : {model: null};
  if (!config.model) {
    setState('no-model');
    $('model-info').textContent = 'No model served: choose a .tflite and its labels.txt with “Model…”.';
    return;
  }
  const [bytes, labels] = await Promise.all([fetchBytes(config.model), fetchText(config.labels)]);
  await loadModel(bytes, labels, config.name);
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

/** A model picked or dropped by the user: one .tflite and the labels.txt exported with it. */
async function loadModelFiles(files) {
  const model = files.find((f) => f.name.endsWith('.tflite'));
  const labels = files.find((f) => f.name.endsWith('.txt'));
  if (!model || !labels) {
    throw new Error('choose the .tflite and the labels.txt exported with it, both at once');
  }
  await loadModel(new Uint8Array(await model.arrayBuffer()), await labels.text(), model.name);
}

// ---- pictures ------------------------------------------------------------------------------

/** Decodes a photo as stored: no colour management, so its bytes are what Python reads. */
async function decodePhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  } catch {
    throw new Error(`${file.name} is not an image this browser can decode`);
  }
  const size = fitWithin(bitmap.width, bitmap.height, MAX_SIDE);
  if (size.width === bitmap.width && size.height === bitmap.height) return bitmap;
  bitmap.close();
  return createImageBitmap(file, {
    colorSpaceConversion: 'none', premultiplyAlpha: 'none', resizeQuality: 'high',
    resizeWidth: size.width, resizeHeight: size.height,
  });
}

async function segmentPhoto(file) {
  requireModel();
  stopWebcam();
  const bitmap = await decodePhoto(file);
  page.picture?.close();
  page.picture = bitmap;
  await segment(bitmap, bitmap.width, bitmap.height);
}

function requireModel() {
  if (!page.loaded) throw new Error('load a model first (“Model…”, or `fastscnn serve --model M`)');
}

/** Draws `source` as the picture, runs the model on it and draws the class mask over it. */
async function segment(source, width, height) {
  const {spec, model, labels} = page.loaded;
  const start = performance.now();
  const pixels = drawPicture(source, width, height);
  const rgb = resizeBilinearToRgb(pixels, width, height, spec.inputWidth, spec.inputHeight);
  const inferStart = performance.now();
  const raw = await infer(model, rgb, spec.inputHeight, spec.inputWidth);
  const inferenceMs = performance.now() - inferStart;
  const classes = classMapForPicture(raw, spec, width, height);
  drawMask(classes, labels, width, height);
  showLegend(labels, classes);
  page.inference.add(inferenceMs);
  page.frame.add(performance.now() - start);
  showTiming();
  window.fastscnn.result = {width, height, classes};
  window.fastscnn.segmented += 1;
}

function drawPicture(source, width, height) {
  const canvas = $('photo');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.drawImage(source, 0, 0, width, height);
  document.body.classList.add('has-picture');
  return context.getImageData(0, 0, width, height).data;
}

function drawMask(classes, labels, width, height) {
  const canvas = $('mask');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const image = context.createImageData(width, height);
  colorize(classes, labels.map((l) => l.color), image.data);
  context.putImageData(image, 0, 0);
}

function showLegend(labels, classes) {
  const counts = classes ? classCounts(classes, labels.length) : null;
  const items = labels.map(({name, color}, i) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${color.join(' ')})`;
    const label = document.createElement('span');
    label.textContent = name;
    item.append(swatch, label);
    if (counts) {
      const share = document.createElement('span');
      share.className = 'share';
      share.textContent = counts[i] ? `${((100 * counts[i]) / classes.length).toFixed(1)}%` : '';
      item.append(share);
      item.classList.toggle('absent', !counts[i]);
    }
    return item;
  });
  $('legend').replaceChildren(...items);
}

function showTiming() {
  const {count, medianMs, p90Ms} = page.inference.summary();
  const frame = page.frame.summary();
  $('timing').textContent = count === 0 ? '–' :
      `${medianMs.toFixed(1)} ms median of the last ${count} frame${count === 1 ? '' : 's'} ` +
      `(p90 ${p90Ms.toFixed(1)} ms); whole frame with resizing and drawing ` +
      `${frame.medianMs.toFixed(1)} ms`;
}

// ---- webcam --------------------------------------------------------------------------------

async function startWebcam() {
  requireModel();
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera access here');
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  page.webcam = stream;
  page.inference.clear();
  page.frame.clear();
  $('webcam').textContent = 'Stop webcam';
  requestAnimationFrame(webcamFrame);
}

function stopWebcam() {
  if (!page.webcam) return;
  page.webcam.getTracks().forEach((track) => track.stop());
  page.webcam = null;
  $('webcam').textContent = 'Start webcam';
}

/** One frame at a time: a frame that arrives while the model runs is dropped. */
async function webcamFrame() {
  if (!page.webcam) return;
  const video = $('video');
  if (!page.busy && video.videoWidth > 0) {
    page.busy = true;
    try {
      await segment(video, video.videoWidth, video.videoHeight);
    } catch (error) {
      stopWebcam();
      showError(error);
    } finally {
      page.busy = false;
    }
  }
  requestAnimationFrame(webcamFrame);
}

// ---- benchmark (for benchmarks/web_latency.py) ---------------------------------------------

/** Segments the current photo `runs` times; returns each run's inference and frame ms. */
async function benchmark(runs) {
  requireModel();
  if (!page.picture) throw new Error('choose a photo first');
  const inference = [];
  const frame = [];
  for (let i = 0; i < runs; i++) {
    await segment(page.picture, page.picture.width, page.picture.height);
    inference.push(page.inference.window.at(-1));
    frame.push(page.frame.window.at(-1));
  }
  return {inference, frame};
}

// ---- wiring --------------------------------------------------------------------------------

/** Runs a user action; its error goes on the page, never into a blank screen. */
function guarded(action) {
  return async (...args) => {
    try {
      clearError();
      await action(...args);
    } catch (error) {
      if (window.fastscnn.state === 'loading') {
        // A model that failed to load replaced any earlier one: say so beside the error.
        setState('error');
        $('model-info').textContent = 'No model loaded: choose a .tflite and its labels.txt with “Model…”.';
        $('backend-info').textContent = '–';
        $('webcam').disabled = true;
      }
      showError(error);
    }
  };
}

function routeFiles(files) {
  const list = Array.from(files);
  if (list.some((f) => f.name.endsWith('.tflite'))) return loadModelFiles(list);
  const photo = list.find((f) => f.type.startsWith('image/'));
  if (!photo) throw new Error('drop a photo, or a .tflite with its labels.txt');
  return segmentPhoto(photo);
}

function wire() {
  $('photo-file').addEventListener('change', guarded((e) => segmentPhoto(e.target.files[0])));
  $('model-file').addEventListener('change', guarded((e) => loadModelFiles(Array.from(e.target.files))));
  $('webcam').addEventListener('click', guarded(() => (page.webcam ? stopWebcam() : startWebcam())));
  $('opacity').addEventListener('input', (e) => {
    $('mask').style.opacity = String(e.target.value / 100);
  });
  $('mask').style.opacity = String($('opacity').value / 100);
  // LiteRT.js keeps the Wasm build it loaded first, and the build depends on the backend.
  $('backend').addEventListener('change', (e) => {
    params.set('backend', e.target.value);
    location.search = params.toString();
  });
  const stage = $('stage');
  stage.addEventListener('dragover', (e) => {
    e.preventDefault();
    stage.classList.add('dragging');
  });
  stage.addEventListener('dragleave', () => stage.classList.remove('dragging'));
  stage.addEventListener('drop', guarded((e) => {
    e.preventDefault();
    stage.classList.remove('dragging');
    return routeFiles(e.dataTransfer.files);
  }));
  window.addEventListener('unhandledrejection', (e) => showError(e.reason));
  window.addEventListener('error', (e) => showError(e.error ?? e.message));
}

async function main() {
  wire();
  const backend = params.get('backend') || 'auto';
  $('backend').value = backend;
  try {
    page.runtime = await startRuntime(backend);
  } catch (error) {
    setState('error');
    showError(new Error(`LiteRT.js did not start: ${messageOf(error)}`));
    return;
  }
  await guarded(loadServedModel)();
}

main();
