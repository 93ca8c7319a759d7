"""The clickbait claims on synthetic results payloads with known outcomes."""

from safety_kit.clickbait.claims import evaluate
from shared.claims import check

ARMS = ("text_only_logreg", "erm", "groupdro", "irm", "vrex", "debiased")


def payload(debiased_gain: float, seeds=(0, 1, 2), datasets=("synthetic",), vrex_gain: float = 0.01) -> dict:
    rows = []
    for dataset in datasets:
        for seed in seeds:
            erm = 0.70 + 0.01 * seed
            ood = {"text_only_logreg": 0.85, "erm": erm, "groupdro": erm, "irm": erm - 0.01,
                   "vrex": erm + vrex_gain, "debiased": erm + debiased_gain + 0.002 * seed}
            for arm in ARMS:
                rows.append({"dataset": dataset, "arm": arm, "seed": seed, "id_f1": 0.88, "ood_f1": ood[arm]})
    return {"rows": rows, "profile": "default", "extra": {}, "config": {}}


def by_id(claims):
    return {c["id"]: c for c in claims}


def test_clear_ood_gain_is_reproduced_against_erm_and_the_strongest_invariance_baseline():
    claims, controls = evaluate(payload(0.08, datasets=("synthetic", "chakraborty")))
    check(claims, controls)
    found = by_id(claims)
    assert set(found) == {f"clickbait-ood-vs-{b}-{d}" for b in ("erm", "invariance")
                          for d in ("synthetic", "chakraborty")}
    assert all(c["verdict"] == "reproduced" for c in claims) and controls == []
    invariance = found["clickbait-ood-vs-invariance-synthetic"]
    assert invariance["baseline_label"] == "vrex" and invariance["baseline"] > found["clickbait-ood-vs-erm-synthetic"]["baseline"]


def test_clear_ood_loss_is_not_reproduced():
    claims, controls = evaluate(payload(-0.08))
    check(claims, controls)
    assert [c["verdict"] for c in claims] == ["not_reproduced", "not_reproduced"]
    assert "reconstruction" in claims[0]["why"]


def test_beating_erm_but_not_the_invariance_baseline():
    found = by_id(evaluate(payload(0.03, vrex_gain=0.06))[0])
    assert found["clickbait-ood-vs-erm-synthetic"]["verdict"] == "reproduced"
    assert found["clickbait-ood-vs-invariance-synthetic"]["verdict"] == "not_reproduced"


def test_one_seed_quick_profile_gives_no_interval():
    data = payload(0.05, seeds=(0,))
    data["rows"] = [r for r in data["rows"] if r["arm"] in ("erm", "vrex", "debiased")]
    claims, controls = evaluate(data)
    check(claims, controls)
    assert [c["verdict"] for c in claims] == ["direction_only", "direction_only"]
    assert all(c["diff_ci95"] is None and c["n_seeds"] == 1 for c in claims)


def test_no_debiased_arm_no_claim():
    data = payload(0.05)
    data["rows"] = [r for r in data["rows"] if r["arm"] != "debiased"]
    assert evaluate(data) == ([], [])


def control_payload(gain: float, id_gap: float = 0.0, shortcut_gain_noise: float = 0.004, text_only: float = 0.72):
    rows = []
    for seed in range(8):
        wiggle = shortcut_gain_noise * (seed % 3 - 1)
        for dataset, planted in (("control_shortcut", True), ("control_no_shortcut", False)):
            erm_ood = 0.66 + 0.01 * seed if planted else 0.83 + 0.01 * seed
            ood = {"text_only_logreg": text_only, "causal_logreg": 0.86, "erm": erm_ood, "groupdro": erm_ood,
                   "irm": erm_ood - 0.02, "vrex": erm_ood + 0.01,
                   "debiased": erm_ood + (gain if planted else 0.0) + wiggle}
            for arm, value in ood.items():
                id_f1 = 0.88 + (id_gap if arm == "debiased" else 0.0)
                rows.append({"dataset": dataset, "arm": arm, "seed": seed, "id_f1": id_f1, "ood_f1": value})
    return {"rows": rows}


def test_positive_and_negative_controls_follow_their_rules():
    claims, controls = evaluate(control_payload(0.08))
    check(claims, controls)
    assert claims == []  # control datasets carry no claim
    found = {c["id"]: c for c in controls}
    assert found["clickbait-pos"]["passed"] and found["clickbait-neg"]["passed"]
    assert found["clickbait-pos"]["strongest_invariance"] == "vrex" and found["clickbait-pos"]["power_3pt"] > 0.99
    # each condition of the positive rule can fail it on its own
    assert not {c["id"]: c for c in evaluate(control_payload(0.005))[1]}["clickbait-pos"]["passed"]  # < 2 SE
    lost_id = {c["id"]: c for c in evaluate(control_payload(0.08, id_gap=-0.03))[1]}["clickbait-pos"]
    assert not lost_id["passed"] and lost_id["checks"]["id_within_tolerance"] is False
    easy = {c["id"]: c for c in evaluate(control_payload(0.08, text_only=0.84))[1]}["clickbait-pos"]
    assert not easy["passed"] and easy["checks"]["text_alone_not_enough"] is False


def test_id_claim_against_tfidf_logreg():
    data = payload(0.05)
    data["rows"] += [{"dataset": "synthetic", "arm": "tfidf_logreg", "seed": s, "id_f1": 0.90, "ood_f1": 0.8}
                     for s in (0, 1, 2)]
    found = by_id(evaluate(data)[0])
    assert found["clickbait-id-vs-tfidf-synthetic"]["verdict"] == "not_reproduced"  # 0.88 < 0.90
