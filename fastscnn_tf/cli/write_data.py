"""`fastscnn write-data`: a data set's examples as an image/mask folder (`folder:OUT` reads it)."""

import dataclasses

from fastscnn_tf.cli import config as cfg


@dataclasses.dataclass
class WriteDataConfig:
    dataset: str = cfg.field(
        "synthetic", "data set spec: synthetic | folder:PATH | tfds:NAME | ..."
    )
    split: str = cfg.field("val", "split to write")
    out: str = cfg.field("runs/data", "output folder: images/SPLIT, masks/SPLIT, labels.txt")
    count: int = cfg.field(8, "number of examples to write (0: all)")
    seed: int = cfg.field(0, "seed of the synthetic generator")


def run(config):
    from fastscnn_tf import data  # loads TensorFlow

    source = data.load_source(config.dataset, config.split, seed=config.seed)
    written = data.write_folder(source, config.out, config.split, config.count)
    print(f"wrote {written} {config.split} examples of {source.name} to {config.out}")
    return 0
