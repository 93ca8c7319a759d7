"""The one verdict rule, on known cases: clear win, clear loss, noise, one seed, direction, bootstrap."""

import math

import numpy as np
import pytest

from shared import claims
from shared.errors import DataError


def verdict(ours, baseline, **kw):
    return claims.compare("c", "ours beats the baseline", "paper", "metric", ours, baseline, **kw)


def test_clear_win_is_reproduced_with_a_t_interval():
    claim = verdict([0.30, 0.31, 0.32], [0.20, 0.21, 0.20])
    assert claim["verdict"] == "reproduced"
    low, high = claim["diff_ci95"]
    assert 0 < low < claim["diff"] < high
    assert claim["method"] == "paired t over seeds" and claim["p_value"] < 0.01
    claims.check([claim], [])


def test_clear_loss_is_not_reproduced():
    assert verdict([0.10, 0.11, 0.12], [0.20, 0.21, 0.20])["verdict"] == "not_reproduced"


def test_noise_is_direction_only():
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.05, 5)
    ours = base + np.array([0.04, -0.03, 0.02, -0.02, 0.0])  # mean +0.002, spread 0.03
    claim = verdict(ours, base)
    assert claim["verdict"] == "direction_only" and claim["diff_ci95"][0] < 0 < claim["diff_ci95"][1]


def test_one_seed_gives_no_interval():
    win = verdict([0.9], [0.1])
    assert win["verdict"] == "direction_only" and win["diff_ci95"] is None and "no CI" in win["why"]
    assert verdict([0.1], [0.9])["verdict"] == "not_reproduced"


def test_two_seeds_without_units_never_reproduce():
    assert verdict([0.9, 0.91], [0.1, 0.11])["verdict"] == "direction_only"


def test_lower_is_better_flips_the_direction():
    assert verdict([1.0, 1.01, 0.99], [2.0, 2.02, 1.98], higher_is_better=False)["verdict"] == "reproduced"
    assert verdict([2.0, 2.02, 1.98], [1.0, 1.01, 0.99], higher_is_better=False)["verdict"] == "not_reproduced"


def test_equal_arms_are_not_reproduced_and_constant_differences_have_a_point_interval():
    assert verdict([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])["verdict"] == "not_reproduced"
    same_gain = verdict([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert same_gain["verdict"] == "reproduced" and same_gain["diff_ci95"] == pytest.approx([0.1, 0.1])


def test_constant_baseline_is_a_one_sample_comparison():
    claim = verdict([1.9, 2.1, 2.0, 2.05], 1.0)  # a speed-up against 1×
    assert claim["verdict"] == "reproduced" and claim["baseline"] == 1.0


def test_few_seeds_use_a_bootstrap_over_units():
    rng = np.random.default_rng(1)
    strong = verdict([0.3], [0.2], units=rng.normal(0.05, 0.1, 400))
    assert strong["verdict"] == "reproduced" and "bootstrap over 400" in strong["method"]
    weak = verdict([0.3], [0.2], units=rng.normal(0.0, 0.1, 400) + 0.001)
    assert weak["verdict"] in ("direction_only", "not_reproduced") and weak["diff_ci95"][0] < 0


def test_run_time_bootstrap_interval_of_a_non_decomposable_metric():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    good, bad = labels + rng.normal(0, 0.5, 300), labels + rng.normal(0, 3, 300)

    def auc_gap(y, a, b):
        from scipy.stats import mannwhitneyu

        def auc(s):
            pos, neg = s[y == 1], s[y == 0]
            return mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
        return auc(a) - auc(b)

    interval = claims.bootstrap_interval([labels, good, bad], auc_gap)
    claim = verdict([0.9], [0.6], interval=interval)
    assert claim["verdict"] == "reproduced" and claim["diff"] == pytest.approx(interval["mean"])


def test_non_finite_values_are_untestable_not_a_win():
    assert verdict([math.nan, 0.5, 0.5], [0.1, 0.1, 0.1])["verdict"] == "untestable"


def test_untestable_needs_a_reason_and_mismatched_seeds_are_an_error():
    assert claims.untestable("u", "s", "p", "m", why="copying never emerged")["verdict"] == "untestable"
    with pytest.raises(DataError, match="must say why"):
        claims.untestable("u", "s", "p", "m", why="")
    with pytest.raises(DataError, match="pair by seed"):
        verdict([0.1, 0.2], [0.1])


def test_check_rejects_hand_written_verdicts_and_bad_controls():
    claim = verdict([0.30, 0.31, 0.32], [0.20, 0.21, 0.20])
    with pytest.raises(DataError, match="does not follow"):
        claims.check([{**claim, "verdict": "not_reproduced"}], [])
    with pytest.raises(DataError, match="kind"):
        claims.control("x", "sideways", "s", "e", "o", True)
    ok = claims.control("pos", "positive", "planted", "ours wins by > 2 SE", "it did", True)
    claims.check([claim], [ok])
    with pytest.raises(DataError, match="appears twice"):
        claims.check([claim, claim], [])


def test_negative_control_rule():
    vanished = verdict([0.50, 0.52, 0.49], [0.50, 0.49, 0.51])
    assert claims.gain_vanishes(vanished)
    assert not claims.gain_vanishes(verdict([0.60, 0.61, 0.62], [0.50, 0.49, 0.51]))
    assert not claims.gain_vanishes(verdict([0.50], [0.51]))  # one seed, no CI: an underpowered control fails


def test_non_inferiority_needs_the_whole_interval_within_the_margin():
    close = verdict([0.500, 0.498, 0.501], [0.502, 0.501, 0.503])  # slightly worse, tight CI
    assert claims.non_inferior(close, margin=0.02) and not claims.non_inferior(close, margin=0.001)
    wide = verdict([0.50, 0.30, 0.62], [0.50, 0.49, 0.51])  # not significantly worse, but could be much worse
    assert wide["diff_ci95"][0] < 0 < wide["diff_ci95"][1] and not claims.non_inferior(wide, margin=0.02)
    lower = claims.compare("l", "", "", "loss", [1.00, 1.01, 1.00], [1.00, 1.00, 1.00], higher_is_better=False)
    assert claims.non_inferior(lower, margin=0.05) and not claims.non_inferior(lower, margin=0.0)
    assert not claims.non_inferior(verdict([0.50], [0.50]), margin=1.0)  # no CI: nothing shown


def test_paired_rows_align_by_seed():
    rows = [{"arm": "a", "seed": 1, "m": 2.0}, {"arm": "a", "seed": 0, "m": 1.0}, {"arm": "b", "seed": 0, "m": 0.5},
            {"arm": "b", "seed": 1, "m": "nan"}, {"arm": "b", "seed": 2, "m": 0.7}]
    ours, base, seeds = claims.paired(rows, "m", ours={"arm": "a"}, baseline={"arm": "b"})
    assert seeds == [0, 1] and ours == [1.0, 2.0] and base[0] == 0.5 and math.isnan(base[1])
