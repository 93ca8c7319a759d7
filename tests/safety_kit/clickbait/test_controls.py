"""The planted-shortcut controls in quick form (the benchmark runs them with 8–10 seeds at the brief's widths)."""

import dataclasses

import pytest

from safety_kit.clickbait.bench import CONTROL_DATASETS, PROFILES, run_control
from safety_kit.clickbait.claims import HEADROOM, negative_control, positive_control
from safety_kit.clickbait.synthetic import planted_shortcut
from shared.claims import check, per_seed

# small widths and the main benchmark's mini-batch schedule (batch 128, 15 epochs, warm-up 2, no loss rescaling) to
# stay under ~30 s; the benchmark's controls train full-batch with rescaling (bench.ClickbaitBenchConfig.control_*)
QUICK = dataclasses.replace(PROFILES["default"], group_dim=32, fused_dim=32, latent_dim=16, max_epochs=15,
                            control_train=800, control_test=1500, control_batch_size=128, control_max_epochs=15,
                            control_warmup_epochs=2, control_rescale_penalty=False,
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
    "issue 21, measured diagnosis (default widths, seeds 0-2, every penalty arm at weight 100 with Adam restarted "
    "where the loss is divided by it): the debiased model keeps the shortcut like ERM (OOD F1 0.723 vs 0.708, "
    "V-REx on the true scenarios 0.693; IRM at 100 is unstable, ID F1 0.29-0.76). Its inferred environments ARE the "
    "true scenarios (within-class k-means on the headline: AMI 1.00 with them, ~0.02 with the oracle agree/disagree "
    "split); no k-means option on any representation (inputs, h, mu_inv/mu_c/mu_n, logit) separates disguised rows "
    "within a class (AMI <= 0.1); EIIL (correct vs wrong rows of its reference, confounded with causal difficulty) "
    "over-corrects (ID F1 -0.12) or collapses. Even the true scenarios do not help V-REx/IRM: the 256-wide networks "
    "memorise the 2000 training rows (train BCE ~0.01 vs ID test 0.70), so each scenario's training risk is ~0 "
    "and the penalty has nothing to equalise; full-batch training (brief §8.3's pilot) changes nothing. Earlier "
    "OOD gains of V-REx/IRM/debiased (0.80-0.83) were an early stop: without the restart, loss / weight shrinks "
    "Adam's steps ~100-fold after the anneal, and ERM stopped at the same epoch reaches the same 0.80-0.81. "
    "An independent full-batch V-REx with the true scenarios (pilot.fit_plain_mlp, 300 epochs) recovers at most "
    "3 of the ~14 points to the ceiling on these data (weight 1000: OOD F1 0.766 vs ERM 0.734; weight 100: 0.735); the brief's pilot gain reproduces only with unscaled features "
    "(safety_kit.clickbait.pilot, docs/clickbait-diagnosis.md)."))
def test_positive_control_passes(rows):
    found = positive_control(rows)
    check([], [found])
    assert found["passed"], found["observed"]
