"""Latency of one model in the browser (LiteRT.js, Wasm/XNNPACK) beside the Python LiteRT
interpreter, both on this machine (issue 13).

Serves `web/` with the model (`fastscnn_tf.webpage`), opens it in Debian's Chromium
(`web/tools/driver.py`; headless, no GPU, so LiteRT.js runs its multi-threaded Wasm build with
XNNPACK), chooses a photo and lets the page segment it `--runs` times (`window.fastscnn.benchmark`).
Then times the same model in Python with `ai_edge_litert`'s interpreter (XNNPACK) at the same thread
count. Prints medians and p90s of:

- browser, inference: the input tensor, `model.run` and copying the output out of Wasm;
- browser, whole frame: that plus drawing the photo, resizing it to the model's input, the class
  map at the photo's size, the colour overlay and the legend (what the page shows as a frame);
- Python, invoke: `interpreter.invoke()` alone (what `fastscnn benchmark` times), and with
  `set_tensor` / `get_tensor` around it (the browser's "inference").

    python benchmarks/web_latency.py                       # the camvid preset's int8 model
    python benchmarks/web_latency.py --model M.tflite --runs 100 --threads 1
    python benchmarks/web_latency.py --screenshot web/screenshot.png   # also the README's picture

`make web` (or `web/setup.sh`) installs the npm packages first; /usr/bin/chromium must exist.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from fastscnn_tf import presets, webpage

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "tools"))
import driver  # noqa: E402  (web/tools/driver.py: headless Chromium on the page)

DEFAULT_PHOTO = os.path.join(presets.ROOT, "camvid", "samples", "0016E5_08017.jpg")
WARMUP = 5
MAX_SCREENSHOT_BYTES = 300_000


def summary(times_ms):
    ordered = sorted(times_ms)
    p90 = float(np.percentile(ordered, 90))
    return (
        f"median {statistics.median(ordered):7.1f} ms   p90 {p90:7.1f} ms   ({len(ordered)} runs)"
    )


def browser_times(model, photo, runs, threads, screenshot=None):
    """(page report, per-run inference ms, per-run frame ms) from one page load."""
    steps = [{"photo": photo}, {"benchmark": runs + WARMUP}]
    shot = None
    if screenshot:
        shot = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
        steps.append({"screenshot": shot})
    query = f"?backend=wasm&threads={threads}"
    report = driver.drive_served(model, steps, query, timeout_s=900)
    times = report["steps"][1]["times"]
    if shot:
        save_small_png(shot, screenshot)
        os.remove(shot)
    return report, times["inference"][WARMUP:], times["frame"][WARMUP:]


def save_small_png(source, destination, width=960):
    """The page screenshot scaled to `width` and reduced to a 256-colour palette (< 300 KB)."""
    image = Image.open(source).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    data = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        data, "PNG", optimize=True
    )
    if data.tell() > MAX_SCREENSHOT_BYTES:
        raise RuntimeError(f"screenshot is {data.tell()} bytes, over {MAX_SCREENSHOT_BYTES}")
    with open(destination, "wb") as f:
        f.write(data.getvalue())
    print(f"screenshot: {destination} ({data.tell() // 1024} KB, {image.width}x{image.height})")


def python_times(model, photo, runs, threads):
    """(invoke ms, set_tensor + invoke + get_tensor ms) per run on the photo at the model's size."""
    from ai_edge_litert.interpreter import Interpreter

    from fastscnn_tf import android_mirror

    interpreter = Interpreter(model_path=model, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]["index"]
    h, w = (int(v) for v in detail["shape"][1:3])
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    image = android_mirror.resize_bilinear(rgb, h, w)[None]
    invoke, with_io = [], []
    for i in range(runs + WARMUP):
        start = time.perf_counter()
        interpreter.set_tensor(detail["index"], image)
        middle = time.perf_counter()
        interpreter.invoke()
        end = time.perf_counter()
        interpreter.get_tensor(output)
        done = time.perf_counter()
        if i >= WARMUP:
            invoke.append((end - middle) * 1e3)
            with_io.append((done - start) * 1e3)
    return (h, w), invoke, with_io


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="camvid", help=".tflite or preset (default: camvid)")
    parser.add_argument("--photo", default=DEFAULT_PHOTO, help="the picture to segment")
    parser.add_argument(
        "--runs", type=int, default=100, help="timed runs of each (after 5 warm-up)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads in both runtimes")
    parser.add_argument("--screenshot", help="also save the page, segmented, as this PNG")
    args = parser.parse_args(argv)
    model = presets.resolve_model(args.model, kind="int8")
    webpage.check_model(model, "--model")

    report, inference, frame = browser_times(
        model, args.photo, args.runs, args.threads, args.screenshot
    )
    size, invoke, with_io = python_times(model, args.photo, args.runs, args.threads)
    photo = Image.open(args.photo).size
    print(f"model: {model} ({size[0]}x{size[1]} input), photo {photo[1]}x{photo[0]}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"browser backend: {report['load']['backendInfo']}")
    print(f"browser  LiteRT.js inference   {summary(inference)}")
    print(f"browser  whole frame           {summary(frame)}")
    print(f"Python   LiteRT invoke         {summary(invoke)}")
    print(f"Python   set + invoke + get    {summary(with_io)}")
    ratio = statistics.median(inference) / statistics.median(with_io)
    print(f"browser / Python: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
