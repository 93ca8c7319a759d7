"""The claims of Transition² on synthetic results payloads with known outcomes."""

from __future__ import annotations

import numpy as np

from recsys_kit.transition2.claims import evaluate
from recsys_kit.transition2.evaluate import paired_test
from shared.claims import check

ARMS = ["popularity", "sasrec_mixed", "sasrec_neg", "c2dsr_lite", "t2_v1"]


def _payload(gain: float, seeds=(0, 1, 2), arms=ARMS, significance=None) -> dict:
    rows = []
    for seed in seeds:
        for arm in arms:
            value = 0.08 + 0.002 * seed + (gain if arm == "t2_v1" else 0.0) + 0.0005 * ((seed * 7 + len(arm)) % 3)
            rows.append({"dataset": "ML100K-T2", "arm": arm, "seed": seed, "full_ndcg@10": value,
                         "A_full_ndcg@10": value, "B_full_ndcg@10": value + 0.001, "A_full_hr@10": 2 * value,
                         "B_full_hr@10": 2 * value, "valid_full_ndcg@10": value})
    return {"rows": rows, "profile": "default", "config": {"profile": {"epochs": 1, "max_batches": 150}},
            "extra": {"significance": significance or []}}


def _verdicts(payload: dict) -> dict[str, str]:
    claims, controls = evaluate(payload)
    check(claims, controls)
    assert controls == []
    return {c["id"]: c["verdict"] for c in claims}


def test_one_claim_per_baseline_and_domain_and_a_clear_win_reproduces():
    verdicts = _verdicts(_payload(gain=0.02))
    assert set(verdicts) == {"t2-ml100k-c2dsr-lite-a", "t2-ml100k-c2dsr-lite-b", "t2-ml100k-sasrec-mixed-a",
                             "t2-ml100k-sasrec-mixed-b", "t2-ml100k-sasrec-negatives-a",
                             "t2-ml100k-sasrec-negatives-b"}  # "valid_" is not a domain
    assert set(verdicts.values()) == {"reproduced"}


def test_a_clear_loss_is_not_reproduced():
    assert set(_verdicts(_payload(gain=-0.02)).values()) == {"not_reproduced"}


def test_a_missing_arm_is_untestable():
    verdicts = _verdicts(_payload(gain=0.02, arms=["popularity", "sasrec_mixed", "sasrec_neg", "t2_v1"]))
    assert verdicts["t2-ml100k-c2dsr-lite-a"] == "untestable"
    assert verdicts["t2-ml100k-sasrec-mixed-a"] == "reproduced"


def test_one_seed_uses_the_run_time_bootstrap_over_users():
    assert set(_verdicts(_payload(gain=0.02, seeds=(0,))).values()) == {"direction_only"}  # no CI without it
    rng = np.random.default_rng(0)
    base = rng.random(200)
    significance = []
    for versus in ("c2dsr_lite", "sasrec_mixed", "sasrec_neg"):
        for domain in ("A", "B"):
            test = paired_test(base + 0.02 + 0.01 * rng.standard_normal(200), base)
            significance.append({"dataset": "ML100K-T2", "arm": "t2_v1", "versus": versus, "domain": domain, **test})
    claims, _ = evaluate(_payload(gain=0.02, seeds=(0,), significance=significance))
    check(claims, [])
    assert {c["verdict"] for c in claims} == {"reproduced"}
    assert all(c["method"].startswith("bootstrap over 200 paired units") for c in claims)


def _control_rows(dataset: str, gains: dict[str, float], seeds=(0, 1, 2)) -> list[dict]:
    rows = []
    for seed in seeds:
        for arm, gain in gains.items():
            value = 0.3 + gain + 0.002 * ((seed * 5 + len(arm)) % 3)
            rows.append({"dataset": dataset, "arm": arm, "seed": seed, "full_ndcg@10": value,
                         "A_full_ndcg@10": value, "B_full_ndcg@10": value, "A_full_hr@10": value,
                         "B_full_hr@10": value})
    return rows


def test_controls_follow_their_fixed_rules():
    arms = {"sasrec_mixed": 0.0, "c2dsr_lite": 0.0, "sasrec_neg": 0.1, "t2_v1": 0.1, "t2_v1_uniform_w": 0.05,
            "t2_v1_no_fb_mask": 0.1}
    payload = _payload(gain=0.02)
    payload["rows"] += _control_rows("planted-switch", arms) + _control_rows("planted-cross", arms)
    payload["rows"] += _control_rows("planted-switch-shuffled", {"sasrec_mixed": 0.0, "t2_v1": 0.0})
    payload["rows"] += _control_rows("planted-switch-flat", {"sasrec_mixed": 0.0, "t2_v1": 0.0})
    assert "t2-neg-shuffled-vs-neg" not in {c["id"] for c in evaluate(payload)[1]}  # sasrec_neg did not run
    claims, controls = evaluate(payload)
    check(claims, controls)
    passed = {c["id"]: c["passed"] for c in controls}
    assert all(not c["id"].startswith("t2-planted") for c in claims)  # controls are never claims
    # switch: sasrec_neg ties T² but is not required; cross: it is, so the control fails
    assert passed["t2-pos-switch"] and not passed["t2-pos-cross"]
    assert passed["t2-neg-shuffled"] and passed["t2-neg-flat"]
    assert passed["t2-pos-ablation-uniform-w-switch"] and not passed["t2-pos-ablation-no-fb-mask-switch"]
    payload["rows"] = [r for r in payload["rows"] if r["dataset"] != "planted-switch-shuffled"]
    payload["rows"] += _control_rows("planted-switch-shuffled", {"sasrec_mixed": 0.0, "t2_v1": 0.1})
    assert not {c["id"]: c["passed"] for c in evaluate(payload)[1]}["t2-neg-shuffled"]


def test_shuffled_control_against_sasrec_neg_is_judged_separately():
    """The confounded comparator (SASRec-mixed loses relabelled positives) and the fair one (SASRec+negatives)
    give two negative controls; each follows the gain-vanishes rule on its own pair."""
    payload = _payload(gain=0.02)
    payload["rows"] += _control_rows("planted-switch-shuffled", {"sasrec_mixed": 0.0, "sasrec_neg": 0.1, "t2_v1": 0.1})
    passed = {c["id"]: c["passed"] for c in evaluate(payload)[1]}
    assert not passed["t2-neg-shuffled"] and passed["t2-neg-shuffled-vs-neg"]
    payload["rows"] = [r for r in payload["rows"] if not (r["dataset"] == "planted-switch-shuffled"
                                                          and r["arm"] == "sasrec_neg")]
    payload["rows"] += _control_rows("planted-switch-shuffled", {"sasrec_neg": 0.0})
    passed = {c["id"]: c["passed"] for c in evaluate(payload)[1]}
    assert not passed["t2-neg-shuffled-vs-neg"]
