"""The claims of arXiv 2410.07673 scored on the disguised-bait benchmark (verdict rule: ``shared/claims.py``).

Per dataset (the synthetic headlines with planted factors, and the real Chakraborty headlines when they ran),
two claims on bait-class F1 of the OUT-OF-DISTRIBUTION test (bait dressed up as news, disguise rates
flipped to 0.9/0.1), paired by seed:

* ``clickbait-ood-vs-erm-<dataset>``: the debiased 3-factor model beats the same-features ERM MLP;
* ``clickbait-ood-vs-invariance-<dataset>``: it also beats the strongest invariance baseline that ran
  (GroupDRO / IRM / V-REx, the one with the highest mean OOD F1: the hardest comparison);
* ``clickbait-id-vs-tfidf-<dataset>``: "better accuracy than co-occurrence-based detectors" in distribution,
  against the simplest strong one, TF-IDF n-grams + logistic regression (test-ID bait-class F1).

Controls (CLAIMS.md), on the planted-shortcut features (``synthetic.planted_shortcut``), rules fixed here:

* ``clickbait-pos`` (and ``clickbait-pos-eiil`` for the EIIL-environment variant of the model): the planted
  disguise agrees with the label in training and flips OOD; passes when the model's paired OOD-F1 gain over ERM
  and over the strongest invariance baseline each exceed 2 SE (SE = s.d. of the per-seed differences / √n),
  its ID F1 is within ``ID_TOLERANCE`` of ERM's, and the text-only LR stays ≥ ``HEADROOM`` below the causal
  ceiling (an LR on headline + image, the groups the label depends on). The power to detect a 3-point gain at
  the 2-SE rule is reported (normal approximation, from the observed SE).
* ``clickbait-neg`` (and ``clickbait-neg-eiil``): no planted shortcut; passes when the gain over ERM vanishes (``shared.claims.
  gain_vanishes``) and is within ``NEG_TOLERANCE`` in size (debiasing costs nothing when there is nothing to drop).
"""

from __future__ import annotations

import math
from typing import Any

from shared.claims import compare, control, gain_vanishes, paired, per_seed

INVARIANCE_BASELINES = ("groupdro", "irm", "vrex")
CONTROL_DATASETS = ("control_shortcut", "control_no_shortcut")
ID_TOLERANCE = 0.01  # "ID within ~1 point" of ERM
HEADROOM = 0.05  # text-only LR at least 5 F1 points under the causal ceiling: the text alone is not enough
NEG_TOLERANCE = 0.02
DETECTABLE_GAIN = 0.03
PAPER = ("abstract: better accuracy and generalisation than co-occurrence-based detectors on three datasets; the "
         "paper's tables are not available (brief §5), so no number to quote")
RECONSTRUCTION = ("The model is a reconstruction (the paper's equations are not public, brief §2.3): a loss here "
                  "speaks to this reconstruction at this scale.")


def _mean(values: dict[int, float]) -> float:
    return sum(values.values()) / len(values) if values else float("nan")


def _context(rows: list[dict[str, Any]], dataset: str) -> str:
    """What the OOD test does to ERM, and the head-room a disguise-blind text model shows (both from the rows)."""
    erm_id = _mean(per_seed(rows, "id_f1", dataset=dataset, arm="erm"))
    erm_ood = _mean(per_seed(rows, "ood_f1", dataset=dataset, arm="erm"))
    text = f"ERM's F1 falls from {erm_id:.3f} (ID) to {erm_ood:.3f} (OOD)"
    text_only = per_seed(rows, "ood_f1", dataset=dataset, arm="text_only_logreg")
    if text_only:
        text += f"; a text-only logistic regression, blind to the disguise, reaches OOD F1 {_mean(text_only):.3f}"
    return text + "."


def _why(context: str) -> dict[str, str]:
    return {
        "reproduced": context,
        "direction_only": f"{context} The per-seed gains vary too much over these seeds to exclude 0.",
        "not_reproduced": f"{context} {RECONSTRUCTION}",
    }


def _se(diffs: list[float]) -> float:
    if len(diffs) < 2:
        return math.nan
    mean = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))


def _power(se: float, gain: float = DETECTABLE_GAIN) -> float:
    """P(observed gain > 2 SE | true gain), normal approximation."""
    if not math.isfinite(se) or se <= 0:
        return math.nan
    return 0.5 * (1.0 + math.erf((gain / se - 2.0) / math.sqrt(2.0)))


def _strongest(rows, dataset, metric="ood_f1") -> str | None:
    arms = {r["arm"] for r in rows if r["dataset"] == dataset}
    present = [a for a in INVARIANCE_BASELINES if a in arms]
    return max(present, key=lambda a: _mean(per_seed(rows, metric, dataset=dataset, arm=a))) if present else None


def _gain(rows, dataset, arm, reference, metric="ood_f1") -> tuple[float, float, int]:
    ours, base, _ = paired(rows, metric, ours={"dataset": dataset, "arm": arm},
                           baseline={"dataset": dataset, "arm": reference})
    diffs = [a - b for a, b in zip(ours, base)]
    return (sum(diffs) / len(diffs) if diffs else math.nan), _se(diffs), len(diffs)


def positive_control(rows: list[dict[str, Any]], arm: str = "debiased", id_suffix: str = "") -> dict[str, Any] | None:
    """The planted-shortcut positive control for one model arm (rule in the module docstring)."""
    dataset = "control_shortcut"
    arms = {r["arm"] for r in rows if r["dataset"] == dataset}
    strongest = _strongest(rows, dataset)
    if not {arm, "erm", "text_only_logreg", "causal_logreg"} <= arms or strongest is None:
        return None
    gain_erm, se_erm, n = _gain(rows, dataset, arm, "erm")
    gain_inv, se_inv, _ = _gain(rows, dataset, arm, strongest)
    id_gap = _mean(per_seed(rows, "id_f1", dataset=dataset, arm=arm)) - _mean(
        per_seed(rows, "id_f1", dataset=dataset, arm="erm"))
    text_only = _mean(per_seed(rows, "ood_f1", dataset=dataset, arm="text_only_logreg"))
    ceiling = _mean(per_seed(rows, "ood_f1", dataset=dataset, arm="causal_logreg"))
    checks = {"beats_erm": gain_erm > 2 * se_erm, "beats_invariance": gain_inv > 2 * se_inv,
              "id_within_tolerance": id_gap >= -ID_TOLERANCE, "text_alone_not_enough": text_only <= ceiling - HEADROOM}
    power = min(_power(se_erm), _power(se_inv))
    ood = {a: round(_mean(per_seed(rows, "ood_f1", dataset=dataset, arm=a)), 4) for a in sorted(arms)}
    id_f1 = {a: round(_mean(per_seed(rows, "id_f1", dataset=dataset, arm=a)), 4) for a in sorted(arms)}
    observed = (f"{arm} − ERM OOD F1 {gain_erm:+.3f} (SE {se_erm:.3f}), − {strongest} {gain_inv:+.3f} "
                f"(SE {se_inv:.3f}) over {n} seeds; ID F1 {id_gap:+.3f} vs ERM; text-only LR OOD F1 "
                f"{text_only:.3f} vs causal ceiling {ceiling:.3f}; power to detect a {DETECTABLE_GAIN:.0%} gain at "
                f"2 SE ≈ {power:.2f}. Failed: {[k for k, v in checks.items() if not v] or 'none'}.")
    return control(
        f"clickbait-pos{id_suffix}", "positive",
        "planted_shortcut features: the label needs headline AND image (each alone ≈ 75% accurate); a 'disguise' "
        "group agrees with the label at 0.9/0.8/0.7 in three training scenarios and flips OOD (0.9/0.1); "
        f"model arm '{arm}'",
        f"{arm} beats ERM and the strongest of GroupDRO/IRM/V-REx on OOD F1 by > 2 SE each, ID F1 ≥ ERM's − "
        f"{ID_TOLERANCE}, and a text-only LR ≥ {HEADROOM} below the causal ceiling (LR on headline + image)",
        observed, all(checks.values()), checks=checks, power_3pt=power, n_seeds=n, ood_f1=ood, id_f1=id_f1,
        strongest_invariance=strongest)


def negative_control(rows: list[dict[str, Any]], arm: str = "debiased", id_suffix: str = "") -> dict[str, Any] | None:
    """No planted shortcut: the gain over ERM must vanish (rule in the module docstring)."""
    dataset = "control_no_shortcut"
    ours, base, _ = paired(rows, "ood_f1", ours={"dataset": dataset, "arm": arm},
                           baseline={"dataset": dataset, "arm": "erm"})
    if not ours:
        return None
    comparison = compare("clickbait-neg-comparison", "", "", "OOD F1", ours, base)
    passed = gain_vanishes(comparison) and abs(comparison["diff"]) <= NEG_TOLERANCE
    return control(
        f"clickbait-neg{id_suffix}", "negative",
        "planted_shortcut features with the disguise drawn at rate 0.5 independently of the label (no shortcut)",
        f"{arm}'s OOD-F1 gain over ERM vanishes (95% CI includes 0 or points the other way) and |gain| ≤ "
        f"{NEG_TOLERANCE}",
        comparison["why"], passed, diff=comparison["diff"], diff_ci95=comparison["diff_ci95"], n_seeds=len(ours))


def evaluate(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Claims (debiased vs ERM and the strongest invariance baseline on OOD F1, vs TF-IDF + LR on ID F1, per
    dataset) and the planted-shortcut controls."""
    rows = data["rows"]
    claims = []
    datasets = [d for d in dict.fromkeys(r["dataset"] for r in rows) if d not in CONTROL_DATASETS]
    for dataset in datasets:
        arms = {r["arm"] for r in rows if r["dataset"] == dataset}
        if "debiased" not in arms:
            continue
        why = _why(_context(rows, dataset))
        if "erm" in arms:
            ours, base, _ = paired(rows, "ood_f1", ours={"dataset": dataset, "arm": "debiased"},
                                   baseline={"dataset": dataset, "arm": "erm"})
            claims.append(compare(
                f"clickbait-ood-vs-erm-{dataset}",
                "De-confounding (predicting from the invariant and causal factors only) beats a co-occurrence-"
                "based detector on disguised bait out of distribution.",
                PAPER, f"{dataset}: bait-class F1 on test-OOD (bait disguised as news)", ours, base,
                ours_label="debiased", baseline_label="erm", why=why))
        baselines = [a for a in INVARIANCE_BASELINES if a in arms]
        if baselines:
            strongest = max(baselines, key=lambda a: _mean(per_seed(rows, "ood_f1", dataset=dataset, arm=a)))
            ours, base, _ = paired(rows, "ood_f1", ours={"dataset": dataset, "arm": "debiased"},
                                   baseline={"dataset": dataset, "arm": strongest})
            claims.append(compare(
                f"clickbait-ood-vs-invariance-{dataset}",
                "The three-factor disentangling beats plain invariance penalties (the full model must beat "
                "V-REx/IRM, not only ERM — brief §8.3) on disguised bait out of distribution.",
                PAPER, f"{dataset}: bait-class F1 on test-OOD vs the strongest of {'/'.join(baselines)} "
                f"(highest mean OOD F1: {strongest})", ours, base,
                ours_label="debiased", baseline_label=strongest, why=why))
        if "tfidf_logreg" in arms:
            ours, base, _ = paired(rows, "id_f1", ours={"dataset": dataset, "arm": "debiased"},
                                   baseline={"dataset": dataset, "arm": "tfidf_logreg"})
            claims.append(compare(
                f"clickbait-id-vs-tfidf-{dataset}",
                "The detector is more accurate in distribution than a co-occurrence detector: TF-IDF n-grams of the "
                "headline + logistic regression.",
                PAPER, f"{dataset}: bait-class F1 on test-ID", ours, base,
                ours_label="debiased", baseline_label="tfidf_logreg",
                why={"not_reproduced": "TF-IDF + LR is the stronger in-distribution detector here. " + RECONSTRUCTION,
                     "direction_only": "The two are within seed noise in distribution."}))
    controls = [c for c in (positive_control(rows), negative_control(rows),
                            positive_control(rows, "debiased_eiil", "-eiil"),
                            negative_control(rows, "debiased_eiil", "-eiil")) if c is not None]
    return claims, controls
