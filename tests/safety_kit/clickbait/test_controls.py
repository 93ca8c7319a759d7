"""The planted-shortcut controls in quick form (the benchmark runs them with 8–10 seeds at the brief's widths)."""

import dataclasses

import pytest

from safety_kit.clickbait.bench import CONTROL_DATASETS, PROFILES, run_control
from safety_kit.clickbait.claims import HEADROOM, negative_control, positive_control
from safety_kit.clickbait.synthetic import planted_shortcut
from shared.claims import check, per_seed

QUICK = dataclasses.replace(PROFILES["default"], group_dim=32, fused_dim=32, latent_dim=16, max_epochs=15,
                            control_train=800, control_test=1500,
                            control_arms=("text_only_logreg", "causal_logreg", "erm", "vrex", "debiased",
                                          "debiased_oracle_env"))


@pytest.fixture(scope="module")
def rows():
    return [row for name in CONTROL_DATASETS for seed in range(3) for row in run_control(name, QUICK, seed)]


def _mean(rows, dataset, arm, metric):
    values = per_seed(rows, metric, dataset=dataset, arm=arm)
    return sum(values.values()) / len(values)


def test_generator_plants_what_it_says():
    data = planted_shortcut(3000, 3000, seed=0)
    rates = {e: data.disguise_train[(data.env_train == e) & (data.y_train == 0)].mean() for e in range(3)}
    assert rates[0] > rates[1] > rates[2] > 0.6  # "news-like" disguise on non-bait, strength varies by scenario
    assert {name for name, _, _ in data.feature_groups} == {"headline", "image", "disguise"}
    clean = planted_shortcut(3000, 10, seed=0, shortcut=False)
    assert abs(clean.disguise_train[clean.y_train == 1].mean() - clean.disguise_train[clean.y_train == 0].mean()) < 0.06


def test_the_control_tests_the_mechanism(rows):
    """Nothing simpler solves it: the text alone stays well below the causal ceiling, and ERM falls OOD."""
    ceiling = _mean(rows, "control_shortcut", "causal_logreg", "ood_f1")
    assert _mean(rows, "control_shortcut", "text_only_logreg", "ood_f1") <= ceiling - HEADROOM
    erm_id = _mean(rows, "control_shortcut", "erm", "id_f1")
    assert _mean(rows, "control_shortcut", "erm", "ood_f1") < erm_id - 0.1


def test_negative_control_passes(rows):
    found = negative_control(rows)
    check([], [found])
    assert found["passed"], found["observed"]


def test_oracle_environments_drop_the_shortcut(rows):
    """Diagnostic (issue 21): given environments that split the rows by whether the disguise agrees with the label,
    the same model drops the planted shortcut (OOD gain over ERM well above seed noise), so penalty, gradient
    reversal and factor routing work, and what fails is environment inference. Its ID F1 falls towards the
    shortcut-free level (the disguise is ~80% right in distribution), which is the second half of the diagnosis."""
    gain = _mean(rows, "control_shortcut", "debiased_oracle_env", "ood_f1") - _mean(rows, "control_shortcut", "erm",
                                                                                     "ood_f1")
    assert gain > 0.05, gain
    assert _mean(rows, "control_shortcut", "debiased_oracle_env", "ood_f1") > _mean(rows, "control_shortcut", "vrex",
                                                                                    "ood_f1") + 0.05


@pytest.mark.xfail(strict=True, reason=(
    "issue 21, diagnosis: (1) environment inference — the scenarios the model infers (within-class k-means on the "
    "headline: the topics) or is given (the true scenarios) differ only in how often the disguise agrees with the "
    "label (0.9/0.8/0.7), and V-REx/IRM across them keep the shortcut (even full-batch at penalty 1e4); EIIL "
    "splits correct from wrong rows of its reference, not agree from disagree, and that penalty costs ID F1; "
    "none of the brief's options A-C or EIIL yields shortcut-breaking environments here. With oracle agree/disagree "
    "environments the same model gains +0.12-0.15 OOD F1 over ERM here (+0.10 at the brief's widths, 3 seeds; "
    "test above). (2) Even then ID F1 falls below ERM's (−0.04 to −0.10 here, −0.018 mean at the brief's widths), "
    "at or outside the control's 1-point ID rule: the disguise is ~80% right in distribution, so dropping it "
    "costs ID accuracy that ERM keeps (ERM ID 0.87-0.88 with the shortcut vs ~0.84 without)."))
def test_positive_control_passes(rows):
    found = positive_control(rows)
    check([], [found])
    assert found["passed"], found["observed"]
