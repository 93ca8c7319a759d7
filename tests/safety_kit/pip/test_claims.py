"""The PIP claims and noise control on synthetic results payloads with known outcomes."""

from safety_kit.pip.claims import evaluate
from shared.claims import check


def payload(recall: float, precision: float, auc_gain: float, noise_excess: float, seeds=(0, 1, 2)) -> dict:
    rows = []
    for seed in seeds:
        jitter = 0.002 * seed
        for detector, auc in (("pip", 0.8 + auc_gain), ("baseline_visual_tokens", 0.8)):
            base = {"detector": detector, "seed": seed, "false_alarm_rate": 0.2, "attack_success": 0.7,
                    "recall_successful": recall, "precision_10to1": 0.3}
            rows.append({**base, "condition": "pgd_eps8", "recall": recall + jitter, "precision": precision + jitter,
                         "auc": auc + jitter, "flag_rate": recall})
            rows.append({**base, "condition": "vision_eps8", "recall": recall - jitter, "precision": precision,
                         "auc": auc, "flag_rate": recall})
            rows.append({**base, "condition": "noise_eps8", "recall": 0.2, "precision": 0.5, "auc": 0.5,
                         "flag_rate": 0.2 + noise_excess + jitter})
        rows.append({"detector": "pip", "condition": "scan_speed", "seed": seed, "images_per_s": 100.0})
    config = {"vlm": {"text_layers": 3, "text_heads": 4, "num_query_tokens": 16}}
    return {"rows": rows, "profile": "default", "config": config, "extra": {}}


def by_id(items):
    return {c["id"]: c for c in items}


def test_paper_level_detector_reproduces_and_the_noise_control_passes():
    claims, controls = evaluate(payload(recall=0.99, precision=0.95, auc_gain=0.1, noise_excess=0.0))
    check(claims, controls)
    assert {c["id"]: c["verdict"] for c in claims} == {
        "pip-recall": "reproduced", "pip-precision": "reproduced", "pip-blackbox-recall": "reproduced",
        "pip-vs-visual-tokens": "reproduced"}
    assert by_id(claims)["pip-recall"]["baseline"] == 0.98
    (noise,) = controls
    assert noise["kind"] == "negative" and noise["passed"] is True


def test_weak_detector_is_not_reproduced_with_its_scale_stated():
    claims, controls = evaluate(payload(recall=0.65, precision=0.7, auc_gain=-0.05, noise_excess=0.0))
    check(claims, controls)
    assert all(c["verdict"] == "not_reproduced" for c in claims)
    assert "3×4×16" in by_id(claims)["pip-recall"]["why"] and controls[0]["passed"]


def test_noise_flagged_more_than_clean_images_fails_the_control():
    claims, controls = evaluate(payload(recall=0.9, precision=0.9, auc_gain=0.0, noise_excess=0.2))
    check(claims, controls)
    assert controls[0]["passed"] is False and "fails" in by_id(claims)["pip-recall"]["why"]
    # one seed gives no interval: nothing is shown to vanish, so the control fails whatever the excess
    assert evaluate(payload(0.9, 0.9, 0.0, noise_excess=0.2, seeds=(0,)))[1][0]["passed"] is False
    assert evaluate(payload(0.9, 0.9, 0.0, noise_excess=0.01, seeds=(0,)))[1][0]["passed"] is False


def test_missing_conditions_give_no_claims():
    data = payload(0.9, 0.9, 0.0, 0.0)
    data["rows"] = [r for r in data["rows"] if r["condition"] == "scan_speed"]
    assert evaluate(data) == ([], [])
