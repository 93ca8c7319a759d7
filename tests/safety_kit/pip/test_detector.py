"""PIPDetector: scikit-learn contract, planted-shift detection vs pure noise, k-of-n voting, persistence."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from safety_kit.pip.detector import PIPDetector, detection_metrics, imbalanced_mix


@parametrize_with_checks([PIPDetector(), PIPDetector(standardize=True, C=1.0)])
def test_sklearn_contract(estimator, check):
    """Every check_estimator check passes (sklearn itself skips the array-API check without SCIPY_ARRAY_API)."""
    check(estimator)


def planted(n=300, d=48, shift=1.0, informative=6, seed=0, n_probes=1):
    """Clean ~ N(0, 1); adversarial = clean + ``shift`` on a few dims of every probe block (Bayes AUC ≈ 0.96)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, n_probes * d))
    y = np.r_[np.zeros(n), np.ones(n)]
    for j in range(n_probes):
        X[n:, j * d:j * d + informative] += shift
    return X, y


def test_separates_a_planted_shift_and_fails_on_noise():
    X, y = planted(seed=0)
    X_test, y_test = planted(seed=1)
    detector = PIPDetector().fit(X, y)
    good = detection_metrics(y_test, detector.decision_function(X_test))
    assert good["auc"] > 0.9 and good["recall"] > 0.75 and good["precision"] > 0.75
    # labels unrelated to the features: a held-out AUC near chance
    noise_y = np.random.default_rng(2).permutation(y)
    chance = detection_metrics(y_test, PIPDetector().fit(X, noise_y).decision_function(X_test))
    assert abs(chance["auc"] - 0.5) < 0.1


def test_k_of_n_voting_matches_per_probe_votes():
    X, y = planted(n=100, n_probes=3, shift=0.5, seed=3)
    X_test, _ = planted(n=100, n_probes=3, shift=0.5, seed=4)
    for k in (1, 2, 3):
        detector = PIPDetector(n_probes=3, alarm_k=k, C=0.1).fit(X, y)
        votes = (detector.probe_decisions(X_test) > 0).sum(1)
        np.testing.assert_array_equal(detector.predict(X_test), (votes >= k).astype(float))
        assert len(detector.estimators_) == 3 and detector.estimators_[0].n_features_in_ == 48
    # a 3-D (N, probes, features) input is the same as the flattened one
    detector = PIPDetector(n_probes=3, alarm_k=2, C=0.1).fit(X.reshape(len(X), 3, 48), y)
    np.testing.assert_allclose(detector.decision_function(X_test.reshape(len(X_test), 3, 6, 8)),
                               PIPDetector(n_probes=3, alarm_k=2, C=0.1).fit(X, y).decision_function(X_test))


def test_official_defaults_and_bad_parameters():
    detector = PIPDetector()
    assert (detector.C, detector.kernel, detector.n_probes, detector.alarm_k, detector.standardize) == \
        (10.0, "linear", 1, 1, False)
    X, y = planted(d=10)
    with pytest.raises(ValueError, match="alarm_k"):
        PIPDetector(n_probes=2, alarm_k=3).fit(X, y)
    with pytest.raises(ValueError, match="multiple of n_probes"):
        PIPDetector(n_probes=3).fit(X[:, :10], y)
    with pytest.raises(ValueError, match="binary"):
        PIPDetector().fit(X, np.arange(len(y)) % 3)


def test_pickle_clone_and_pipeline():
    X, y = planted(seed=5)
    detector = PIPDetector(standardize=True).fit(X, y)
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(restored.decision_function(X), detector.decision_function(X))
    assert clone(detector).get_params() == detector.get_params()
    pipe = make_pipeline(StandardScaler(), PIPDetector()).fit(X, y)
    assert pipe.score(X, y) > 0.8


def test_imbalanced_mix_is_ten_to_one_and_reproducible():
    clean, adv = imbalanced_mix(1000, 1000, ratio=10, seed=0)
    assert len(clean) == 1000 and len(adv) == 100
    np.testing.assert_array_equal(adv, imbalanced_mix(1000, 1000, ratio=10, seed=0)[1])
