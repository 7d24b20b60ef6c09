"""The browser page in `web/` served with one model, on this machine only.

The page runs the `.tflite` itself with LiteRT.js (no inference on the server); the server
hands out the static page, LiteRT.js' Wasm files from `web/node_modules`, and the model and
its `labels.txt` under `/served/`. It binds to 127.0.0.1, answers only Host headers of this
machine, and sends the cross-origin isolation headers that let the page use
SharedArrayBuffer, i.e. LiteRT.js' multi-threaded Wasm build. `fastscnn serve` runs it.

    >>> with webpage.serving("model.tflite") as url:
    ...     print(url)      # http://127.0.0.1:PORT/
"""

import contextlib
import functools
import http.server
import json
import os
import threading
import urllib.parse

from fastscnn_tf import labels as labels_lib

HOST = "127.0.0.1"
# The repository's web/ folder (this file is fastscnn_tf/webpage.py).
WEB_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "web"))
WASM_DIR = os.path.join("node_modules", "@litertjs", "core", "wasm")
SERVED = "/served/"  # the model's files and config.json live here, apart from the page's files


class ListenError(ValueError):
    """The server cannot listen on the port asked for (in use, or not allowed)."""


def check_model(path, option="model"):
    """`(model, labels)` paths of a servable model, or a ValueError/FileNotFoundError naming
    `option`: the file must be a TFLite FlatBuffer with the labels.txt it was exported with."""
    path, labels_path = labels_lib.tflite_with_labels(path, option, "the page")
    labels_lib.read_labels(labels_path)  # its errors name the file and line
    return path, labels_path


def check_web_dir(web_dir=WEB_DIR):
    """Refuse a `web/` folder without the page or without LiteRT.js' Wasm files."""
    if not os.path.isfile(os.path.join(web_dir, "index.html")):
        raise FileNotFoundError(
            f"no web page at {web_dir}: the page is served from a clone of the repository."
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
        raise ListenError(f"cannot listen on {HOST}:{port} ({error.strerror}).") from None
    server.daemon_threads = True
    server.routes = routes
    server.page_config = page_config(model_path)
    return server


def url_of(server):
    return f"http://{HOST}:{server.server_address[1]}/"


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
