"""`fastscnn presets`: the trained models shipped in the package, usable as `--model NAME`."""

import dataclasses
import json

from fastscnn_tf import presets
from fastscnn_tf.cli.config import field


@dataclasses.dataclass
class PresetsConfig:
    json: bool = field(False, "print each preset's preset.json (with its folder) as JSON")


def run(config):
    if config.json:
        print(json.dumps([presets.info(name) for name in presets.names()], indent=2))
    else:
        print(presets.describe())
    return 0
