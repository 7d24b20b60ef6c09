"""TFLite model metadata in the layout MediaPipe Tasks' ImageSegmenter reads.

A model file is a TFLite flatbuffer whose `metadata` list names a buffer "TFLITE_METADATA"
holding a `ModelMetadata` flatbuffer, followed by a zip archive of associated files (here the
class names, one per line). The metadata says: the input is an RGB image taken as-is in
[0, 255] (mean 0, std 1: the network normalises inside), the output is a segmentation map
with one channel per class, and, for logits, that MediaPipe should apply softmax to get
confidence masks.

The `ModelMetadata` classes are the ones MediaPipe generates from its schema
(`mediapipe.tasks.metadata.*_py_generated`), so writing and reading metadata needs the
`mediapipe` extra; the TFLite model itself is edited with LiteRT's schema classes.
Reading the embedded class names needs neither (they are a zip member).

Why not MediaPipe's own `metadata_writers.image_segmenter.MetadataWriter`: in the mediapipe
wheels this project installs (1.2.x) it cannot be imported (`python -c "from
mediapipe.tasks.python.metadata.metadata_writers import image_segmenter"` fails: the wheel
lacks its compiled `mediapipe.tasks.cc.metadata.python` module). Nor could it do all of this:
it embeds files only together with metadata (a `--no-metadata` export still carries the class
names, how a mask output tells its class count), leaves the tensors' names alone, and writes its
own model name. The flatbuffers built here use MediaPipe's generated schema classes, so the
layout is MediaPipe's, and the tests load every variant with MediaPipe's `ImageSegmenter`.
"""

import io
import zipfile

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

METADATA_NAME = "TFLITE_METADATA"
MODEL_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"
SEGMENTER_OPTIONS_IDENTIFIER = b"V001"
SEGMENTER_OPTIONS_NAME = "SEGMENTER_METADATA"
LABELS_FILE = "labels.txt"
# Custom metadata (the segmenter's activation) was added in metadata schema 1.5.0.
MIN_PARSER_VERSION = "1.5.0"
INSTALL_HINT = "pip install 'fastscnn-tf[mediapipe]'"


def available():
    """Whether the mediapipe package (its metadata schema classes) can be imported."""
    try:
        _schemas()
    except ImportError:
        return False
    return True


def _schemas():
    try:
        from mediapipe.tasks.metadata import image_segmenter_metadata_schema_py_generated as seg
        from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    except ImportError:
        raise ImportError(
            f"writing or reading TFLite metadata needs the mediapipe package ({INSTALL_HINT}); "
            "or export with metadata=False."
        ) from None
    return md, seg


def _image_input(md, name):
    tensor = md.TensorMetadataT()
    tensor.name = name
    tensor.description = "RGB image, uint8 in [0, 255]; the model normalises it itself."
    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.ImageProperties
    content.contentProperties = md.ImagePropertiesT()
    content.contentProperties.colorSpace = md.ColorSpaceType.RGB
    tensor.content = content
    norm = md.ProcessUnitT()
    norm.optionsType = md.ProcessUnitOptions.NormalizationOptions
    norm.options = md.NormalizationOptionsT()
    norm.options.mean = [0.0, 0.0, 0.0]
    norm.options.std = [1.0, 1.0, 1.0]
    tensor.processUnits = [norm]
    stats = md.StatsT()
    stats.max = [255.0, 255.0, 255.0]
    stats.min = [0.0, 0.0, 0.0]
    tensor.stats = stats
    return tensor


def _segmentation_output(md, name, description):
    tensor = md.TensorMetadataT()
    tensor.name = name
    tensor.description = description
    content = md.ContentT()
    content.contentPropertiesType = md.ContentProperties.ImageProperties
    content.contentProperties = md.ImagePropertiesT()
    content.contentProperties.colorSpace = md.ColorSpaceType.GRAYSCALE
    # The image dimensions are axes 1 and 2 of [1, H, W, C].
    content.range = md.ValueRangeT()
    content.range.min, content.range.max = 1, 2
    tensor.content = content
    labels = md.AssociatedFileT()
    labels.name = LABELS_FILE
    labels.description = "Class names in class-index order."
    labels.type = md.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor.associatedFiles = [labels]
    return tensor


def _segmenter_options(md, seg, activation):
    options = seg.ImageSegmenterOptionsT()
    options.activation = activation
    builder = flatbuffers.Builder(0)
    builder.Finish(options.Pack(builder), SEGMENTER_OPTIONS_IDENTIFIER)
    custom = md.CustomMetadataT()
    custom.name = SEGMENTER_OPTIONS_NAME
    custom.data = list(builder.Output())
    return custom


OUTPUT_DESCRIPTIONS = {
    "logits": "Per-class scores (logits) [1, H, W, C].",
    "probabilities": "Per-class probabilities (softmax) [1, H, W, C].",
    "mask": "Class index per pixel [1, H, W].",
}


def build_metadata(output_kind, class_names, description=""):
    """The `ModelMetadata` flatbuffer (bytes) for a segmentation model."""
    md, seg = _schemas()
    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_image_input(md, "image")]
    subgraph.outputTensorMetadata = [
        _segmentation_output(md, output_kind, OUTPUT_DESCRIPTIONS[output_kind])
    ]
    if output_kind != "mask":
        # MediaPipe turns scores into confidence masks with this activation.
        activation = seg.Activation.SOFTMAX if output_kind == "logits" else seg.Activation.NONE
        subgraph.customMetadata = [_segmenter_options(md, seg, activation)]
    model = md.ModelMetadataT()
    model.name = "Fast-SCNN"
    model.description = description or (
        f"Fast-SCNN semantic segmentation ({len(class_names)} classes)."
    )
    model.version = "1"
    model.minParserVersion = MIN_PARSER_VERSION
    model.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _split_archive(model_bytes):
    """A model file -> (flatbuffer bytes, {name: bytes} of the appended zip)."""
    stream = io.BytesIO(model_bytes)
    if not zipfile.is_zipfile(stream):
        return model_bytes, {}
    with zipfile.ZipFile(stream) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
        # Local file headers start at the first member's offset; the flatbuffer ends there.
        start = min(info.header_offset for info in archive.infolist())
    return model_bytes[:start], files


def _rename_io(model, input_name, output_name):
    subgraph = model.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].name = input_name.encode()
    subgraph.tensors[subgraph.outputs[0]].name = output_name.encode()


def populate(model_bytes, metadata_bytes, files, input_name="image", output_name=None):
    """Embed `metadata_bytes` and append `files` ({name: bytes}) as the zip MediaPipe reads.

    Also names the model's input and output tensors (the converter calls them "image" and
    "Identity"), so apps and the runtime can tell a mask from logits without the metadata.
    """
    flatbuffer, _ = _split_archive(model_bytes)
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(flatbuffer, 0))
    if output_name:
        _rename_io(model, input_name, output_name)
    if metadata_bytes is not None:
        buffer = tfl.BufferT()
        buffer.data = np.frombuffer(metadata_bytes, np.uint8)
        model.buffers.append(buffer)
        entry = tfl.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME.encode()]
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
    output = io.BytesIO(bytes(builder.Output()))
    output.seek(0, io.SEEK_END)
    if files:
        with zipfile.ZipFile(output, "a") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return output.getvalue()


def class_names_file(names):
    return ("\n".join(names) + "\n").encode("utf-8")


def embedded_files(path):
    with open(path, "rb") as f:
        return _split_archive(f.read())[1]


def read_class_names(path):
    """The class names embedded in a model file (a tuple), or None where it has none."""
    data = embedded_files(path).get(LABELS_FILE)
    if data is None:
        return None
    return tuple(line for line in data.decode("utf-8").splitlines() if line.strip())
