"""`fastscnn benchmark`, and the export-speed pieces it measures (folded input normalisation,
the cheap full-size mask head)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fastscnn_tf import cli, export, viz
from fastscnn_tf.cli import benchmark
from fastscnn_tf.complexity import count_params
from fastscnn_tf.export import fold_input_normalization
from fastscnn_tf.model import FastSCNN

from helpers import randomize_batchnorm


def _record(variant, precision, size, threads, median):
    return {
        "variant": variant,
        "kind": "tflite",
        "path": "x.tflite",
        "precision": precision,
        "output": "mask",
        "size": list(size),
        "threads": threads,
        "runs": 3,
        "median_ms": median,
        "p90_ms": median * 1.2,
        "mean_ms": median,
        "min_ms": median,
        "peak_rss_mb": 50.0,
        "model_rss_mb": 10.0,
        "file_mb": 1.0,
    }


def test_fold_input_normalization_keeps_outputs_and_parameters():
    model = FastSCNN(7, aux=True, aux2=True)
    randomize_batchnorm(model, shift=0.2, max_variance=2.0)
    folded = fold_input_normalization(model)
    assert count_params(folded) == count_params(model)
    assert folded.get_layer("preprocess").scale == 1.0
    x = np.random.default_rng(1).uniform(0, 255, (1, 97, 131, 3)).astype("float32")
    for want, got in zip(model(x), folded(x), strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    # The original keeps its own weights.
    assert not np.allclose(
        model.get_layer("ltd_conv").get_weights()[0], folded.get_layer("ltd_conv").get_weights()[0]
    )


@pytest.mark.parametrize("size", [(64, 96), (60, 90)])  # TILE path, then the GATHER path
def test_upsample_mask_is_nearest_neighbour(size):
    mask = np.random.default_rng(2).integers(0, 19, (1, 8, 12)).astype(np.uint8)
    got = export.upsample_mask(tf.constant(mask), size).numpy()
    # Half-pixel centres: output row i reads source row floor((i + 0.5) * h / H).
    rows = np.floor((np.arange(size[0]) + 0.5) * 8 / size[0]).astype(int)
    cols = np.floor((np.arange(size[1]) + 0.5) * 12 / size[1]).astype(int)
    np.testing.assert_array_equal(got, mask[:, rows][:, :, cols])


def test_mask_head_takes_argmax_at_its_stride():
    scores = np.random.default_rng(3).normal(size=(1, 8, 12, 5)).astype(np.float32)
    got = export.mask_head(tf.constant(scores), (64, 96), 4).numpy()
    quarter = tf.image.resize(scores, (16, 24), method="bilinear").numpy()
    want = np.repeat(np.repeat(np.argmax(quarter, -1), 4, axis=1), 4, axis=2)
    np.testing.assert_array_equal(got, want)
    eighth = np.repeat(np.repeat(np.argmax(scores, -1), 8, axis=1), 8, axis=2)
    np.testing.assert_array_equal(export.mask_head(tf.constant(scores), (64, 96), 8), eighth)


def test_ratios_markdown_and_plot(tmp_path):
    records = [
        _record("tflite float32 mask", "float32", (64, 128), 1, 10.0),
        _record("tflite int8 mask", "int8", (64, 128), 1, 6.0),
        _record("tflite float32 mask", "float32", (128, 256), 1, 40.0),
        _record("tflite int8 mask", "int8", (128, 256), 1, 20.0),
    ]
    rows = benchmark.ratios(records)
    assert [(r["size"], r["ratio"]) for r in rows] == [([64, 128], 0.6), ([128, 256], 0.5)]
    table = benchmark.markdown(records, {"cpu": "test"}, rows)
    assert "| tflite int8 mask | 128x256 | 20.0 / 24.0 | 1.00 | 50 |" in table
    path = viz.latency_chart(records, str(tmp_path / "plot.png"))
    with Image.open(path) as image:
        assert image.size == (900, 560)
        # Some pixels carry the first two line colours.
        colors = {c for _, c in image.getcolors(1 << 20)}
        assert viz.PLOT_COLORS[0] in colors and viz.PLOT_COLORS[1] in colors


def test_bad_models_are_named(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"x")
    assert cli.main(["benchmark", str(tmp_path / "m.onnx")]) == 2
    assert "m.onnx: expected a .keras or .tflite file" in capsys.readouterr().err
    assert cli.main(["benchmark", str(tmp_path / "missing.tflite")]) == 2
    assert "missing.tflite does not exist" in capsys.readouterr().err


def test_images_give_every_variant_the_same_scene(tmp_path):
    """--images: every variant runs on the first image by name, resized to its size."""
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / name)
    image = benchmark.input_image(tmp_path, (64, 96))
    expected = Image.open(tmp_path / "a.jpg").convert("RGB").resize((96, 64), Image.BILINEAR)
    np.testing.assert_array_equal(image, np.asarray(expected))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg or .png"):
        benchmark.input_image(tmp_path / "empty", (64, 96))


@pytest.mark.slow
def test_benchmark_command_on_a_tiny_model(tmp_path):
    model_path = tmp_path / "tiny.keras"
    FastSCNN(3).save(model_path)
    out = tmp_path / "bench"
    rc = cli.main(
        [
            "benchmark",
            str(model_path),
            "--sizes",
            "64x128",
            "--precisions",
            "float32",
            "int8",
            "--threads",
            "1",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--output-dir",
            str(out),
            "--keep-models",
        ]
    )
    assert rc == 0
    result = json.loads((out / "benchmark.json").read_text())
    assert result["machine"]["cpus"] >= 1 and "avx512_vnni" in result["machine"]["cpu_flags"]
    variants = {r["variant"]: r for r in result["results"]}
    assert set(variants) == {"keras float32", "tflite float32 mask", "tflite int8 mask"}
    for r in variants.values():
        assert r["size"] == [64, 128] and r["threads"] == 1 and r["runs"] == 3
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["peak_rss_mb"] > 0 and r["file_mb"] > 0
    # A TFLite worker holds LiteRT, not TensorFlow: far below the Keras worker's memory.
    assert variants["tflite int8 mask"]["peak_rss_mb"] < variants["keras float32"]["peak_rss_mb"]
    assert variants["tflite int8 mask"]["file_mb"] < variants["tflite float32 mask"]["file_mb"] / 2
    assert len(result["int8_vs_float32"]) == 1
    assert "int8 / float32" in (out / "benchmark.md").read_text()
    assert (out / "benchmark.png").stat().st_size > 0
    # A kept .tflite file is measured as given, at its own static size.
    kept = sorted((out / "models").glob("*int8*.tflite"))[0]
    rc = cli.main(
        [
            "benchmark",
            str(kept),
            "--threads",
            "1",
            "--runs",
            "2",
            "--warmup",
            "0",
            "--output-dir",
            str(out / "again"),
        ]
    )
    assert rc == 0
    again = json.loads((out / "again" / "benchmark.json").read_text())["results"]
    assert [(r["variant"], r["size"], r["precision"]) for r in again] == [
        (kept.stem, [64, 128], "int8")
    ]
