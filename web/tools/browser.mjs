// Drives the page in Debian's Chromium, headless, with playwright-core (which never downloads a
// browser). Used by tests/test_web.py and benchmarks/web_latency.py:
//
//   node web/tools/browser.mjs JOB.json
//
// JOB: {"url": "...", "steps": [STEP, ...], "timeoutMs": 60000, "webgpu": false}; with
// "webgpu": true Chromium gets SwiftShader's software WebGPU instead of --disable-gpu (for
// checking which models LiteRT.js' WebGPU backend takes; its speed says nothing). Each STEP:
//   {"photo": PATH}        choose a photo as a user would; returns the class map and what the page shows
//   {"model": [PATHS]}     choose a .tflite (and labels.txt) with "Model…"; returns state and error
//   {"benchmark": N}       segments the current photo N times; returns inference and frame ms
//   {"screenshot": PATH}   a PNG of the whole page
// Prints one JSON object: {"load": PAGE, "steps": [RESULT, ...], "console": [LINES],
// "external": [URLS]}, the last listing every request that left the page's own origin (a CDN).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {chromium} from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Headless, no GPU, and nothing that talks to the network on its own.
const ARGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const NO_GPU = ['--disable-gpu'];
const SOFTWARE_WEBGPU = ['--enable-unsafe-swiftshader', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** What the page shows besides the picture. */
function pageText(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent.trim();
    const error = document.getElementById('error');
    return {
      state: window.fastscnn.state,
      error: error.hidden ? '' : error.textContent,
      modelInfo: text('model-info'),
      backendInfo: text('backend-info'),
      accelerator: document.getElementById('backend-info').dataset.accelerator || '',
      timing: text('timing'),
      legend: Array.from(document.querySelectorAll('#legend li'), (li) => li.textContent.trim()),
    };
  });
}

async function waitSettled(page, timeout) {
  await page.waitForFunction(() => ['ready', 'no-model', 'error'].includes(window.fastscnn.state), null, {timeout});
}

async function photoStep(page, file, timeout) {
  const before = await page.evaluate(() => window.fastscnn.segmented);
  await page.setInputFiles('#photo-file', file);
  await page.waitForFunction(
      (n) => window.fastscnn.segmented > n || window.fastscnn.error !== '', before, {timeout});
  const result = await page.evaluate(() => {
    const r = window.fastscnn.result;
    if (!r || window.fastscnn.error) return null;
    let binary = '';
    for (let i = 0; i < r.classes.length; i += 0x8000) {
      binary += String.fromCharCode(...r.classes.subarray(i, i + 0x8000));
    }
    return {width: r.width, height: r.height, bytesPerClass: r.classes.BYTES_PER_ELEMENT, classes: btoa(binary)};
  });
  return {...(await pageText(page)), result};
}

async function modelStep(page, files, timeout) {
  const before = await page.evaluate(() => window.fastscnn.loads);
  await page.setInputFiles('#model-file', files);
  await page.waitForFunction(
      (n) => window.fastscnn.loads > n || window.fastscnn.error !== '', before, {timeout});
  return pageText(page);
}

async function runStep(page, step, timeout) {
  if (step.photo) return photoStep(page, step.photo, timeout);
  if (step.model) return modelStep(page, step.model, timeout);
  if (step.benchmark) {
    const times = await page.evaluate((n) => window.fastscnn.benchmark(n), step.benchmark);
    return {times, ...(await pageText(page))};
  }
  if (step.screenshot) {
    await page.screenshot({path: step.screenshot, fullPage: true});
    return {screenshot: step.screenshot};
  }
  throw new Error(`unknown step ${JSON.stringify(step)}`);
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const timeout = job.timeoutMs ?? 60000;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fastscnn-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: [...ARGS, ...(job.webgpu ? SOFTWARE_WEBGPU : NO_GPU)], viewport: {width: 1280, height: 800},
  });
  const lines = [];
  const external = [];
  const origin = new URL(job.url).origin;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      const url = r.url();
      if (!url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin) external.push(url);
    });
    await page.goto(job.url);
    await waitSettled(page, timeout);
    const load = await pageText(page);
    const steps = [];
    for (const step of job.steps ?? []) steps.push(await runStep(page, step, timeout));
    process.stdout.write(JSON.stringify({load, steps, console: lines, external}) + '\n');
  } catch (error) {
    // What the page logged is the best clue to why a step never finished.
    throw new Error(`${error.message}\npage console (last lines):\n${lines.slice(-15).join('\n')}`);
  } finally {
    await context.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main().catch((error) => {
  console.error(`browser.mjs: ${error.stack || error}`);
  process.exit(1);
});
