// The model contract of the Android core (android_demo/core/src/main/kotlin/dev/fastscnn/core),
// in plain JavaScript: labels.txt, the model's tensors, uint8 RGB input at the model's size,
// mask or logits output, class map back at the picture's size. Same integer arithmetic as the
// Kotlin core and fastscnn_tf.imageops, so the three agree byte for byte. No DOM, no LiteRT.
// tests/test_web.py holds the page's class maps to fastscnn_tf.imageops around the Python
// LiteRT interpreter; tests/test_android.py ties imageops to the Kotlin core's golden vectors.

export class ContractError extends Error {}

const HEX_COLOR = /^#[0-9A-Fa-f]{6}$/;

/** Colour of class `index` when labels.txt names none: fastscnn_tf.labels.default_colors. */
export function fallbackColor(index) {
  let c = index + 1; // class 0 is not black
  let r = 0;
  let g = 0;
  let b = 0;
  for (let bit = 7; bit >= 0; bit--) {
    r |= (c & 1) << bit;
    g |= ((c >> 1) & 1) << bit;
    b |= ((c >> 2) & 1) << bit;
    c >>= 3;
  }
  return [r, g, b];
}

/**
 * labels.txt -> [{name, color: [r, g, b]}]: one class per line in class order,
 * `name<TAB>#RRGGBB`, colour optional, blank and `#` lines are comments (Kotlin: parseLabels).
 */
export function parseLabels(text, source = 'labels.txt') {
  const parsed = [];
  text.replace(/^\uFEFF/, '').split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#') || line.trim() === '') return;
    const tab = line.indexOf('\t');
    const name = (tab < 0 ? line : line.slice(0, tab)).trim();
    const colorText = tab < 0 ? '' : line.slice(tab + 1).trim();
    if (!name) throw new ContractError(`${source}:${index + 1}: empty class name`);
    if (colorText && !HEX_COLOR.test(colorText)) {
      throw new ContractError(
          `${source}:${index + 1}: colour '${colorText}' of class '${name}' is not #RRGGBB`);
    }
    const value = colorText ? parseInt(colorText.slice(1), 16) : null;
    parsed.push({name, color: value === null ? null : [value >> 16, (value >> 8) & 255, value & 255]});
  });
  if (parsed.length === 0) throw new ContractError(`${source}: no class names found`);
  return parsed.map(({name, color}, i) => ({name, color: color ?? fallbackColor(i)}));
}

const LOGIT_TYPES = ['float32', 'uint8', 'int8'];
const describe = (t) => `[${Array.from(t.shape).join(', ')}] ${t.dtype}`;

/**
 * The model's interface from its tensors ({shape, dtype}) and the number of labels, checked
 * as the Kotlin ModelSpec.of checks it, so a model and labels that disagree fail at load time.
 */
export function modelSpec(input, output, numLabels) {
  if (numLabels <= 0) throw new ContractError('labels.txt lists no classes');
  const [n, h, w, c] = Array.from(input.shape);
  if (input.shape.length !== 4 || n !== 1 || c !== 3 || input.dtype !== 'uint8') {
    throw new ContractError(
        `model input must be [1, H, W, 3] uint8 (RGB bytes), got ${describe(input)}; ` +
        'export the model with uint8 input');
  }
  if (!(h > 0 && w > 0)) throw new ContractError(`model input has no fixed size: ${describe(input)}`);
  const out = Array.from(output.shape);
  const base = {inputHeight: h, inputWidth: w, outputHeight: out[1], outputWidth: out[2], numClasses: numLabels};
  if (out.length === 3) {
    if (out[0] !== 1 || !(out[1] > 0 && out[2] > 0) || output.dtype !== 'uint8') {
      throw new ContractError(`a 3-d model output must be a [1, H, W] uint8 class mask, got ${describe(output)}`);
    }
    if (numLabels > 256) {
      throw new ContractError(`a uint8 mask can index 256 classes, but labels.txt has ${numLabels}`);
    }
    return {...base, kind: 'mask', dtype: 'uint8'};
  }
  if (out.length === 4) {
    if (out[0] !== 1 || !(out[1] > 0 && out[2] > 0) || !LOGIT_TYPES.includes(output.dtype)) {
      throw new ContractError(
          `a 4-d model output must be [1, h, w, C] float32/uint8/int8 logits, got ${describe(output)}`);
    }
    if (out[3] !== numLabels) {
      throw new ContractError(
          `the model scores ${out[3]} classes but labels.txt has ${numLabels}; ` +
          'use the labels.txt exported with this model');
    }
    return {...base, kind: 'logits', dtype: output.dtype};
  }
  throw new ContractError(
      `model output must be a [1, H, W] uint8 mask or [1, h, w, C] logits, got ${describe(output)}`);
}

/**
 * Half-pixel-centre bilinear taps in 8-bit fixed point (Kotlin: bilinearTaps):
 * src = num / den with num = (2x + 1) * in - out, den = 2 * out, clamped at 0 on the left.
 */
export function bilinearTaps(inSize, outSize) {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const frac = new Int32Array(outSize);
  const den = 2 * outSize;
  for (let x = 0; x < outSize; x++) {
    const num = (2 * x + 1) * inSize - outSize; // < 2^53 for any picture a browser holds
    if (num > 0) {
      const lo = Math.floor(num / den);
      i0[x] = lo;
      frac[x] = Math.floor(((num - lo * den) * 256) / den);
    }
    i1[x] = Math.min(i0[x] + 1, inSize - 1);
  }
  return {i0, i1, frac};
}

/**
 * RGBA pixels (ImageData.data: 4 bytes a pixel, row-major) of a `width` x `height` picture ->
 * the model's uint8 RGB input `outHeight` x `outWidth` x 3 (Kotlin: resizeBilinearToRgb).
 * Per channel ((p00*(256-fx) + p01*fx)*(256-fy) + (p10*(256-fx) + p11*fx)*fy + 32768) >> 16.
 */
export function resizeBilinearToRgb(rgba, width, height, outWidth, outHeight) {
  checkSize(width, height, 'picture');
  checkSize(outWidth, outHeight, 'output');
  if (rgba.length !== width * height * 4) {
    throw new ContractError(`picture has ${rgba.length} bytes, expected ${width}x${height}x4`);
  }
  const xs = bilinearTaps(width, outWidth);
  const ys = bilinearTaps(height, outHeight);
  const out = new Uint8Array(outWidth * outHeight * 3);
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    const row0 = ys.i0[y] * width;
    const row1 = ys.i1[y] * width;
    const fy = ys.frac[y];
    for (let x = 0; x < outWidth; x++) {
      const fx = xs.frac[x];
      const p00 = (row0 + xs.i0[x]) * 4;
      const p01 = (row0 + xs.i1[x]) * 4;
      const p10 = (row1 + xs.i0[x]) * 4;
      const p11 = (row1 + xs.i1[x]) * 4;
      for (let ch = 0; ch < 3; ch++) {
        const top = rgba[p00 + ch] * (256 - fx) + rgba[p01 + ch] * fx;
        const bottom = rgba[p10 + ch] * (256 - fx) + rgba[p11 + ch] * fx;
        out[o++] = (top * (256 - fy) + bottom * fy + 32768) >> 16; // < 2^24: int32 is safe
      }
    }
  }
  return out;
}

/** Nearest source index per output index: floor((2x + 1) * in / (2 * out)). */
export function nearestIndices(inSize, outSize) {
  const idx = new Int32Array(outSize);
  for (let x = 0; x < outSize; x++) idx[x] = Math.floor(((2 * x + 1) * inSize) / (2 * outSize));
  return idx;
}

/** Nearest-neighbour resize of a class map (classes are never interpolated). */
export function resizeNearest(values, width, height, outWidth, outHeight) {
  checkSize(width, height, 'class map');
  checkSize(outWidth, outHeight, 'output');
  if (values.length !== width * height) {
    throw new ContractError(`class map has ${values.length} values, expected ${width}x${height}`);
  }
  const xs = nearestIndices(width, outWidth);
  const ys = nearestIndices(height, outHeight);
  const out = new values.constructor(outWidth * outHeight);
  for (let y = 0; y < outHeight; y++) {
    const src = ys[y] * width;
    const dst = y * outWidth;
    for (let x = 0; x < outWidth; x++) out[dst + x] = values[src + xs[x]];
  }
  return out;
}

/**
 * Per-pixel argmax over `classes` scores stored pixel-major ([h, w, C]); ties go to the lowest
 * class, as numpy.argmax. Quantized scores compare as stored (scale > 0 keeps their order);
 * an Int8Array reads int8 and a Uint8Array uint8, as Kotlin's argmaxQuantized.
 */
export function argmax(scores, classes) {
  if (!(classes > 0) || scores.length % classes !== 0) {
    throw new ContractError(`logits have ${scores.length} values, not a multiple of ${classes} classes`);
  }
  const out = classMapArray(classes, scores.length / classes);
  for (let p = 0, base = 0; p < out.length; p++, base += classes) {
    let best = 0;
    let bestValue = scores[base];
    for (let c = 1; c < classes; c++) {
      if (scores[base + c] > bestValue) {
        best = c;
        bestValue = scores[base + c];
      }
    }
    out[p] = best;
  }
  return out;
}

function classMapArray(classes, size) {
  return classes <= 256 ? new Uint8Array(size) : new Uint16Array(size);
}

/** The class map (outputHeight x outputWidth) of one raw output tensor (Kotlin: decodeOutput). */
export function decodeOutput(raw, spec) {
  const pixels = spec.outputHeight * spec.outputWidth;
  const expected = spec.kind === 'mask' ? pixels : pixels * spec.numClasses;
  if (raw.length !== expected) {
    throw new ContractError(`output has ${raw.length} values, the model's output tensor has ${expected}`);
  }
  if (spec.kind === 'mask') return Uint8Array.from(raw);
  return argmax(raw, spec.numClasses);
}

/** One class index per picture pixel from a raw output (Kotlin: classMapForFrame). */
export function classMapForPicture(raw, spec, width, height) {
  return resizeNearest(decodeOutput(raw, spec), spec.outputWidth, spec.outputHeight, width, height);
}

/**
 * Opaque RGBA colours of each pixel's class into `rgba` (an ImageData's data), or a
 * ContractError naming the first class without a colour (Kotlin: colorize).
 */
export function colorize(classMap, palette, rgba) {
  if (rgba.length !== classMap.length * 4) {
    throw new ContractError(`rgba has ${rgba.length} bytes for ${classMap.length} pixels`);
  }
  for (let i = 0, o = 0; i < classMap.length; i++, o += 4) {
    const color = palette[classMap[i]];
    if (color === undefined) {
      throw new ContractError(
          `class ${classMap[i]} at pixel ${i} has no colour: the palette has ${palette.length} classes`);
    }
    rgba[o] = color[0];
    rgba[o + 1] = color[1];
    rgba[o + 2] = color[2];
    rgba[o + 3] = 255;
  }
  return rgba;
}

/** Each class's share of the pixels, for the legend: counts indexed by class. */
export function classCounts(classMap, numClasses) {
  const counts = new Float64Array(Math.max(numClasses, 1));
  for (let i = 0; i < classMap.length; i++) counts[classMap[i]]++;
  return counts;
}

/** Percentile of sorted values, linear between ranks as numpy.percentile (Kotlin: percentile). */
export function percentile(sorted, q) {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The last `capacity` durations in ms: mean, median and p90 (Kotlin: RollingStats). */
export class RollingStats {
  constructor(capacity) {
    if (!(capacity > 0)) throw new ContractError(`capacity must be positive, got ${capacity}`);
    this.capacity = capacity;
    this.window = [];
  }

  add(ms) {
    if (!(ms >= 0 && Number.isFinite(ms))) throw new ContractError(`duration must be finite and >= 0, got ${ms}`);
    this.window.push(ms);
    if (this.window.length > this.capacity) this.window.shift();
  }

  clear() {
    this.window = [];
  }

  summary() {
    if (this.window.length === 0) return {count: 0, meanMs: 0, medianMs: 0, p90Ms: 0};
    const sorted = [...this.window].sort((a, b) => a - b);
    const meanMs = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    return {count: sorted.length, meanMs, medianMs: percentile(sorted, 0.5), p90Ms: percentile(sorted, 0.9)};
  }
}

/** The largest size within `maxSide` pixels on the longer side, aspect kept (never enlarged). */
export function fitWithin(width, height, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return {width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale))};
}

function checkSize(width, height, what) {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ContractError(`${what} size must be positive, got ${width}x${height}`);
  }
}
