"""The claims of Transition² on synthetic results payloads with known outcomes."""

from __future__ import annotations

import numpy as np

from recsys_kit.transition2.claims import evaluate
from recsys_kit.transition2.evaluate import paired_test
from shared.claims import check

ARMS = ["popularity", "sasrec_mixed", "c2dsr_lite", "t2_v1"]


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
                             "t2-ml100k-sasrec-mixed-b"}  # "valid_" is not a domain
    assert set(verdicts.values()) == {"reproduced"}


def test_a_clear_loss_is_not_reproduced():
    assert set(_verdicts(_payload(gain=-0.02)).values()) == {"not_reproduced"}


def test_a_missing_arm_is_untestable():
    verdicts = _verdicts(_payload(gain=0.02, arms=["popularity", "sasrec_mixed", "t2_v1"]))
    assert verdicts["t2-ml100k-c2dsr-lite-a"] == "untestable"
    assert verdicts["t2-ml100k-sasrec-mixed-a"] == "reproduced"


def test_one_seed_uses_the_run_time_bootstrap_over_users():
    assert set(_verdicts(_payload(gain=0.02, seeds=(0,))).values()) == {"direction_only"}  # no CI without it
    rng = np.random.default_rng(0)
    base = rng.random(200)
    significance = []
    for versus in ("c2dsr_lite", "sasrec_mixed"):
        for domain in ("A", "B"):
            test = paired_test(base + 0.02 + 0.01 * rng.standard_normal(200), base)
            significance.append({"dataset": "ML100K-T2", "arm": "t2_v1", "versus": versus, "domain": domain, **test})
    claims, _ = evaluate(_payload(gain=0.02, seeds=(0,), significance=significance))
    check(claims, [])
    assert {c["verdict"] for c in claims} == {"reproduced"}
    assert all(c["method"].startswith("bootstrap over 200 paired units") for c in claims)
