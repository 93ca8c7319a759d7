import numpy as np

from safety_kit.clickbait.baselines import make_logistic_baseline
from safety_kit.clickbait.environments import eiil_environments, kmeans_environments, within_class_kmeans
from safety_kit.clickbait.synthetic import (
    TEST_OOD,
    TRAIN_RATES,
    draw_disguise,
    planted_shortcut,
    synthetic_headlines,
)


def test_within_class_kmeans_recovers_planted_scenarios_with_both_classes():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6, size=(3, 5))
    scen = rng.integers(0, 3, size=600)
    y = rng.integers(0, 2, size=600)
    Z = centres[scen] + rng.normal(size=(600, 5)) + 3.0 * y[:, None]  # the class shifts every scenario alike
    env = within_class_kmeans(Z, y, 3, seed=0)
    for e in range(3):
        assert 0.3 < y[env == e].mean() < 0.7  # each environment holds both classes
    # each inferred environment is one planted scenario (up to relabelling)
    purity = sum(np.bincount(scen[env == e]).max() for e in range(3)) / len(y)
    assert purity > 0.95
    plain = kmeans_environments(Z, 2, seed=0)
    assert abs(np.corrcoef(plain, y)[0, 1]) < 1.0  # sanity: plain k-means runs on the same data


def test_disguise_rates_match_the_plan():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=60000)
    env = rng.integers(0, 3, size=60000)
    flags = draw_disguise(y, list(TRAIN_RATES), env, rng)
    for e, rates in enumerate(TRAIN_RATES):
        assert abs(flags[(env == e) & (y == 1)].mean() - rates.bait) < 0.015
        assert abs(flags[(env == e) & (y == 0)].mean() - rates.non_bait) < 0.015
    ood = draw_disguise(y, TEST_OOD, None, rng)
    assert abs(ood[y == 1].mean() - 0.9) < 0.01 and abs(ood[y == 0].mean() - 0.1) < 0.01


def test_synthetic_headlines_have_planted_cues():
    texts, y, scen = synthetic_headlines(3000, seed=0)
    cued = np.array(["believe" in t.lower() or "?" in t or t[:2].strip().isdigit() or "most" in t.lower()
                     or "best" in t.lower() or "craziest" in t.lower() or "happens" in t.lower() or "why" in t.lower()
                     or "nobody" in t.lower() or "need to see" in t.lower() for t in texts])
    assert cued[y == 1].mean() > 0.7 and cued[y == 0].mean() < 0.15  # informative but imperfect text
    listicle = np.array([t.split()[0].isdigit() and "officials" not in t for t in texts])
    assert listicle[(y == 1) & (scen == 0)].mean() > 0.4 and listicle[(y == 1) & (scen == 1)].mean() == 0


def test_eiil_splits_by_reliance_on_a_spurious_cue():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    agree = rng.random(400) < 0.8  # the reference model is right where the spurious cue agrees with y
    logits = np.where(agree, 3.0, -3.0) * (2 * y - 1)
    env = eiil_environments(logits, y, seed=0)
    assert 0 < env.mean() < 1
    split = abs(np.corrcoef(env, agree)[0, 1])
    assert split > 0.8


def test_eiil_does_not_collapse_onto_a_few_misclassified_rows():
    """EIIL's risk is (w·ℓ).mean() over all rows (reference code); normalising by the environment's mass made a
    tiny environment of the worst rows maximise the penalty (99.3% of rows in one environment before the fix)."""
    data = planted_shortcut(2000, 10, seed=0)
    reference = make_logistic_baseline().fit(data.X_train, data.y_train)  # leans on the planted disguise
    env = eiil_environments(reference.decision_function(data.X_train), data.y_train, seed=0)
    assert min(env.mean(), 1 - env.mean()) > 0.05
    agrees = (data.disguise_train == 1 - data.y_train).astype(int)  # disguise says "news" exactly for non-bait
    assert abs(np.corrcoef(env, agrees)[0, 1]) > 0.2  # the split follows where the shortcut holds
