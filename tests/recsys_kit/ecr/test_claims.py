"""The claims and the permuted-emotion control of ECR on synthetic results payloads with known outcomes."""

from __future__ import annotations

import numpy as np

from recsys_kit.ecr.bench import paired_bootstrap
from recsys_kit.ecr.claims import INTERVALS_KEY, PERMUTED_KEY, evaluate
from shared.claims import check


def _rows(dataset: str, auc: dict[str, float], seeds=(0, 1, 2)) -> list[dict]:
    return [{"dataset": dataset, "arm": arm, "seed": s, "AUC": value + 0.001 * ((3 * s + len(arm)) % 4), "RT@10": 0.5}
            for s in seeds for arm, value in auc.items()]


def _payload(sim: dict[str, float], redial: dict[str, float] | None = None, seeds=(0, 1, 2), extra=None) -> dict:
    rows = _rows("simulated-ml100k", sim, seeds) + (_rows("redial", redial, seeds[:1]) if redial else [])
    rows += [{"dataset": "generation-sim", "arm": "template only", "seed": 0, "emotion_intensity": 0.1}]
    return {"rows": rows, "profile": "default", "extra": extra or {}}


def _score(payload: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    claims, controls = evaluate(payload)
    check(claims, controls)
    return {c["id"]: c for c in claims}, {c["id"]: c for c in controls}


def test_a_clear_win_carried_by_the_emotions_reproduces_and_passes_the_control():
    claims, controls = _score(_payload({"UniCRS": 0.55, "ECR": 0.62, "ECR (permuted emotions)": 0.55},
                                       redial={"UniCRS": 0.50, "ECR": 0.55}))
    assert claims["ecr-auc-sim"]["verdict"] == "reproduced"
    assert claims["ecr-auc-redial"]["verdict"] == "direction_only"  # one seed and no run-time bootstrap: no CI
    assert controls["ecr-neg-permuted"]["kind"] == "negative" and controls["ecr-neg-permuted"]["passed"] is True


def test_a_gain_that_survives_permuted_emotions_fails_the_control():
    claims, controls = _score(_payload({"UniCRS": 0.55, "ECR": 0.62, "ECR (permuted emotions)": 0.62}))
    assert claims["ecr-auc-sim"]["verdict"] == "reproduced"
    assert controls["ecr-neg-permuted"]["passed"] is False


def test_a_clear_loss_is_not_reproduced_and_missing_or_undefined_data_is_untestable():
    claims, controls = _score(_payload({"UniCRS": 0.62, "ECR": 0.55}))
    assert claims["ecr-auc-sim"]["verdict"] == "not_reproduced"
    assert claims["ecr-auc-redial"]["verdict"] == "untestable"  # real ReDial not run
    assert controls == {}  # no permuted arm: no control
    claims, _ = _score(_payload({"UniCRS": float("nan"), "ECR": float("nan")}))
    assert claims["ecr-auc-sim"]["verdict"] == "untestable"  # no disliked test instance


def test_the_run_time_bootstrap_gives_the_one_seed_redial_claim_a_ci(tmp_path):
    rng = np.random.default_rng(0)
    feedback = rng.choice(["like", "dislike", "not say"], 400, p=[0.8, 0.1, 0.1])
    prob = rng.random(400)
    ranks = rng.integers(0, 50, 400)
    arms = {"UniCRS": prob, "ECR": prob + 0.3 * (feedback == "like"), "ECR (permuted emotions)": prob}
    for arm, p in arms.items():
        for dataset in ("redial", "simulated-ml100k"):
            np.savez(tmp_path / f"{dataset}_{arm}_0.npz", ranks=ranks, gold_prob=p, feedback=feedback)
    intervals = {"redial": paired_bootstrap(tmp_path, "redial", "UniCRS", "ECR", [0]),
                 PERMUTED_KEY: paired_bootstrap(tmp_path, "simulated-ml100k", "ECR (permuted emotions)", "ECR", [0])}
    assert intervals["redial"]["AUC"]["ci"][0] > 0 and intervals["redial"]["RT@10"]["mean"] == 0.0
    auc = {a: float(np.mean(p[feedback == "like"][:, None] > p[feedback == "dislike"][None, :]))
           for a, p in arms.items()}
    payload = _payload({a: auc[a] for a in arms}, redial={a: auc[a] for a in ("UniCRS", "ECR")}, seeds=(0,),
                       extra={INTERVALS_KEY: intervals})
    for row in payload["rows"]:  # the rows hold exactly the per-instance AUC the bootstrap starts from
        if row["dataset"] != "generation-sim":
            row["AUC"] = auc[row["arm"]]
    claims, controls = _score(payload)
    assert claims["ecr-auc-redial"]["verdict"] == "reproduced"
    assert claims["ecr-auc-redial"]["method"].startswith("paired bootstrap over 400 units")
    assert claims["ecr-auc-sim"]["verdict"] == "direction_only"  # one seed, no simulated bootstrap stored
    assert controls["ecr-neg-permuted"]["passed"] is True


def _controls_payload(pos: dict[str, float], neg: dict[str, float]) -> dict:
    payload = _payload({"UniCRS": 0.55, "ECR": 0.62, "ECR (permuted emotions)": 0.55})
    payload["rows"] += _rows("sim-positive-control", pos) + _rows("sim-negative-control", neg)
    return payload


def test_emotion_only_positive_control_and_independent_negative_control():
    ok = {"UniCRS": 0.60, "ECR[L]": 0.70, "ECR[L] (permuted emotions)": 0.60}
    _, controls = _score(_controls_payload(ok, {"UniCRS": 0.60, "ECR[L]": 0.60}))
    assert controls["ecr-pos-emotion-only"]["kind"] == "positive" and controls["ecr-pos-emotion-only"]["passed"]
    assert controls["ecr-neg-independent"]["kind"] == "negative" and controls["ecr-neg-independent"]["passed"]
    # the gain survives permuted emotions: the emotions do not carry it, the positive control fails
    kept = dict(ok, **{"ECR[L] (permuted emotions)": 0.70})
    _, controls = _score(_controls_payload(kept, {"UniCRS": 0.60, "ECR[L]": 0.70}))
    assert not controls["ecr-pos-emotion-only"]["passed"] and not controls["ecr-neg-independent"]["passed"]
