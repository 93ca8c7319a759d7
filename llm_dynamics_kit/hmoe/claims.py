"""The claims of HMoE (arXiv 2408.10681) scored on the miniature benchmark (verdict rule: ``shared/claims.py``).

Per dataset (the embedded stdlib corpus, and Shakespeare when it ran), paired by seed (every arm of a seed starts
from the same seed and sees the same batches), one claim per paper claim whose arms the profile ran:

* ``hmoe-matthew-<dataset>``: without an auxiliary loss the router favours large experts — ρ(size, activation) of
  ``hmoe_topk_none`` > 0 (brief §8.3.1);
* ``hmoe-rebalance-<dataset>``: with P-Penalty small experts get more tokens — ρ of ``hmoe_topk_pp`` < 0 (§8.3.2);
* ``hmoe-pp-loss-<dataset>``: P-Penalty helps — FLOP-matched val loss of ``hmoe_topk_pp`` < ``hmoe_topk_none``;
* ``hmoe-flops-<dataset>``: at equal training FLOPs HMoE+P-Penalty has a lower val loss than homogeneous MoE+LB
  (§8.3.3; the paper compares at equal FLOPs, brief §2.7);
* ``hmoe-topp-params-<dataset>``: HMoE Top-P (P-Penalty + entropy loss) activates fewer parameters than a
  homogeneous MoE (the Top-P one when it ran, else Top-K, as in the paper's Table 1);
* ``hmoe-topp-entropy-<dataset>``: the router-entropy loss holds down Top-P's rise in experts per token (§8.3.4);
* ``hmoe-rarity-<dataset>``: larger experts handle rarer tokens — the slope of gate-weighted expert width over
  token-frequency deciles of ``hmoe_topk_pp`` > 0 (§8.3.5, paper Fig. 8).

Once per run, not per seed (issue 25; one interleaved measurement, so no interval — direction only at best):

* ``hmoe-speed-homogeneous`` / ``hmoe-speed-heterogeneous``: the MoE layer (grouped dispatch) costs at most
  1.2× / 1.5× a dense FFN of the same activated width, forward + backward — the worst ratio over the targeted
  shapes (d ≥ 256, ≥ 4k tokens, E = 8–16, top-2 and Top-P) against the target.

Controls (:func:`planted_controls`, on the planted two-difficulty language of ``hmoe.synthetic``; rows in
``extra.planted_controls``):

* ``hmoe-pos``: hard positions (a random function of a token pair) need FFN capacity, easy ones (a +1 bigram)
  none. Rule fixed before the run: HMoE Top-K + P-Penalty's gate-weighted expert width is larger at hard than
  at easy positions (paired 95% CI over seeds above 0), AND its hard-position loss is not worse than the
  homogeneous MoE + LB's (CI of the difference reaches 0 or below) while it trains no more FLOPs.
  The homogeneous MoE is the simple baseline: it cannot prefer a width by construction.
* ``hmoe-neg``: the same language with both classes equally hard (two pair tables of one size). Rule: the
  width gap between the classes is inside seed noise (its 95% CI includes 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llm_dynamics_kit.speed_claims import kv_cache_claim
from shared.claims import compare, control, non_inferior, paired, per_seed

# the positive control's "match": HMoE's hard-position loss at most 5% above the homogeneous MoE's (upper CI end)
POS_LOSS_MARGIN = 0.05
LABELS = {"moe_topk_lb": "MoE Top-K + LB", "moe_topp_lb_ent": "MoE Top-P + LB + entropy",
          "hmoe_topk_pp": "HMoE Top-K + P-Penalty", "hmoe_topk_none": "HMoE Top-K, no aux loss",
          "hmoe_topk_lb": "HMoE Top-K + LB", "hmoe_topp_pp_ent": "HMoE Top-P + P-Penalty + entropy",
          "hmoe_topp_pp": "HMoE Top-P + P-Penalty", "dense": "dense",
          "hmoe_topp_pp_ent_paper": "HMoE Top-P + P-Penalty + entropy 0.03 (paper)"}


def _scale(data: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """Why the quality claims are weak at this size: the training budget against the paper's."""
    config = data.get("config", {})
    model = config.get("model", {})
    flops = _mean([float(r["train_flops"]) for r in rows if isinstance(r.get("train_flops"), (int, float))])
    return (f"The miniature trains ≈ {flops:.1g} FLOPs per run (d={model.get('d_model', '?')}, "
            f"{model.get('n_layers', '?')} layers, Σh={config.get('total_hidden', '?')}); the paper's gains appear "
            "only from ≈ 2.5e19 FLOPs on (IsoFLOP Fig. 4), so a tie or a loss here says little about that regime.")


def _mean(values: Sequence[float] | Mapping[int, float]) -> float:
    values = list(values.values()) if isinstance(values, Mapping) else list(values)
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else float("nan")


def _finite(a: list[float], b: list[float]) -> tuple[list[float], list[float]]:
    keep = [i for i in range(len(a)) if math.isfinite(a[i]) and math.isfinite(b[i])]
    return [a[i] for i in keep], [b[i] for i in keep]


def _homogeneous_width(data: Mapping[str, Any]) -> float:
    """Activated FFN width of the homogeneous top-2 MoE: 2 of 8 equal experts of Σh."""
    return 2 * float(data.get("config", {}).get("total_hidden", 512)) / 8


def _claims_for(data: Mapping[str, Any], dataset: str) -> list[dict[str, Any]]:
    rows = [r for r in data["rows"] if r.get("dataset") == dataset]
    arms = {r["arm"] for r in rows}
    width = _homogeneous_width(data)
    steps = data.get("config", {}).get("steps", "?")
    vocab = data.get("config", {}).get("model", {}).get("vocab_size", "?")
    scale = _scale(data, rows)
    out: list[dict[str, Any]] = []

    def arm_pair(metric: str, ours: str, base: str) -> tuple[list[float], list[float]]:
        a, b, _ = paired(rows, metric, ours={"arm": ours}, baseline={"arm": base})
        return _finite(a, b)

    def values(metric: str, arm: str) -> list[float]:
        return [v for v in per_seed(rows, metric, arm=arm).values() if math.isfinite(v)]

    def hidden(arm: str) -> str:
        return f"activated FFN width {_mean(per_seed(rows, 'activated_ffn_hidden', arm=arm)):.0f} vs {width:.0f}"

    if "hmoe_topk_none" in arms and (rho := values("size_activation_rho", "hmoe_topk_none")):
        note = f"{LABELS['hmoe_topk_none']}: {hidden('hmoe_topk_none')} for homogeneous top-2."
        out.append(compare(
            f"hmoe-matthew-{dataset}",
            "Without an auxiliary loss, a heterogeneous MoE's router favours its large experts (Matthew effect): "
            "activation frequency rises with expert size.",
            "Fig. 3: naive HMoE (no aux loss) sends most tokens to large experts — per-expert activation ratios "
            "(up to ≈0.2) grow with size overall, not monotonically — and gains nothing over MoE+LB.",
            f"Spearman ρ(expert size, share of validation tokens routed to it), layer mean, "
            f"{LABELS['hmoe_topk_none']}; baseline 0 = no size preference ({dataset})",
            rho, 0.0, higher_is_better=True, ours_label=LABELS["hmoe_topk_none"], baseline_label="no preference",
            why={"reproduced": note,
                 "direction_only": f"{note} The size preference varies across seeds: in {steps} steps the "
                                   "router has had little time to lock in.",
                 "not_reproduced": f"{note} At this length the router has not (yet) locked onto large experts."}))
    if "hmoe_topk_pp" in arms and (rho := values("size_activation_rho", "hmoe_topk_pp")):
        note = f"{LABELS['hmoe_topk_pp']}: {hidden('hmoe_topk_pp')} for homogeneous top-2."
        out.append(compare(
            f"hmoe-rebalance-{dataset}",
            "The P-Penalty loss turns the preference around: small experts get more tokens, so fewer parameters "
            "are activated.",
            "Fig. 5 / App. K: P-Penalty shifts activation toward small experts (LB does not); HMoE-0.4B Top-K "
            "activates 153M parameters vs 163M for MoE (Table 1).",
            f"Spearman ρ(expert size, share of validation tokens routed to it), layer mean, "
            f"{LABELS['hmoe_topk_pp']}; baseline 0 ({dataset})",
            rho, 0.0, higher_is_better=False, ours_label=LABELS["hmoe_topk_pp"], baseline_label="no preference",
            why=note))
    if {"hmoe_topk_pp", "hmoe_topk_none"} <= arms:
        a, b = arm_pair("val_loss_matched_flops", "hmoe_topk_pp", "hmoe_topk_none")
        fa, fb = arm_pair("val_loss", "hmoe_topk_pp", "hmoe_topk_none")
        note = (f"Final-step val loss (unequal FLOPs: P-Penalty activates fewer parameters) {_mean(fa):.4f} vs "
                f"{_mean(fb):.4f}.")
        if a:
            out.append(compare(
                f"hmoe-pp-loss-{dataset}",
                "The P-Penalty auxiliary loss lowers the LM loss of a heterogeneous MoE compared with no auxiliary "
                "loss.",
                "Fig. 5 (0.4B aux-loss ablation, equal FLOPs): HMoE with P-Penalty is best of {P-Penalty, LB, no "
                "aux} and the naive HMoE is no better than MoE+LB.",
                f"validation loss (nats) at the dataset's smallest final training-FLOP budget (interpolated along "
                f"each run's eval curve), {LABELS['hmoe_topk_pp']} vs {LABELS['hmoe_topk_none']} ({dataset})",
                a, b, higher_is_better=False, ours_label=LABELS["hmoe_topk_pp"],
                baseline_label=LABELS["hmoe_topk_none"],
                why={"reproduced": note, "direction_only": f"{note} {scale}", "not_reproduced": f"{note} {scale}"}))
    if {"hmoe_topk_pp", "moe_topk_lb"} <= arms:
        a, b = arm_pair("val_loss_matched_flops", "hmoe_topk_pp", "moe_topk_lb")
        if a:
            out.append(compare(
                f"hmoe-flops-{dataset}",
                "At equal training FLOPs a heterogeneous MoE with P-Penalty reaches a lower (or equal) LM loss than "
                "a homogeneous MoE.",
                "IsoFLOP Fig. 4: from ≈2.5e19 FLOPs HMoE has the lower loss (not below); Table 1 at 7e19 FLOPs: "
                "HMoE-0.4B Top-K avg 43.68 vs MoE 43.45 zero-shot.",
                f"validation loss (nats) at the dataset's smallest final training-FLOP budget, "
                f"{LABELS['hmoe_topk_pp']} vs {LABELS['moe_topk_lb']} ({dataset})",
                a, b, higher_is_better=False, ours_label=LABELS["hmoe_topk_pp"], baseline_label=LABELS["moe_topk_lb"],
                why={"direction_only": scale, "not_reproduced": scale}))
    if "hmoe_topp_pp_ent" in arms and arms & {"moe_topp_lb_ent", "moe_topk_lb"}:
        base = "moe_topp_lb_ent" if "moe_topp_lb_ent" in arms else "moe_topk_lb"
        a, b = arm_pair("activated_params", "hmoe_topp_pp_ent", base)
        ept = _mean(per_seed(rows, "experts_per_token", arm="hmoe_topp_pp_ent"))
        note = (f"{LABELS['hmoe_topp_pp_ent']} uses {ept:.2f} experts per token on average (Top-P picks 1 or more "
                f"per token) vs {_mean(per_seed(rows, 'experts_per_token', arm=base)):.2f} for {LABELS[base]}.")
        if a:
            out.append(compare(
                f"hmoe-topp-params-{dataset}",
                "With Top-P routing a heterogeneous MoE adapts the experts per token and activates fewer parameters "
                "than a homogeneous MoE.",
                "Table 1: activated parameters HMoE-3B Top-P 0.68B vs MoE-3B Top-P 1.23B and Top-K 0.77B; 16B: "
                "1.77B vs 3.83B (MoE Top-P); at 0.4B both Top-P models activate 173M.",
                f"activated parameters per validation token (measured routing), {LABELS['hmoe_topp_pp_ent']} vs "
                f"{LABELS[base]} ({dataset})",
                a, b, higher_is_better=False, ours_label=LABELS["hmoe_topp_pp_ent"], baseline_label=LABELS[base],
                why=note))
    if {"hmoe_topp_pp_ent", "hmoe_topp_pp"} <= arms:
        a, b = arm_pair("experts_per_token_rebound", "hmoe_topp_pp_ent", "hmoe_topp_pp")
        ends = (f"Final experts per token {_mean(per_seed(rows, 'experts_per_token', arm='hmoe_topp_pp_ent')):.2f} "
                f"with vs {_mean(per_seed(rows, 'experts_per_token', arm='hmoe_topp_pp')):.2f} without the entropy loss.")
        if a:
            out.append(compare(
                f"hmoe-topp-entropy-{dataset}",
                "Without the router-entropy loss Top-P routing activates ever more experts per token; the entropy "
                "loss holds the count down.",
                "§2.5.3 (after Huang et al. 2024): the entropy loss stops Top-P from activating ever more experts; "
                "no separate number is reported.",
                f"rise of mean experts per token from its training minimum to the end of training, "
                f"{LABELS['hmoe_topp_pp_ent']} vs {LABELS['hmoe_topp_pp']} ({dataset})",
                a, b, higher_is_better=False, ours_label=LABELS["hmoe_topp_pp_ent"],
                baseline_label=LABELS["hmoe_topp_pp"], why=ends))
    if "hmoe_topk_pp" in arms and (slopes := values("rarity_slope", "hmoe_topk_pp")):
        out.append(compare(
            f"hmoe-rarity-{dataset}",
            "Larger experts handle rarer (harder) tokens: the gate-weighted size of the experts a token uses rises "
            "with its rarity.",
            "Fig. 8 / App. J, Table 5: rare, polysemous and sub-word tokens go to large experts more often; small "
            "experts are used by all tokens.",
            f"least-squares slope of gate-weighted expert width (hidden units) over training-frequency deciles of "
            f"the validation tokens (rarer → higher), {LABELS['hmoe_topk_pp']}; baseline 0 ({dataset})",
            slopes, 0.0, higher_is_better=True, ours_label=LABELS["hmoe_topk_pp"], baseline_label="no trend",
            why={"direction_only": f"With a {vocab}-token BPE vocabulary and {steps} training steps few tokens are "
                                   "'hard'; the per-seed slopes scatter widely.",
                 "not_reproduced": f"With a {vocab}-token BPE vocabulary and {steps} training steps few tokens "
                                   "are 'hard'."}))
    return out


def _speed_claims(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The MoE-layer cost targets of issue 25, from ``extra.throughput.moe_layer`` (see ``moe/speed.py``)."""
    rows = [r for r in (data.get("extra", {}).get("throughput", {}).get("moe_layer") or [])
            if r.get("dispatch") == "auto" and r.get("target")]
    out = []
    for kind, label in (("homogeneous", "homogeneous"), ("arithmetic", "heterogeneous")):
        group = [r for r in rows if r.get("strategy") == kind]
        if not group:
            continue
        worst = max(group, key=lambda r: r["cost_ratio"])
        listing = ", ".join(f"{r['name']} {r['cost_ratio']:.2f}×" for r in group)
        why = (f"Worst of the targeted shapes ({listing}; {worst['threads']} threads, median of {worst['repeats']} "
               f"interleaved repeats), measured once per run, so there is no CI.")
        out.append(compare(
            f"hmoe-speed-{label}",
            f"A {label} MoE layer trains at close to the cost of a dense FFN of the same activated width.",
            "Issue 25 target (not a paper number): ≤ 1.2× homogeneous, ≤ 1.5× heterogeneous, forward + backward on "
            "CPU at d ≥ 256, ≥ 4k tokens, E = 8–16 (MegaBlocks-style grouped GEMM).",
            f"MoE layer / dense FFN time, forward + backward, worst targeted shape; baseline = the target "
            f"{worst['target']}×",
            [worst["cost_ratio"]], float(worst["target"]), higher_is_better=False, ours_label="MoE layer",
            baseline_label="target", why=why))
    gen = data.get("extra", {}).get("throughput", {}).get("generate")
    if gen:
        out.append(kv_cache_claim(
            "hmoe-kv-cache",
            "The HMoE model generates through the HF wrapper with a KV cache, much faster than re-running the prefix.",
            gen))
    return out


def planted_controls(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The positive and negative controls from the planted-language rows (``hmoe.controls.run_controls``)."""
    out = []
    pos = [r for r in rows if r.get("control") == "positive"]
    if pos:
        gaps = list(per_seed(pos, "width_gap", arm="hmoe_topk_pp").values())
        gap = compare("hmoe-pos-gap", "", "", "width gap", gaps, 0.0, higher_is_better=True)
        a, b, _ = paired(pos, "loss_hard", ours={"arm": "hmoe_topk_pp"}, baseline={"arm": "moe_topk_lb"})
        fa, fb, _ = paired(pos, "train_flops", ours={"arm": "hmoe_topk_pp"}, baseline={"arm": "moe_topk_lb"})
        loss = compare("hmoe-pos-loss", "", "", "hard loss", a, b, higher_is_better=False) if a else None
        routed = gap["verdict"] == "reproduced"
        # "match": non-inferior within POS_LOSS_MARGIN of the baseline's hard loss (a CI that only reaches 0
        # passed any wide interval — the rule before 2026-12-02, set before the full profile ran)
        margin = POS_LOSS_MARGIN * _mean(b) if b else 0.0
        matched = loss is not None and non_inferior(loss, margin) and bool(fa) and _mean(fa) <= _mean(fb)
        observed = (f"HMoE+PP gate-weighted width hard − easy {gap['ours']:+.1f} hidden units, 95% CI "
                    f"{_ci(gap)}; hard-position loss {_mean(a):.3f} vs {_mean(b):.3f} for MoE+LB "
                    f"(difference CI {_ci(loss) if loss else 'n/a'}, margin +{margin:.3f}) at {_mean(fa) / max(_mean(fb), 1e-9):.3f}× "
                    f"its training FLOPs; easy-position loss {_mean(per_seed(pos, 'loss_easy', arm='hmoe_topk_pp')):.3f}"
                    f" vs {_mean(per_seed(pos, 'loss_easy', arm='moe_topk_lb')):.3f} ({len(gaps)} seeds).")
        out.append(control(
            "hmoe-pos", "positive",
            "planted language: hard positions output a random function of a token pair (needs FFN capacity), "
            "easy positions a +1 bigram (needs none); HMoE Top-K + P-Penalty vs homogeneous MoE + LB, same seeds",
            "hard positions get wider experts than easy ones (width-gap CI > 0) and HMoE's hard-position loss is "
            f"within {POS_LOSS_MARGIN:.0%} of the homogeneous MoE's (upper end of the difference CI <= "
            f"{POS_LOSS_MARGIN:.0%} of its hard loss) at no more training FLOPs",
            observed, routed and matched, width_gap=gap["ours"], width_gap_ci95=gap["diff_ci95"],
            loss_hard=_mean(a) if a else None, loss_hard_baseline=_mean(b) if b else None))
    neg = [r for r in rows if r.get("control") == "negative"]
    if neg:
        gaps = list(per_seed(neg, "width_gap", arm="hmoe_topk_pp").values())
        gap = compare("hmoe-neg-gap", "", "", "width gap", gaps, 0.0, higher_is_better=True)
        ci = gap["diff_ci95"]
        passed = ci is not None and ci[0] <= 0.0 <= ci[1]
        out.append(control(
            "hmoe-neg", "negative",
            "the same language with uniform difficulty: both classes are pair lookups of one size",
            "no size preference: the width gap between the two classes has a 95% CI including 0",
            f"HMoE+PP width gap {gap['ours']:+.1f} hidden units, 95% CI {_ci(gap)} ({len(gaps)} seeds).",
            passed, width_gap=gap["ours"], width_gap_ci95=ci))
    return out


def _ci(comparison: dict[str, Any] | None) -> str:
    ci = comparison["diff_ci95"] if comparison else None
    return f"[{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci else "n/a (too few seeds)"


def evaluate(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """HMoE's claims per dataset from an ``llm/hmoe`` results payload, the MoE-layer speed claims, and the
    planted-language controls."""
    datasets = list(dict.fromkeys(r["dataset"] for r in data["rows"]))
    controls = planted_controls(data.get("extra", {}).get("planted_controls") or [])
    return [claim for dataset in datasets for claim in _claims_for(data, dataset)] + _speed_claims(data), controls
