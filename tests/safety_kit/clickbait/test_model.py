import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_methods_subset_invariance, parametrize_with_checks

from safety_kit.clickbait.baselines import InvariantMLPClassifier, make_baseline
from safety_kit.clickbait.model import DebiasedClickbaitClassifier
from shared.errors import ConfigError

from .planted import planted

NET = dict(fused_dim=16, group_dim=8, hidden_dim=16, max_epochs=12, learning_rate=1e-2)
SMALL = dict(NET, latent_dim=4)
# sklearn's whole check suite on every torch-backed estimator at its DEFAULT widths (group_dim = fused_dim = 256,
# latent 64, hidden 128): float32 rounding that depends on the batch only shows at realistic widths (issue 21:
# decision_function differed by ~2e-6 between a batch and its subset). Only max_epochs is lowered (8 instead of
# 30) to keep this under ~15 s; the full-default subset check below trains all 30 epochs. No check is skipped;
# the estimators are binary-only (tag multi_class=False), so sklearn runs
# check_classifier_not_supporting_multiclass instead of the multiclass checks.
CONFORMANCE = [DebiasedClickbaitClassifier(max_epochs=8), InvariantMLPClassifier(objective="erm", max_epochs=8),
               InvariantMLPClassifier(objective="vrex", max_epochs=8)]


@parametrize_with_checks(CONFORMANCE)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [DebiasedClickbaitClassifier(), InvariantMLPClassifier()],
                         ids=["debiased", "erm"])
def test_predictions_are_batch_invariant_at_full_defaults(estimator):
    check_methods_subset_invariance(type(estimator).__name__, estimator)


def test_full_model_uses_invariant_factor_where_erm_latches_onto_spurious():
    X, y, env = planted(2000, [0.95, 0.85, 0.75], 0)
    X_ood, y_ood, _ = planted(1000, [0.1], 1)  # the spurious cue flips at test time
    groups = [("text", 0, 5), ("image", 5, 8)]
    erm = InvariantMLPClassifier(objective="erm", feature_groups=groups, max_epochs=12, random_state=0).fit(X, y)
    full = DebiasedClickbaitClassifier(feature_groups=groups, environment_strategy="given", lambda_inv=100.0,
                                       invariance_target="both", max_epochs=12, random_state=0).fit(X, y, environments=env)
    erm_acc, full_acc = erm.score(X_ood, y_ood), full.score(X_ood, y_ood)
    assert erm_acc < 0.4  # ERM leans on the cue that flipped (measured 0.26)
    assert full_acc > erm_acc + 0.15, (erm_acc, full_acc)  # measured 0.51


def test_pickle_clone_and_pipeline_round_trip():
    X, y, _ = planted(300, [0.5], 0)
    model = make_pipeline(StandardScaler(), DebiasedClickbaitClassifier(**SMALL, random_state=0)).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    assert np.allclose(again.predict_proba(X), model.predict_proba(X))
    fresh = clone(model[-1])
    assert fresh.get_params() == model[-1].get_params() and not hasattr(fresh, "network_")
    factors = model[-1].factors(model[0].transform(X))
    assert {k: v.shape for k, v in factors.items()} == {k: (300, 4) for k in ("invariant", "causal", "noise")}
    assert model[-1].transform(model[0].transform(X)).shape == (300, 12)


@pytest.mark.parametrize("strategy", ["kmeans", "kmeans_within_class", "learned", "eiil"])
def test_environment_strategies_train(strategy):
    X, y, _ = planted(400, [0.9], 0)
    model = DebiasedClickbaitClassifier(**SMALL, environment_strategy=strategy, n_environments=3,
                                        warmup_epochs=1, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.8
    assert model.n_environments_ == (2 if strategy == "eiil" else 3)
    assert model.infer_environments(X).max() < model.n_environments_


def test_learned_environments_are_not_trained_by_the_invariance_penalty():
    """Issue 21: option B's assigner π is trained by L_env and the balance term (brief §2.3); when the V-REx
    gradient reached it, π learned environments of equal risk, which makes the penalty vacuous."""
    X, y, _ = planted(200, [0.9], 0)
    model = DebiasedClickbaitClassifier(**{**SMALL, "max_epochs": 2}, environment_strategy="learned",
                                        n_environments=2, warmup_epochs=1, random_state=0).fit(X, y)
    assigner = model.network_.environment_assigner
    for name, expect_grad in (("inv", False), ("balance", True)):
        model.network_.zero_grad(set_to_none=True)
        model.loss_terms(X, y)[name].backward()
        grad = assigner.weight.grad
        assert (grad is not None and float(grad.abs().sum()) > 0) == expect_grad, name


def test_invariance_weight_rescales_the_loss_like_the_baselines():
    """Issue 21: once the penalty applies, the IRM/V-REx reference code (and InvariantMLPClassifier) divide the loss
    by the penalty weight; the debiased model could not, so lambda_inv=100 and penalty_weight=100 trained
    differently in the benchmark's penalty arms."""
    import torch

    from safety_kit.clickbait.environments import one_hot

    X, y, env = planted(300, [0.9, 0.7], 0)
    model = DebiasedClickbaitClassifier(**SMALL, environment_strategy="given", lambda_inv=100.0, warmup_epochs=1,
                                        random_state=0).fit(X, y, environments=env)
    xb, yb = torch.from_numpy(model._standardise(X)), torch.from_numpy(y.astype(np.float32))
    envb = torch.from_numpy(one_hot(env, 2))

    def terms(epoch, rescale):
        model.set_params(rescale_penalty=rescale)
        torch.manual_seed(0)
        with torch.no_grad():
            return {k: float(v) for k, v in model._batch_loss(xb, yb, envb, epoch).items()}

    scaled, raw = terms(1, True), terms(1, False)
    assert "inv" in raw and set(scaled) == set(raw)
    for name, value in raw.items():
        assert scaled[name] == pytest.approx(value / 100.0, rel=1e-5), name
    assert terms(0, True) == terms(0, False)  # warm-up: no penalty, nothing to rescale


@pytest.mark.parametrize("make", ["vrex", "debiased"])
def test_adam_restarts_where_the_loss_is_divided_by_the_penalty_weight(make, monkeypatch):
    """Issue 21: without a restart, Adam's second moment (still holding the warm-up's larger gradients) shrinks every
    step ~weight-fold after the anneal: the penalty arms all but stopped fitting there, an early stop ERM did not get
    (ERM stopped at the same point matched the debiased model's OOD F1 on the planted control)."""
    import torch

    made = []
    real = torch.optim.AdamW

    def counting(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", counting)
    X, y, env = planted(120, [0.9, 0.7], 0)
    common = dict(**NET, random_state=0)
    if make == "vrex":
        model = InvariantMLPClassifier(objective="vrex", penalty_weight=100.0, penalty_anneal_epochs=1, **common)
    else:
        model = DebiasedClickbaitClassifier(**common, latent_dim=4, environment_strategy="given", lambda_inv=100.0,
                                            rescale_penalty=True, warmup_epochs=1)
    model.set_params(max_epochs=3).fit(X, y, environments=env)
    assert len(made) == 2  # built once, restarted once at the anneal


def test_bad_settings_are_config_errors():
    X, y, _ = planted(100, [0.5], 0)
    with pytest.raises(ConfigError, match="environments="):
        DebiasedClickbaitClassifier(environment_strategy="given").fit(X, y)
    with pytest.raises(ConfigError, match="environment_strategy"):
        DebiasedClickbaitClassifier(environment_strategy="magic").fit(X, y)
    with pytest.raises(ConfigError, match="lambda_inv"):
        DebiasedClickbaitClassifier(lambda_inv=-1).fit(X, y)
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("svm")


@pytest.mark.parametrize("objective", ["groupdro", "irm"])
def test_baselines_fit_with_inferred_environments(objective):
    X, y, _ = planted(300, [0.9], 0)
    model = InvariantMLPClassifier(objective=objective, **NET, random_state=0).fit(X, y)
    # > chance: the last epoch of the fixed schedule has the penalty applied, so the fit may trade the 0.9-reliable
    # spurious cue for the weaker invariant one (alone ≈ 0.75); ID-validation early stopping used to hide that
    assert model.score(X, y) > 0.65 and model.n_environments_ >= 2
