import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np

import fastscnn_tf  # noqa: F401  (registers the custom layers for loading)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_loopback_end_with_the_same_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "fastscnn_tf.cli",
        "train",
        "--strategy",
        "multi-worker",
        "--out",
        str(out),
        "--dataset",
        "synthetic:16",
        "--num-classes",
        "4",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "4",
        "--crop",
        "64x64",
        "--val-batch-size",
        "4",
        "--overlays",
        "0",
        "--verbose",
        "0",
        "--no-aux2",
    ]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = [p.communicate(timeout=400) for p in processes]
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert "2 replica(s)" in stdout

    chief = keras.models.load_model(out / "model.keras", compile=False)
    other = keras.models.load_model(out / "worker-worker-1" / "model.keras", compile=False)
    start = keras.models.load_model(out / "best.keras", compile=False)  # after the only epoch
    for a, b, c in zip(chief.weights, other.weights, start.weights, strict=True):
        # Trainable weights through the gradient all-reduce, BN statistics through the
        # end-of-epoch average: both workers hold the same model.
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6, err_msg=a.path)
        np.testing.assert_array_equal(a.numpy(), c.numpy())
    with open(out / "summary.json") as f:
        assert json.load(f)["steps"] == 3
