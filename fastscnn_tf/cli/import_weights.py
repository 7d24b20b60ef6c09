"""`fastscnn import-weights`: a reference PyTorch checkpoint -> a `.keras` model and its labels."""

import dataclasses
import os

from fastscnn_tf import labels as labels_lib
from fastscnn_tf import weights
from fastscnn_tf.cli.config import field
from fastscnn_tf.modelfile import save_model_atomic

LABEL_SETS = {"cityscapes": labels_lib.CITYSCAPES, "camvid": labels_lib.CAMVID}


def label_set(spec, num_classes):
    """`auto` (Cityscapes for 19 classes, CamVid for 11, else generic), a name of
    `LABEL_SETS`, `generic`, or a labels.txt path."""
    if spec == "auto":
        known = {labels.num_classes: labels for labels in LABEL_SETS.values()}
        return known.get(num_classes, labels_lib.generic(num_classes))
    if spec == "generic":
        return labels_lib.generic(num_classes)
    if spec in LABEL_SETS:
        labels = LABEL_SETS[spec]
    elif os.path.isfile(spec):
        labels = labels_lib.read_labels(spec)
    else:
        raise FileNotFoundError(
            f"--labels {spec}: neither a labels file nor one of auto, generic, "
            + ", ".join(LABEL_SETS)
        )
    if labels.num_classes != num_classes:
        raise ValueError(
            f"--labels {spec}: {labels.num_classes} classes, the checkpoint has {num_classes}"
        )
    return labels


@dataclasses.dataclass
class ImportConfig:
    checkpoint: str = field("", "reference PyTorch checkpoint (.pth/.pt, or .npz)", positional=True)
    output: str = field("model.keras", "where to write the Keras model (.keras)")
    num_classes: int | None = field(
        None, "number of classes (default: read from classifier.conv.1.weight)"
    )
    aux: bool = field(False, "import the reference's auxiliary head (auxlayer.*) too")
    drop_aux: bool = field(False, "leave out the checkpoint's auxlayer.* tensors on purpose")
    labels: str = field(
        "auto",
        "classes written to labels.txt beside the model (export ships it to the app): "
        "cityscapes, camvid, generic, a labels.txt path, or auto (19 classes: cityscapes, "
        "11: camvid, else generic)",
    )


def run(config):
    if not config.output.endswith(".keras"):
        raise ValueError(f"--output {config.output}: must end in .keras")
    if config.aux and config.drop_aux:
        raise ValueError("--aux and --drop-aux contradict each other: pass one")
    state = weights.read_checkpoint(config.checkpoint)
    try:
        model = weights.import_state_dict(state, config.num_classes, config.aux, config.drop_aux)
    except ValueError as error:
        raise ValueError(f"{config.checkpoint}: {error}") from None
    classes = model.get_layer("cls_conv").filters
    labels = label_set(config.labels, classes)
    save_model_atomic(model, config.output)
    labels_path = labels_lib.own_labels_path(config.output)
    labels_lib.write_labels(labels_path, labels)
    print(
        f"imported {len(model.weights)} tensors from {config.checkpoint} -> {config.output} "
        f"({classes} classes, input RGB [0, 255], align_corners=True) and {labels_path}"
    )
