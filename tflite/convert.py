"""Convert a trained Fast-SCNN `.keras` model to `.tflite`: `fastscnn export` as a script.

    python tflite/convert.py runs/camvid/model.keras --size 360x480 --precision int8

Takes the same options as `fastscnn export` (see `--help`); without `--output` the model is
written into this folder, with its labels beside it (`NAME.labels.txt`).
"""

import os
import sys

from fastscnn_tf import cli

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    wants_help = "-h" in args or "--help" in args
    if not wants_help and not any(a == "--output" or a.startswith("--output=") for a in args):
        config = cli.build_parser("export").parse_args(["export", *args])
        from fastscnn_tf import export  # loaded by the parser, without TensorFlow's log

        name = os.path.basename(
            export.default_output(
                config.model,
                export.ExportSpec(
                    config.size,
                    config.precision,
                    config.output_kind,
                    config.output_stride,
                    config.mask_stride,
                ),
            )
        )
        args += ["--output", os.path.join(HERE, name)]
    return cli.main(["export", *args])


if __name__ == "__main__":
    sys.exit(main())
