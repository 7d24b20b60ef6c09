"""`fastscnn serve`: the browser demo in `web/` with one model, on this machine only.

The page runs the `.tflite` itself with LiteRT.js (no inference on the server); the server
hands out the static page, LiteRT.js' Wasm files from `web/node_modules`, and the model and
its `labels.txt` under `/served/`. It binds to 127.0.0.1 and sends the cross-origin isolation
headers that let the page use SharedArrayBuffer, i.e. LiteRT.js' multi-threaded Wasm build.
"""

import contextlib
import dataclasses
import functools
import http.server
import json
import os
import subprocess
import tempfile
import threading
import urllib.parse

from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli.config import field

HOST = "127.0.0.1"
# The repository's web/ folder (this file is fastscnn_tf/cli/serve.py).
WEB_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "web"))
WASM_DIR = os.path.join("node_modules", "@litertjs", "core", "wasm")
DRIVER = os.path.join("tools", "browser.mjs")  # headless Chromium driver for tests, benchmarks
SERVED = "/served/"  # the model's files and config.json live here, apart from the page's files
DEFAULT_MODEL = "camvid"  # the shipped preset, as int8 (what the Android app ships)


@dataclasses.dataclass
class ServeConfig:
    model: str = field(
        DEFAULT_MODEL, "the .tflite to serve, or a preset name (its int8 export); its labels.txt "
        "goes along. '' serves the page without a model: it asks for a file"
    )  # fmt: skip
    port: int = field(8000, "port on 127.0.0.1 (0: any free port)")


def resolve_model(value):
    """A `--model` value as a `.tflite` path: a preset name becomes its int8 export."""
    from fastscnn_tf import presets

    return presets.resolve_model(value, kind="int8")


def check_model(path):
    """`(model, labels)` paths of a servable model, or a ValueError/FileNotFoundError naming
    `--model`: the file must be a TFLite FlatBuffer with the labels.txt it was exported with."""
    path, labels_path = labels_lib.tflite_with_labels(path, "--model", "the page")
    labels_lib.read_labels(labels_path)  # its errors name the file and line
    return path, labels_path


def check_web_dir(web_dir=WEB_DIR):
    """Refuse a `web/` folder without the page or without LiteRT.js' Wasm files."""
    if not os.path.isfile(os.path.join(web_dir, "index.html")):
        raise FileNotFoundError(
            f"no web page at {web_dir}: `fastscnn serve` runs from a clone of the repository."
        )
    if not os.path.isdir(os.path.join(web_dir, WASM_DIR)):
        raise FileNotFoundError(
            f"{os.path.join(web_dir, WASM_DIR)} is missing: run `make web` (npm ci in web/) first."
        )


def served_files(model_path):
    """URL path -> file for the model and labels; empty when no model is served."""
    if not model_path:
        return {}
    model, labels = check_model(model_path)
    return {SERVED + "model.tflite": model, SERVED + "labels.txt": labels}


def page_config(model_path):
    """What `/served/config.json` tells the page: where the model is, and its file name."""
    if not model_path:
        return {"model": None, "labels": None, "name": None}
    return {
        "model": SERVED.lstrip("/") + "model.tflite",
        "labels": SERVED.lstrip("/") + "labels.txt",
        "name": os.path.basename(model_path),
    }


ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def host_name(host):
    """A Host header without its port: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of `web/` plus the served model; no directory listings, no request log."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming insists on it
        ".tflite": "application/octet-stream",
        ".txt": "text/plain; charset=utf-8",
    }

    def end_headers(self):
        # Cross-origin isolation (SharedArrayBuffer, so LiteRT.js can use its threaded build).
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def _refused(self):
        """Answer, and return True for, a request this local server must not serve: a Host
        that is not this machine (a DNS-rebinding page would read what is served) or a path
        that no file can have (a NUL byte)."""
        if host_name(self.headers.get("Host") or "") not in ALLOWED_HOSTS:
            self.send_error(421, "Only localhost, 127.0.0.1 or [::1] may be asked")
            return True
        if "\0" in urllib.parse.unquote(urllib.parse.urlsplit(self.path).path):
            self.send_error(400, "No such path")
            return True
        return False

    def do_HEAD(self):
        if not self._refused():
            super().do_HEAD()

    def do_GET(self):
        if self._refused():
            return
        if urllib.parse.urlsplit(self.path).path == SERVED + "config.json":
            body = json.dumps(self.server.page_config).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def translate_path(self, path):
        route = self.server.routes.get(urllib.parse.urlsplit(path).path)
        return route if route is not None else super().translate_path(path)

    def list_directory(self, path):
        self.send_error(404, "No directory listings")
        return None

    def log_message(self, format, *args):  # noqa: A002  (the base class' name)
        pass


def make_server(model_path="", port=8000, web_dir=WEB_DIR):
    """A threading HTTP server on 127.0.0.1 for `web_dir` and `model_path` (not started)."""
    routes = served_files(model_path)  # the user's argument is checked first
    check_web_dir(web_dir)
    handler = functools.partial(Handler, directory=web_dir)
    try:
        server = http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as error:
        raise ValueError(
            f"--port {port}: cannot listen on {HOST}:{port} ({error.strerror})."
        ) from None
    server.daemon_threads = True
    server.routes = routes
    server.page_config = page_config(model_path)
    return server


def url_of(server):
    return f"http://{HOST}:{server.server_address[1]}/"


def run(config):
    if not 0 <= config.port <= 65535:
        raise ValueError(f"--port {config.port}: choose a port in 0..65535.")
    model = resolve_model(config.model) if config.model else ""
    server = make_server(model, config.port)
    with server:
        shown = model or "none (the page asks for a .tflite and its labels.txt)"
        print(f"model: {shown}")
        print(f"serving the page at {url_of(server)}  (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
    return 0


@contextlib.contextmanager
def serving(model_path="", port=0):
    """The page served in a background thread for the duration of the block; yields its URL."""
    server = make_server(model_path, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
            cwd=WEB_DIR,
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
    with serving(model_path) as url:
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
    steps (`imageops`) around the LiteRT interpreter. The browser must reproduce it."""
    from fastscnn_tf import imageops

    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    h, w = (int(v) for v in input_detail["shape"][1:3])
    interpreter.set_tensor(input_detail["index"], imageops.resize_bilinear(rgb, h, w)[None])
    interpreter.invoke()
    raw = interpreter.get_tensor(output_detail["index"])[0]
    classes = imageops.decode_output(raw, "mask" if raw.ndim == 2 else "logits")
    return imageops.resize_nearest(classes, *rgb.shape[:2])
