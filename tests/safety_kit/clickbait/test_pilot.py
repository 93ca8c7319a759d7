"""Brief §8.3's pilot replication (safety_kit.clickbait.pilot): data construction, the scale mechanism, bad input."""

import numpy as np
import pytest

from safety_kit.clickbait.pilot import PilotConfig, describe_pilot, pilot_data, run_pilot, summarise_pilot
from safety_kit.clickbait.synthetic import TEST_OOD, TRAIN_RATES
from shared.errors import ConfigError, DataError


def _embeddings(n=1200, dim=32, seed=0):
    """Small-scale 'embeddings' (per-column s.d. 0.05, as a unit-norm sentence embedding's) whose label is spread
    over every column: easy from the text once the columns are on the disguise's scale."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sign = rng.choice([-1.0, 1.0], dim)
    return 0.05 * (rng.normal(size=(n, dim)) + 0.5 * np.outer(2 * y - 1, sign)), y


def test_pilot_data_plants_the_brief_rates():
    E, y = _embeddings(6000)
    X, labels, env, train, test_id, test_ood = pilot_data(E, y, seed=1)
    assert X.shape == (6000, 32 + 8) and len(train) == 3600 and len(test_id) == len(test_ood) == 1200
    flags = X[:, 32:].mean(axis=1) > 0.75  # shift 1.5 on 8 N(0,1) columns: the mean separates the two states
    for e, rates in enumerate(TRAIN_RATES):
        rows = train[env[train] == e]
        assert abs(flags[rows][labels[rows] == 1].mean() - rates.bait) < 0.06
        assert abs(flags[rows][labels[rows] == 0].mean() - rates.non_bait) < 0.06
    assert abs(flags[test_ood][labels[test_ood] == 1].mean() - TEST_OOD.bait) < 0.06


def test_raw_scale_makes_the_plain_mlp_take_the_shortcut_and_standardising_removes_it():
    E, y = _embeddings()
    cfg = PilotConfig(epochs=40, warmup_epochs=8, penalties=(0.0, 1000.0))
    summary = summarise_pilot(run_pilot(E, y, [0, 1], cfg, models=("plain",)))
    raw, std = summary["plain/raw"]["penalty_0"], summary["plain/standardised"]["penalty_0"]
    # measured at these settings: raw drop ≈ 0.7, standardised ≈ 0.01
    assert raw["id_f1"] - raw["ood_f1"] > 0.3 and std["id_f1"] - std["ood_f1"] < 0.1, summary
    # with the shortcut taken, the V-REx penalty over the three environments wins part of the drop back (≈ +0.2)
    assert summary["plain/raw"]["penalty_1000"]["ood_gain_vs_erm"] > 0.1, summary
    assert "plain/raw: ERM F1" in describe_pilot(summary) and "1000: +" in describe_pilot(summary)


def test_pilot_refuses_bad_input():
    E, y = _embeddings(100)
    with pytest.raises(DataError, match="one label per row"):
        pilot_data(E, y[:50], seed=0)
    with pytest.raises(DataError, match="both labels"):
        pilot_data(E, np.zeros(100, dtype=int), seed=0)
    with pytest.raises(ConfigError, match="unknown models"):
        run_pilot(E, y, [0], models=("forest",))


def test_benchmark_pilot_refuses_more_posts_than_the_corpus_has():
    import dataclasses

    from safety_kit.clickbait.bench import PROFILES, _pilot
    from shared.paths import has_data

    if not has_data("clickbait/clickbait_data.gz"):
        pytest.skip("needs $PAPERKITS_DATA/clickbait")
    cfg = dataclasses.replace(PROFILES["default"], pilot_posts=10**6)
    with pytest.raises(ConfigError, match="per class"):
        _pilot(cfg, embed=lambda texts: None)
