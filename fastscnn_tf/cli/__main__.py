"""`python -m fastscnn_tf.cli`: the `fastscnn` command."""

import sys

from fastscnn_tf.cli import main

sys.exit(main())
