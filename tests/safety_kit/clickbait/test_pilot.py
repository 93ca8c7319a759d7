"""Brief §8.3's pilot replication (safety_kit.clickbait.pilot): data construction, the scale mechanism, bad input."""

import numpy as np
import pytest

from safety_kit.clickbait.pilot import (
    OOD_RATES,
    TRAIN_RATES,
    PilotConfig,
    describe_pilot,
    pilot_data,
    run_pilot,
    summarise_pilot,
)
from shared.errors import ConfigError, DataError


def _embeddings(n=1200, dim=32, seed=0):
    """Unit-norm 'embeddings' whose label lives in one direction (per-column s.d. ~ 1/sqrt(dim), as MiniLM's)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    E = rng.normal(size=(n, dim))
    E[:, 0] += 2.5 * (2 * y - 1)
    return E / np.linalg.norm(E, axis=1, keepdims=True), y


def test_pilot_data_plants_the_brief_rates():
    E, y = _embeddings(6000)
    X, labels, env, train, test_id, test_ood = pilot_data(E, y, seed=1)
    assert X.shape == (6000, 32 + 8) and len(train) == 3600 and len(test_id) == len(test_ood) == 1200
    flags = X[:, 32:].mean(axis=1) > 0.75  # shift 1.5 on 8 N(0,1) columns: the mean separates the two states
    for e, (bait, news) in enumerate(TRAIN_RATES):
        rows = train[env[train] == e]
        assert abs(flags[rows][labels[rows] == 1].mean() - bait) < 0.06
        assert abs(flags[rows][labels[rows] == 0].mean() - news) < 0.06
    assert abs(flags[test_ood][labels[test_ood] == 1].mean() - OOD_RATES[0]) < 0.06


def test_raw_scale_makes_the_plain_mlp_take_the_shortcut_and_standardising_removes_it():
    E, y = _embeddings()
    cfg = PilotConfig(epochs=40, warmup_epochs=8, penalties=(0.0, 1000.0))
    summary = summarise_pilot(run_pilot(E, y, [0, 1], cfg, models=("plain",)))
    raw, std = summary["plain/raw"]["penalty_0"], summary["plain/standardised"]["penalty_0"]
    assert raw["id_f1"] - raw["ood_f1"] > std["id_f1"] - std["ood_f1"] + 0.05, summary
    assert "plain/raw: ERM F1" in describe_pilot(summary)


def test_pilot_refuses_bad_input():
    E, y = _embeddings(100)
    with pytest.raises(DataError, match="one label per row"):
        pilot_data(E, y[:50], seed=0)
    with pytest.raises(DataError, match="both labels"):
        pilot_data(E, np.zeros(100, dtype=int), seed=0)
    with pytest.raises(ConfigError, match="unknown models"):
        run_pilot(E, y, [0], models=("forest",))
