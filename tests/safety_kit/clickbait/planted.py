"""A tiny planted-shortcut tabular problem shared by the clickbait model and selection tests."""

import numpy as np


def planted(n, rates, seed):
    """x_inv (5-d) predicts y the same way everywhere; x_spur agrees with y with an environment-specific rate."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    env = rng.integers(0, len(rates), size=n)
    x_inv = (2 * y - 1)[:, None] * 0.3 + rng.normal(size=(n, 5))
    agree = rng.random(n) < np.asarray(rates)[env]
    spur = np.where(agree, 2 * y - 1, 1 - 2 * y)[:, None] * 1.0 + 0.1 * rng.normal(size=(n, 3))
    return np.hstack([x_inv, spur]).astype(np.float32), y, env
