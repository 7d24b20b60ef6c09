"""`fastscnn summary`: layer table, parameter counts and MACs at a given input size."""

import dataclasses

from fastscnn_tf.cli.config import field, parse_size


@dataclasses.dataclass
class SummaryConfig:
    num_classes: int = field(19, "number of output classes")
    size: tuple[int, int] = field((1024, 2048), "input size HxW", parse=parse_size)
    aux: bool = field(False, "include the auxiliary head on the 1/8 stream")
    aux2: bool = field(False, "include the auxiliary head on the global features")
    layers: bool = field(True, "print the per-layer table")


def summarize(config):
    """Return the summary as text (one row per layer with weights or MACs, then totals)."""
    from fastscnn_tf.complexity import count_params, layer_macs  # loads TensorFlow
    from fastscnn_tf.model import FastSCNN

    model = FastSCNN(
        config.num_classes, input_shape=(*config.size, 3), aux=config.aux, aux2=config.aux2
    )
    rows = []
    total_macs = 0
    for layer in model.layers:
        macs = layer_macs(layer)
        total_macs += macs
        params = int(sum(w.numpy().size for w in layer.weights))
        if config.layers and (macs or params):
            shape = "x".join(str(d) for d in layer.output.shape[1:])
            rows.append(
                f"{layer.name:<28} {type(layer).__name__:<24} {shape:>16} "
                f"{params:>10,} {macs / 1e6:>10.2f}"
            )
    header = f"{'layer':<28} {'type':<24} {'output':>16} {'params':>10} {'MMACs':>10}"
    lines = [header, "-" * len(header), *rows] if config.layers else []
    h, w = config.size
    lines += [
        f"Fast-SCNN, {config.num_classes} classes, input {h}x{w}",
        f"trainable parameters:     {count_params(model):,}",
        f"non-trainable parameters: {count_params(model, trainable=False):,}",
        f"multiply-accumulates:     {total_macs / 1e9:.3f} G",
    ]
    return "\n".join(lines)


def run(config):
    print(summarize(config))
