"""`fastscnn serve`: the browser demo in `web/` with one model, on this machine only.

The server itself is `fastscnn_tf.webpage`; this job resolves `--model` (a preset means its
int8 export), checks the arguments and serves until Ctrl-C.
"""

import dataclasses

from fastscnn_tf import webpage
from fastscnn_tf.cli.config import field

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
    return webpage.check_model(path, "--model")


def run(config):
    if not 0 <= config.port <= 65535:
        raise ValueError(f"--port {config.port}: choose a port in 0..65535.")
    model = resolve_model(config.model) if config.model else ""
    if model:
        check_model(model)  # named as the option, before the server is made
    try:
        server = webpage.make_server(model, config.port)
    except webpage.ListenError as error:
        raise ValueError(f"--port {config.port}: {error}") from None
    with server:
        shown = model or "none (the page asks for a .tflite and its labels.txt)"
        print(f"model: {shown}")
        print(f"serving the page at {webpage.url_of(server)}  (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
    return 0
