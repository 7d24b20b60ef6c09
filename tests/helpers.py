"""Shared test helpers (pytest puts this folder on sys.path)."""

import importlib.util
import pathlib

import keras
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from fastscnn_tf import metadata

ROOT = pathlib.Path(__file__).parents[1]


def load_script(relative_path):
    """A script of the repository (benchmarks/, tflite/) as a module, by its path from the root."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize_batchnorm(model, seed=0, shift=0.1, max_variance=1.5):
    """Give every BN layer non-trivial statistics, so round trips and conversions compare real
    numbers (fresh BN layers are the identity) and int8 ranges are not trivial."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, shift, beta.shape),
                    rng.normal(0, shift, mean.shape),
                    rng.uniform(0.5, max_variance, variance.shape),
                ]
            )


def write_tiny_camvid(root, stems, size=(64, 80), seed=0):
    """A CamVid-layout folder (`root/{split}/STEM.png`, `root/{split}annot/STEM.png`) of random
    images and masks with CamVid's 11 classes and void (11); `stems` maps split -> file stems,
    whose prefixes are the sequence names."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, names in stems.items():
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for stem in names:
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / split / f"{stem}.png")
            mask = rng.integers(0, 12, size, dtype=np.uint8)
            Image.fromarray(mask).save(root / f"{split}annot" / f"{stem}.png")


def read_metadata(path):
    """The embedded metadata as a dict (name, input/output names, normalisation, stats,
    activation, class names), or None if the model has none."""
    md, seg = metadata._schemas()
    with open(path, "rb") as f:
        flatbuffer, files = metadata._split_archive(f.read())
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    buffer_index = None
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name().decode() == metadata.METADATA_NAME:
            buffer_index = model.Metadata(i).Buffer()
    if buffer_index is None:
        return None
    data = model.Buffers(buffer_index).DataAsNumpy().tobytes()
    if data[4:8] != metadata.METADATA_IDENTIFIER:
        raise ValueError(
            f"{path}: the {metadata.METADATA_NAME} buffer is not a metadata flatbuffer."
        )
    meta = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAsModelMetadata(data, 0))
    subgraph = meta.subgraphMetadata[0]
    image, output = subgraph.inputTensorMetadata[0], subgraph.outputTensorMetadata[0]
    norm = image.processUnits[0].options
    activation = None
    for custom in subgraph.customMetadata or []:
        if custom.name.decode() == metadata.SEGMENTER_OPTIONS_NAME:
            options = seg.ImageSegmenterOptions.GetRootAs(bytes(custom.data), 0)
            activation = {0: "none", 1: "sigmoid", 2: "softmax"}[options.Activation()]
    label_files = [f.name.decode() for f in output.associatedFiles or []]
    names = files.get(label_files[0]) if label_files else None
    return {
        "name": meta.name.decode(),
        "min_parser_version": meta.minParserVersion.decode(),
        "input": image.name.decode(),
        "output": output.name.decode(),
        "mean": [float(v) for v in norm.mean],
        "std": [float(v) for v in norm.std],
        "min": [float(v) for v in image.stats.min],
        "max": [float(v) for v in image.stats.max],
        "activation": activation,
        "label_files": label_files,
        "class_names": (
            tuple(n for n in names.decode("utf-8").splitlines() if n.strip()) if names else None
        ),
    }
