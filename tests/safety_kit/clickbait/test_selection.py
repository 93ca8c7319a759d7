"""Model selection (issue 21): the rule is fixed, the same for every arm, and never returns a pre-penalty network;
environments given to ``fit`` are used or warned about."""

import numpy as np
import pytest

from safety_kit.clickbait.baselines import InvariantMLPClassifier
from safety_kit.clickbait.model import DebiasedClickbaitClassifier
from shared.errors import ConfigError

from .planted import planted

TINY = dict(group_dim=16, fused_dim=16, hidden_dim=16, random_state=0)


@pytest.fixture(scope="module")
def shortcut_data():
    return planted(600, [0.95, 0.85, 0.75], 0)


def test_training_domain_selection_never_restores_a_pre_penalty_network(shortcut_data):
    """V-REx at weight 1000: the in-distribution validation F1 peaks during the anneal (the shortcut epoch);
    before the fix that epoch (1) was restored, i.e. the network of a run that stopped before the penalty."""
    X, y, env = shortcut_data
    kw = dict(objective="vrex", penalty_weight=1000.0, penalty_anneal_epochs=2, patience=3, **TINY)
    stopped = InvariantMLPClassifier(selection="training_domain", max_epochs=10, **kw).fit(X, y, environments=env)
    pre_penalty = InvariantMLPClassifier(selection="training_domain", max_epochs=2, **kw).fit(X, y, environments=env)
    assert not np.allclose(stopped.decision_function(X), pre_penalty.decision_function(X))
    assert stopped.selected_epoch_ >= 2


def test_debiased_early_stopping_skips_the_warmup(shortcut_data):
    X, y, env = shortcut_data
    model = DebiasedClickbaitClassifier(selection="training_domain", warmup_epochs=2, max_epochs=6, latent_dim=8,
                                        **TINY).fit(X, y, environments=env)
    assert model.selected_epoch_ >= 2


@pytest.mark.parametrize("make", [
    lambda: InvariantMLPClassifier(objective="vrex", max_epochs=5, **TINY),
    lambda: DebiasedClickbaitClassifier(max_epochs=5, latent_dim=8, **TINY),
])
def test_default_rule_is_the_fixed_schedule(make, shortcut_data):
    """The default keeps the last epoch and holds no rows out (no split that rewards the shortcut)."""
    X, y, env = shortcut_data
    model = make().fit(X, y, environments=env)
    assert model.get_params()["selection"] == "fixed"
    assert model.selected_epoch_ == model.n_epochs_ - 1 == 4
    assert all("val_f1" not in record for record in model.history_)


def test_leave_one_environment_out_holds_one_environment_out(shortcut_data):
    X, y, env = shortcut_data
    model = InvariantMLPClassifier(objective="erm", selection="leave_one_environment_out", max_epochs=4,
                                   **TINY).fit(X, y, environments=env)
    assert model.validation_environment_ == 2 and "val_f1" in model.history_[0]
    named = np.array(["sports", "politics", "celebrity"])[env]
    model.set_params(validation_environment="politics").fit(X, y, environments=named)
    assert model.validation_environment_ == "politics"
    with pytest.raises(ConfigError, match="not one of the environments"):
        model.set_params(validation_environment="weather").fit(X, y, environments=named)
    with pytest.raises(ConfigError, match="environments="):
        InvariantMLPClassifier(selection="leave_one_environment_out", **TINY).fit(X, y)
    with pytest.raises(ConfigError, match="≥ 3 environments"):
        InvariantMLPClassifier(selection="leave_one_environment_out", **TINY).fit(X, y, environments=env % 2)
    with pytest.raises(ConfigError, match="selection must be"):
        DebiasedClickbaitClassifier(selection="oracle", **TINY).fit(X, y)


def test_environments_given_to_fit_are_used_by_default(shortcut_data):
    """Before the fix the default strategy replaced a 2-environment array by 4 k-means environments, silently."""
    X, y, env = shortcut_data
    model = DebiasedClickbaitClassifier(max_epochs=3, warmup_epochs=1, latent_dim=8, **TINY)
    model.fit(X, y, environments=env % 2)
    assert model.n_environments_ == 2 and model.environment_strategy_ == "given"
    unlabelled = DebiasedClickbaitClassifier(max_epochs=3, warmup_epochs=1, latent_dim=8, **TINY).fit(X, y)
    assert unlabelled.environment_strategy_ == "kmeans" and unlabelled.n_environments_ == 4


def test_environments_an_inferring_strategy_ignores_are_warned_about(shortcut_data):
    X, y, env = shortcut_data
    with pytest.warns(UserWarning, match="not used"):
        DebiasedClickbaitClassifier(environment_strategy="kmeans", max_epochs=2, warmup_epochs=1, latent_dim=8,
                                    **TINY).fit(X, y, environments=env)
    with pytest.warns(UserWarning, match="not used"):
        InvariantMLPClassifier(objective="erm", max_epochs=2, **TINY).fit(X, y, environments=env)
