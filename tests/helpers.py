"""Shared test helpers (pytest puts this folder on sys.path)."""

import keras
import numpy as np


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
