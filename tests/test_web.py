"""The browser page (`web/`) in Debian's Chromium, headless, driven by playwright-core.

Each browser test serves the page (`fastscnn_tf.webpage`, driven by `web/tools/driver.py`), loads a
small exported model and feeds photos as a user would (the file picker), then holds the class map
the page computed with LiteRT.js to the one Python computes for the same file: the Android core's
pre- and post-processing (`fastscnn_tf.android_mirror`) around the Python LiteRT interpreter. `make
web-test` (and `make test`) installs Chromium and the npm packages first (`web/setup.sh`);
without them the browser tests are skipped.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from fastscnn_tf import cli, export, presets, webpage
from fastscnn_tf import labels as labels_lib
from fastscnn_tf.cli import serve
from fastscnn_tf.data import synthetic
from fastscnn_tf.model import FastSCNN

from helpers import load_script

driver = load_script("web/tools/driver.py")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
MISSING = [
    name
    for name, present in (
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        ("node", shutil.which("node") is not None),
        ("web/node_modules", os.path.isdir(os.path.join(webpage.WEB_DIR, webpage.WASM_DIR))),
    )
    if not present
]
needs_browser = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} missing: `make web-test` installs them"
)


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="outside CI the browser tests may skip")
def test_ci_has_what_the_browser_tests_need():
    # `make test` installs all of it first: in CI a missing piece is a broken set-up, which
    # would otherwise pass as skipped browser tests.
    assert MISSING == []


SIZE = (72, 104)  # not a multiple of 32: the graph pads and crops, as the 360x480 preset's does
ALIGNED = (64, 96)
NUM_CLASSES = 5
AGREEMENT = 0.999  # the bar; every image has matched exactly so far (see the README)
SAMPLE = os.path.join(presets.ROOT, "camvid", "samples", "0016E5_08017.jpg")


def _scene_model():
    """A fresh Fast-SCNN (identity BN) whose classifier is rescaled so that each class's logit
    has zero mean and unit spread over a few scenes: the class map then follows the picture,
    with every class and many boundaries, which a constant-class random model would not test."""
    keras.utils.set_random_seed(1)
    model = FastSCNN(NUM_CLASSES)
    images = [synthetic.example(i, seed=3, size=SIZE)[0] for i in range(4)]
    logits = model.predict(np.stack(images).astype("float32"), verbose=0)
    mean, std = logits.mean(axis=(0, 1, 2)), logits.std(axis=(0, 1, 2))
    layer = model.get_layer("cls_conv")  # scaling its channels scales the upsampled logits
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / std, (bias - mean) / std])
    return model


# name -> export arguments: the shipped kind (int8, full-size uint8 mask from the exact-mask
# head, here at an unaligned size), its static-shape variant with the argmax at 1/2 size (the
# one LiteRT.js' WebGPU backend takes), uint8 logits of the 1/8 map (argmax and nearest
# upsampling in JS) and float32 logits at the input size (float argmax in JS).
VARIANTS = {
    "int8_mask": {"size": SIZE, "precision": "int8", "output_kind": "mask"},
    "int8_mask_stride2": {
        "size": SIZE,
        "precision": "int8",
        "output_kind": "mask",
        "mask_stride": 2,
    },
    "int8_logits_stride8": {
        "size": ALIGNED,
        "precision": "int8",
        "output_kind": "logits",
        "output_stride": 8,
    },
    "float32_logits": {"size": SIZE, "precision": "float32", "output_kind": "logits"},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web_models")
    model = _scene_model()
    calibration = [synthetic.example(i, seed=5, size=SIZE)[0] for i in range(8)]
    paths = {}
    for name, kwargs in VARIANTS.items():
        out = folder / name / "model.tflite"
        out.parent.mkdir()
        paths[name] = export.export_tflite(
            model,
            out,
            representative=calibration,
            calibration_images=8,
            metadata=False,
            **kwargs,
        )
    return paths


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Synthetic scenes larger, smaller and of another aspect than the model's input, as PNG,
    and a real street photo as JPEG (its decoding by Chromium and by Pillow is compared too)."""
    folder = tmp_path_factory.mktemp("web_photos")
    paths = []
    for i, size in enumerate([(150, 220), (130, 90), (48, 64)]):
        path = folder / f"scene_{size[0]}x{size[1]}.png"
        Image.fromarray(synthetic.example(i, seed=11, size=size)[0]).save(path)
        paths.append(str(path))
    return [*paths, SAMPLE]


def _python_class_map(model_path, photo):
    interpreter = Interpreter(model_path=str(model_path), num_threads=2)
    interpreter.allocate_tensors()
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    return driver.contract_class_map(interpreter, rgb)


def _drive(model_path, steps, webgpu=False):
    return driver.drive_served(model_path, steps, timeout_s=90, webgpu=webgpu)


def _check_page_shows(shown, names):
    assert shown["error"] == ""
    assert shown["state"] == "ready"
    # The legend lists each class in labels.txt order, with its share of the picture.
    assert len(shown["legend"]) == len(names)
    assert [item[: len(name)] for item, name in zip(shown["legend"], names, strict=True)] == names
    assert " ms median of the last " in shown["timing"]


@needs_browser
@pytest.mark.parametrize("variant", ["int8_mask", "int8_logits_stride8", "float32_logits"])
def test_browser_class_map_equals_python_litert(models, photos, variant):
    model = models[variant]
    names = list(labels_lib.read_labels(labels_lib.labels_path_beside(model)).names)
    report = _drive(model, [{"photo": p} for p in photos])
    assert report["external"] == []  # LiteRT.js and its Wasm come from this server, no CDN
    assert not [line for line in report["console"] if line.startswith("pageerror")]
    load = report["load"]
    assert load["state"] == "ready" and load["error"] == ""
    # Headless with --disable-gpu: Wasm, and the page says why not WebGPU.
    assert load["accelerator"] == "wasm"
    assert "Wasm (XNNPACK, CPU" in load["backendInfo"] and "Not WebGPU: " in load["backendInfo"]
    h, w = VARIANTS[variant]["size"]
    assert f"{h}×{w} uint8 RGB in" in load["modelInfo"]

    agreements = {}
    for photo, step in zip(photos, report["steps"], strict=True):
        _check_page_shows(step, names)
        page = driver.page_class_map(step["result"])
        expected = _python_class_map(model, photo)
        assert page.shape == expected.shape  # the picture's own size
        agreements[os.path.basename(photo)] = float(np.mean(page == expected))
    print(f"{variant}: browser/Python pixel agreement {agreements}")
    assert min(agreements.values()) >= AGREEMENT, agreements
    classes = np.unique(
        np.concatenate([driver.page_class_map(s["result"]).ravel() for s in report["steps"]])
    )
    assert len(classes) >= 3  # the comparison covers class boundaries, not one flat class


@needs_browser
def test_webgpu_takes_static_graphs_and_says_why_not_the_others(models, photos):
    """Chromium's software WebGPU (SwiftShader: a correct GPU, slow) in one page load: a logits
    export runs wholly on WebGPU and matches Python; the mask exports fall back to Wasm with
    the reason on the page: the exact-mask head has data-dependent shapes, which LiteRT.js'
    WebGPU delegate refuses, and the static --mask-stride 2 head is split with Wasm (5-d
    RESHAPE/TILE), which returned out-of-range classes, so the page does not keep such a split."""
    logits = models["int8_logits_stride8"]

    def files(name):
        return [models[name], labels_lib.labels_path_beside(models[name])]

    report = _drive(
        logits,
        [
            {"photo": photos[0]},
            {"model": files("int8_mask_stride2")},
            {"model": files("int8_mask")},
        ],
        webgpu=True,
    )
    assert report["load"]["accelerator"] == "webgpu", report["load"]["backendInfo"]
    assert report["load"]["backendInfo"] == "WebGPU (GPU)"
    photo, split, dynamic = report["steps"]
    assert photo["error"] == ""
    page = driver.page_class_map(photo["result"])
    agreement = np.mean(page == _python_class_map(logits, photos[0]))
    print(f"WebGPU (SwiftShader)/Python pixel agreement {agreement:.4%}")
    assert agreement >= AGREEMENT  # float arithmetic on the GPU, not XNNPACK's integer kernels

    for step in (split, dynamic):
        assert step["state"] == "ready" and step["accelerator"] == "wasm", step
    assert "Not WebGPU: WebGPU runs " in split["backendInfo"], split["backendInfo"]
    assert "RESHAPE" in split["backendInfo"], split["backendInfo"]
    assert "dynamic-sized tensors" in dynamic["backendInfo"], dynamic["backendInfo"]


@needs_browser
def test_bad_files_show_an_error_on_the_page(models, tmp_path):
    good = models["int8_logits_stride8"]
    labels = labels_lib.labels_path_beside(good)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a model" * 100)
    truncated = tmp_path / "truncated.tflite"
    with open(good, "rb") as f:
        truncated.write_bytes(f.read()[:50_000])
    few = tmp_path / "three.txt"
    few.write_text("a\nb\nc\n")
    not_image = tmp_path / "photo.png"
    not_image.write_text("not a picture")
    photo = tmp_path / "scene.png"
    Image.fromarray(synthetic.example(0, seed=2, size=(60, 80))[0]).save(photo)

    report = _drive(
        "",  # no model served: the page asks for one
        [
            {"model": [garbage, labels]},
            {"model": [truncated, labels]},
            {"model": [good, few]},
            {"model": [good, labels]},  # a good model after the errors loads and runs
            {"photo": photo},
            {"photo": not_image},
        ],
    )
    assert report["load"]["state"] == "no-model"
    assert "choose a .tflite" in report["load"]["modelInfo"]
    garbage_step, truncated_step, labels_step, good_step, photo_step, bad_photo = report["steps"]
    assert "not a TFLite model" in garbage_step["error"]
    assert truncated_step["error"].startswith("LiteRT.js cannot load truncated.tflite")
    assert "scores 5 classes but labels.txt has 3" in labels_step["error"]
    for step in (garbage_step, truncated_step, labels_step):
        assert step["state"] == "error"
    assert good_step["state"] == "ready" and good_step["error"] == ""
    assert photo_step["error"] == "" and photo_step["result"] is not None
    assert "photo.png is not an image" in bad_photo["error"]


def test_serve_cli_bad_arguments(tmp_path, capsys):
    """One line naming the argument, exit 2, no traceback; nothing is served."""
    not_model = tmp_path / "notes.tflite"
    not_model.write_text("hello")
    no_labels = tmp_path / "alone" / "model.tflite"
    no_labels.parent.mkdir()
    no_labels.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    cases = [
        (["--model", str(tmp_path / "missing.tflite")], "--model"),
        (["--model", str(tmp_path)], "--model"),
        (["--model", str(not_model)], "not a TFLite model"),
        (["--model", str(no_labels)], "no labels file beside it"),
        (["--model", "", "--port", "70000"], "--port 70000"),
        (["--model", "", "--port", "-1"], "--port -1"),
    ]
    for args, expected in cases:
        assert cli.main(["serve", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("fastscnn serve: error: ") and expected in err, (args, err)
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own check of an int
        cli.main(["serve", "--port", "eighty"])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


@needs_browser
def test_serve_cli_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind((webpage.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--model", "", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}: cannot listen on" in err and "Traceback" not in err


def test_serve_defaults_to_the_camvid_preset():
    assert serve.ServeConfig().model == "camvid"
    if "camvid" in presets.names():
        assert serve.resolve_model("camvid") == presets.path("camvid", "int8")


@needs_browser
def test_fastscnn_serve_prints_the_url_and_serves_the_model(models):
    model = models["int8_mask"]
    command = [sys.executable, "-m", "fastscnn_tf.cli", "serve", "--model", model, "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            lines = [process.stdout.readline(), process.stdout.readline()]
            assert lines[0].strip() == f"model: {model}"
            url = lines[1].split("serving the page at ")[1].split()[0]
            assert url.startswith(f"http://{webpage.HOST}:")
            with urllib.request.urlopen(url) as response:
                assert b"LiteRT.js" in response.read()
                # Cross-origin isolation: the page may use LiteRT.js' multi-threaded Wasm.
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            with urllib.request.urlopen(url + "served/config.json") as response:
                assert json.load(response)["name"] == "model.tflite"
            with urllib.request.urlopen(url + "served/model.tflite") as response:
                with open(model, "rb") as f:
                    assert response.read() == f.read()
        finally:
            process.terminate()


def test_serve_answers_only_local_hosts_and_real_paths(tmp_path):
    """A DNS-rebinding page (Host: evil.example) gets nothing; a NUL in the path is a 400,
    not a dropped connection; the page itself is served to 127.0.0.1, localhost and [::1]."""
    import http.client

    web = tmp_path / "web"
    (web / webpage.WASM_DIR).mkdir(parents=True)
    (web / "index.html").write_text("<p>page</p>")
    server = webpage.make_server("", 0, web_dir=str(web))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]

    def get(path, host):
        connection = http.client.HTTPConnection(webpage.HOST, port, timeout=10)
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    try:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", f"[::1]:{port}"):
            assert get("/index.html", host) == (200, b"<p>page</p>"), host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", ""):
            assert get("/index.html", host)[0] == 421, host
        assert get("/index%00.html", f"127.0.0.1:{port}")[0] == 400
        assert get("/index.html", f"127.0.0.1:{port}")[0] == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
