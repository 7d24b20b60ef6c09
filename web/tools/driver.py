"""Headless Chromium on the browser page, for the tests and benchmarks (not part of the
package): `drive` runs `web/tools/browser.mjs` on a URL with a list of steps, `drive_served`
serves the page with a model first (`fastscnn_tf.webpage`), and the two class-map helpers
turn a step's result, and the Python contract it must match, into arrays."""

import json
import os
import subprocess
import tempfile

from fastscnn_tf import webpage

DRIVER = os.path.join("tools", "browser.mjs")  # run in web/


def drive(url, steps, timeout_s=120, webgpu=False):
    """Runs `web/tools/browser.mjs` (headless Chromium) on the page at `url` with `steps`;
    returns its JSON report. `webgpu`: SwiftShader's software WebGPU instead of no GPU.
    A RuntimeError carries the driver's own message."""
    # The driver runs in web/: files named in steps are made absolute here.
    steps = [{k: _absolute(v) for k, v in step.items()} for step in steps]
    with tempfile.TemporaryDirectory() as tmp:
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as f:
            json.dump(
                {"url": url, "steps": steps, "timeoutMs": timeout_s * 1000, "webgpu": webgpu}, f
            )
        done = subprocess.run(
            ["node", DRIVER, job],
            cwd=webpage.WEB_DIR,
            capture_output=True,
            text=True,
            timeout=timeout_s + 60,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"browser driver failed: {done.stderr.strip() or done.stdout.strip()}")
    return json.loads(done.stdout)


def drive_served(model_path, steps, query="", timeout_s=120, webgpu=False):
    """`drive` on the page served (in this process) with `model_path` ('' for none); `query`
    is appended to the URL (`?backend=wasm&threads=2`)."""
    with webpage.serving(model_path) as url:
        return drive(url + query, steps, timeout_s=timeout_s, webgpu=webgpu)


def _absolute(value):
    if isinstance(value, (str, os.PathLike)):
        return os.path.abspath(value)
    if isinstance(value, (list, tuple)):
        return [_absolute(v) for v in value]
    return value  # a number (`benchmark`)


def page_class_map(result):
    """The class map a photo step of `drive` read from the page, as an (H, W) array."""
    import base64

    import numpy as np

    dtype = np.uint8 if result["bytesPerClass"] == 1 else np.uint16
    values = np.frombuffer(base64.b64decode(result["classes"]), dtype)
    return values.reshape(result["height"], result["width"])


def contract_class_map(interpreter, rgb):
    """What the page computes for a `(H, W, 3)` uint8 photo, in Python: the Android core's
    steps (`android_mirror`) around the LiteRT interpreter. The browser must reproduce it."""
    from fastscnn_tf import android_mirror

    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    h, w = (int(v) for v in input_detail["shape"][1:3])
    interpreter.set_tensor(input_detail["index"], android_mirror.resize_bilinear(rgb, h, w)[None])
    interpreter.invoke()
    raw = interpreter.get_tensor(output_detail["index"])[0]
    classes = android_mirror.decode_output(raw, "mask" if raw.ndim == 2 else "logits")
    return android_mirror.resize_nearest(classes, *rgb.shape[:2])
