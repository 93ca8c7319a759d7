"""The claims of PIP (arXiv 2409.05076) scored on the tiny-VLM miniature (verdict rule: ``shared/claims.py``).

The paper's abstract: one irrelevant probe question + a linear SVM on its attention over the visual tokens
detects adversarial images with recall > 98% and precision > 90%, also under black-box attacks. The claims
compare the default detector (``pip``: probe step-1 attention, standardised linear SVC) with those reported
values as constant baselines, and with a same-capacity SVM on the visual tokens themselves (brief §8.2 item 5).

Controls: the benchmark's same-ε random-sign-noise condition is a negative control — noise carries no
adversarial structure, so PIP must not flag it more often than clean images. The positive control: PGD-ε8
demonstrably changes the VLM's answers (attack success, far above what same-ε noise does), and PIP separates
those successful attacks from clean images better than it separates same-ε noise from them.

Scaling (issue 21): PIP's AUC vs the tiny VLM's own answer accuracy over training budgets (per-seed slope,
claim ``pip-scaling-trend``) and PIP vs the visual-token SVM at the best-trained budget
(``pip-scaling-vs-visual-tokens``).
"""

from __future__ import annotations

from typing import Any

from shared.claims import compare, control, gain_vanishes, paired, per_seed

PAPER_RECALL = 0.98
PAPER_PRECISION = 0.90
NOISE_TOLERANCE = 0.05  # the benchmark's fixed allowance for the noise control's excess flag rate
ATTACK_SUCCESS_MIN = 0.5  # positive control: PGD-ε8 must change the answer of most attacked images
PAPER = "abstract: recall > 98% and precision > 90% with one probe and a linear SVM (InstructBLIP-Vicuna-7B)"
PIP_AT = {"detector": "pip"}


def _mean(values: dict[int, float]) -> float:
    return sum(values.values()) / len(values) if values else float("nan")


def _values(values: dict[int, float]) -> list[float]:
    return [values[s] for s in sorted(values)]


def _scale(config: dict[str, Any]) -> str:
    """The size gap between the paper's LVLM and the tiny VLM that ran (from the results' config)."""
    vlm = config.get("vlm", {})
    features = "×".join(str(vlm.get(k, "?")) for k in ("text_layers", "text_heads", "num_query_tokens"))
    return ("The paper's numbers come from billion-parameter LVLMs (32×32×32 = 32,768 attention features for "
            f"Vicuna-7B); the from-scratch tiny VLM here has {features} (layers × heads × visual tokens)")


def _attack_context(rows: list[dict[str, Any]], condition: str) -> str:
    success = _mean(per_seed(rows, "attack_success", condition=condition, **PIP_AT))
    on_success = _mean(per_seed(rows, "recall_successful", condition=condition, **PIP_AT))
    return f"the attack changes the task answer for {success:.0%} of test images (PIP's recall on those: {on_success:.2f})"


def noise_control(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Negative control: same-ε random sign noise is flagged no more often than clean images."""
    flag_rate = per_seed(rows, "flag_rate", condition="noise_eps8", **PIP_AT)
    false_alarm = per_seed(rows, "false_alarm_rate", condition="noise_eps8", **PIP_AT)
    seeds = sorted(set(flag_rate) & set(false_alarm))
    if not seeds:
        return None
    excess = compare("pip-noise", "noise is flagged more often than clean images", PAPER,
                     "flag rate on noise − clean false-alarm rate", [flag_rate[s] for s in seeds],
                     [false_alarm[s] for s in seeds])
    ci = excess["diff_ci95"]
    ci_text = f", 95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    return control(
        "pip-noise", "negative",
        "the PIP detector (trained on clean + PGD-ε8 images) scans the clean test images with same-ε random sign noise",
        "noise carries no adversarial structure, so its flag rate does not exceed the clean false-alarm rate: the "
        f"paired excess is within seed noise (its CI includes 0, or it is negative) and its mean is ≤ {NOISE_TOLERANCE}",
        f"noise flag rate {excess['ours']:.3f} vs clean false-alarm rate {excess['baseline']:.3f} (excess "
        f"{excess['diff']:+.3f}{ci_text}, {excess['n_seeds']} seed(s))",
        gain_vanishes(excess) and excess["diff"] <= NOISE_TOLERANCE,
        excess=excess["diff"], excess_ci95=ci, n_seeds=excess["n_seeds"])


def attack_control(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Positive control: the attack works (it changes answers; noise of the same ε does not) and PIP detects it."""
    success = per_seed(rows, "attack_success", condition="pgd_eps8", **PIP_AT)
    noise_change = per_seed(rows, "attack_success", condition="noise_eps8", **PIP_AT)
    auc_success = per_seed(rows, "auc_successful", condition="pgd_eps8", **PIP_AT)
    auc_noise = per_seed(rows, "auc", condition="noise_eps8", **PIP_AT)
    seeds = sorted(set(success) & set(noise_change) & set(auc_success) & set(auc_noise))
    if not seeds:
        return None
    changes = compare("pip-attack", "PGD changes answers more than noise", PAPER, "answer-change rate, PGD − noise",
                      [success[s] for s in seeds], [noise_change[s] for s in seeds])
    detects = compare("pip-attack", "PIP separates successful attacks better than noise", PAPER,
                      "AUC on successful PGD-ε8 − AUC on same-ε noise", [auc_success[s] for s in seeds],
                      [auc_noise[s] for s in seeds])
    passed = (changes["verdict"] == "reproduced" and changes["ours"] >= ATTACK_SUCCESS_MIN
              and detects["verdict"] == "reproduced")
    return control(
        "pip-attack", "positive",
        "PGD-ε8 (LM loss of the clean answer, 20 steps) on the clean test images vs random sign noise of the same ε; "
        "PIP trained on clean + PGD-ε8 training images",
        f"the attack changes the task answer of ≥ {ATTACK_SUCCESS_MIN:.0%} of images and more often than same-ε noise "
        "(paired CI over seeds excludes 0), and PIP's AUC on the successful attacks exceeds its AUC on the noise "
        "images (paired CI excludes 0)",
        f"answers changed by PGD {changes['ours']:.2f} vs noise {changes['baseline']:.2f}; PIP AUC on successful "
        f"attacks {detects['ours']:.3f} vs on noise {detects['baseline']:.3f} ({len(seeds)} seed(s))",
        passed, attack_success=changes["ours"], noise_answer_change=changes["baseline"],
        auc_successful=detects["ours"], auc_noise=detects["baseline"], n_seeds=len(seeds))


def _scaling(rows: list[dict[str, Any]]) -> dict[int, float]:
    points = {int(r["train_steps"]): float(r["vqa_accuracy"]) for r in rows if "train_steps" in r}
    return dict(sorted(points.items(), key=lambda kv: kv[1]))


def scaling_claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Does PIP's AUC rise with the VLM's quality, and does it beat the visual-token SVM where the VLM is best?"""
    points = _scaling(rows)
    if len(points) < 3:
        return []
    condition = {s: f"scaling_steps{s}" for s in points}
    auc = {s: per_seed(rows, "auc", condition=condition[s], **PIP_AT) for s in points}
    svm = {s: per_seed(rows, "auc", condition=condition[s], detector="baseline_visual_tokens") for s in points}
    seeds = sorted(set.intersection(*(set(auc[s]) & set(svm[s]) for s in points)))
    if not seeds:
        return []
    import numpy as np

    accuracy = np.array(list(points.values()))
    slopes = [float(np.polyfit(accuracy, [auc[s][seed] for s in points], 1)[0]) for seed in seeds]
    svm_slopes = [float(np.polyfit(accuracy, [svm[s][seed] for s in points], 1)[0]) for seed in seeds]
    trend = "; ".join(f"{s} steps: accuracy {acc:.2f}, PIP AUC {_mean(auc[s]):.3f} vs visual-token SVM "
                      f"{_mean(svm[s]):.3f}" for s, acc in points.items())
    best = max(points, key=points.get)
    claims = [compare(
        "pip-scaling-trend", "Detection from the probe's attention improves with the VLM's quality (the paper's "
        "near-perfect numbers come from billion-parameter LVLMs).", PAPER,
        "slope of PIP's PGD-ε8 AUC vs the tiny VLM's answer accuracy over training budgets (per seed)",
        slopes, 0.0, ours_label="pip slope", baseline_label="flat (0)",
        why=f"Per budget: {trend}. The visual-token SVM's slope is {_mean(dict(enumerate(svm_slopes))):+.3f}.")]
    claims.append(compare(
        "pip-scaling-vs-visual-tokens", "At the best-trained VLM, the probe's attention adds detection signal over "
        "the visual tokens themselves.", "no baseline numbers in the paper; baseline from brief §8.2 item 5",
        f"PGD-ε8 detection AUC at the {best}-step VLM (accuracy {points[best]:.2f}), PIP vs linear SVC on the "
        "visual-token embeddings", [auc[best][s] for s in seeds], [svm[best][s] for s in seeds],
        ours_label="pip", baseline_label="baseline_visual_tokens",
        why={"not_reproduced": f"Even at the best budget the visual tokens carry the perturbation at least as well "
                               f"as the probe's attention ({trend}).",
             "direction_only": f"PIP is ahead on average but within seed noise ({trend}).",
             "reproduced": f"Per budget: {trend}."}))
    return claims


def evaluate(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Claims (recall, precision, black-box recall vs the paper; AUC vs the visual-token SVM) and the noise control."""
    rows = data["rows"]
    noise = noise_control(rows)
    controls = [c for c in (noise, attack_control(rows)) if c]
    scale = _scale(data.get("config", {}))
    if noise:
        scale += (". The noise control passes (same-ε random noise is not flagged more than clean images)"
                  if noise["passed"] else ". The noise control fails too (noise is flagged): suspect the detector")
    claims = []
    recall = per_seed(rows, "recall", condition="pgd_eps8", **PIP_AT)
    if recall:
        context = f"{scale}; {_attack_context(rows, 'pgd_eps8')}."
        claims.append(compare(
            "pip-recall", "A linear SVM on the probe question's attention detects white-box PGD adversarial images "
            "with recall above 98%.", PAPER, "recall of PIP on PGD-ε8 images (balanced 1:1 test, SVM trained on "
            "PGD-ε8)", _values(recall), PAPER_RECALL, ours_label="pip", baseline_label="paper (0.98)",
            why={"not_reproduced": context, "direction_only": context}))
    precision = per_seed(rows, "precision", condition="pgd_eps8", **PIP_AT)
    if precision:
        mix = _mean(per_seed(rows, "precision_10to1", condition="pgd_eps8", **PIP_AT))
        claims.append(compare(
            "pip-precision", "The same detector flags PGD adversarial images with precision above 90%.", PAPER,
            "precision of PIP on PGD-ε8 images (balanced 1:1 test)", _values(precision), PAPER_PRECISION,
            ours_label="pip", baseline_label="paper (0.90)",
            why=f"On the 10:1 clean:adversarial mix the precision is {mix:.2f}. {scale}."))
    blackbox = per_seed(rows, "recall", condition="vision_eps8", **PIP_AT)
    if blackbox:
        context = f"{scale}; {_attack_context(rows, 'vision_eps8')}."
        claims.append(compare(
            "pip-blackbox-recall", "The detector keeps recall above 98% under a black-box attack it never saw in "
            "training (the encoder-only attack of the official code).", PAPER,
            "recall of PIP on the unseen vision-feature PGD-ε8 attack (SVM trained on LM-loss PGD-ε8)",
            _values(blackbox), PAPER_RECALL, ours_label="pip", baseline_label="paper (0.98)",
            why={"not_reproduced": context, "direction_only": context}))
    ours, base, _ = paired(rows, "auc", ours={"condition": "pgd_eps8", **PIP_AT},
                           baseline={"detector": "baseline_visual_tokens", "condition": "pgd_eps8"})
    if ours:
        claims.append(compare(
            "pip-vs-visual-tokens", "The irrelevant probe's attention pattern is what carries the adversarial "
            "signal: PIP beats a same-capacity linear SVM on the visual tokens the decoder reads.",
            "no baseline numbers in the paper (it presents PIP as the first LVLM detector); baseline from brief "
            "§8.2 item 5", "detection AUC on PGD-ε8 images, PIP vs linear SVC on the visual-token embeddings",
            ours, base, ours_label="pip", baseline_label="baseline_visual_tokens",
            why={"not_reproduced": "In this tiny VLM the visual tokens already carry as much of the perturbation "
                                   "as the probe's attention over them.",
                 "direction_only": "In this tiny VLM the visual tokens carry nearly as much of the perturbation "
                                   "as the probe's attention over them."}))
    claims += scaling_claims(rows)
    return claims, controls
