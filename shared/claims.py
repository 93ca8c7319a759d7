"""Claims, controls and the one verdict rule (the schema of the handbook's CLAIMS.md).

Every benchmark's results JSON carries a ``claims`` list and a ``controls`` list. A claim compares *ours*
with a *baseline* on one metric, in the direction the paper says, and its verdict follows from the paired
difference's 95% confidence interval by :func:`verdict_from` — the only place the rule lives:

* ``reproduced``      the CI excludes 0 on the paper's side;
* ``direction_only``  the mean difference points the paper's way but the CI includes 0 (or no CI: < 3 seeds);
* ``not_reproduced``  the mean points the other way (or is exactly 0), or the CI excludes the paper's side;
* ``untestable``      the claim's precondition never happened at this scale (:func:`untestable` says why).

The interval comes from :mod:`scipy.stats`: a paired t interval (``ttest_rel``) over seeds when there are at
least :data:`MIN_SEEDS` of them, else a bootstrap (``scipy.stats.bootstrap``) over paired units (users,
items, examples) when the benchmark supplies per-unit values, else none. Each paper writes its claims in
``<kit>/<paper>/claims.py`` as calls to :func:`compare` / :func:`untestable` / :func:`control`, so what is
compared is readable in one place and no verdict is ever written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.errors import DataError

VERDICTS = ("reproduced", "direction_only", "not_reproduced", "untestable")
CONTROL_KINDS = ("positive", "negative")
MIN_SEEDS = 3  # fewer seeds than this give no t interval; a bootstrap over units is used instead, if given
CONFIDENCE = 0.95
CLAIM_KEYS = ("id", "statement", "paper", "metric", "ours", "baseline", "diff_ci95", "n_seeds", "verdict", "why")
CONTROL_KEYS = ("id", "kind", "setting", "expect", "observed", "passed")


def verdict_from(diff_mean: float | None, ci: Sequence[float] | None, higher_is_better: bool = True) -> str:
    """The verdict of a difference ``ours − baseline`` with its 95% CI (``None`` when there is no interval).

    ``higher_is_better`` is the paper's direction: ``True`` when the paper says ours is larger.
    """
    if diff_mean is None or not math.isfinite(diff_mean):
        return "untestable"
    sign = 1.0 if higher_is_better else -1.0
    if sign * diff_mean <= 0:
        return "not_reproduced"
    if ci is None or any(c is None or not math.isfinite(c) for c in ci):
        return "direction_only"
    low, high = sorted(sign * float(c) for c in ci)
    if low > 0:
        return "reproduced"
    if high < 0:  # cannot happen with a positive mean and a proper interval; kept for asymmetric CIs
        return "not_reproduced"
    return "direction_only"


def _finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values]


def bootstrap_interval(samples: Sequence[Sequence[float]], statistic: Any, seed: int = 0,
                       n_resamples: int = 2_000) -> dict[str, Any]:
    """A paired bootstrap of ``statistic(*samples)`` (e.g. AUC(ours) − AUC(baseline) over the same examples).

    ``samples`` are equally long arrays resampled together (``scipy.stats.bootstrap(paired=True)``); use it at
    run time, where per-example predictions exist, and pass the result to :func:`compare` as ``interval``.
    """
    import numpy as np
    from scipy import stats

    arrays = [np.asarray(sample, dtype=float) for sample in samples]
    if len({len(a) for a in arrays}) != 1 or len(arrays[0]) < 10:
        raise DataError("a paired bootstrap needs equally long samples of at least 10 units")
    point = float(statistic(*arrays))
    boot = stats.bootstrap(tuple(arrays), statistic, paired=True, vectorized=False, confidence_level=CONFIDENCE,
                           n_resamples=n_resamples, method="percentile", random_state=np.random.default_rng(seed))
    low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    return {"mean": point, "ci": [low, high], "method": f"paired bootstrap over {len(arrays[0])} units",
            "p_value": None, "n_units": len(arrays[0])}


def paired_interval(diffs: Sequence[float], units: Sequence[float] | None = None, seed: int = 0,
                    n_resamples: int = 10_000, interval: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Mean of paired differences and its 95% CI: t over seeds (≥ MIN_SEEDS), else a bootstrap.

    ``diffs`` are per-seed differences. When seeds are few the bootstrap comes from ``interval`` (made at run
    time by :func:`bootstrap_interval`) or from ``units``, per-unit paired differences of a metric that is a
    mean over units (per-user recall, say): their mean and its bootstrap CI replace the per-seed mean, so the
    difference and its interval always describe the same quantity. Returns ``mean``, ``ci`` (or ``None``),
    ``method``, ``p_value`` and ``n``.
    """
    import numpy as np
    from scipy import stats

    diffs = _finite(diffs)
    if not diffs:
        raise DataError("a claim needs at least one paired value")
    if any(not math.isfinite(d) for d in diffs):
        return {"mean": float("nan"), "ci": None, "method": "non-finite", "p_value": None, "n": len(diffs)}
    arr = np.asarray(diffs, dtype=float)
    mean = float(arr.mean())
    if len(arr) >= MIN_SEEDS:
        if float(arr.std()) <= 1e-12 * max(1.0, abs(mean)):  # identical differences: the interval is a point
            return {"mean": mean, "ci": [mean, mean], "method": "paired t over seeds (zero spread)",
                    "p_value": 0.0 if mean != 0 else 1.0, "n": len(arr)}
        test = stats.ttest_1samp(arr, 0.0)  # == ttest_rel(ours, baseline) on the differences
        low, high = test.confidence_interval(CONFIDENCE)
        return {"mean": mean, "ci": [float(low), float(high)], "method": "paired t over seeds",
                "p_value": float(test.pvalue), "n": len(arr)}
    if interval is not None and interval.get("ci"):
        return {"mean": float(interval["mean"]), "ci": [float(c) for c in interval["ci"]],
                "method": str(interval.get("method", "bootstrap")), "p_value": interval.get("p_value"),
                "n": len(arr)}
    if units is not None and len(units) >= 10:
        unit_arr = np.asarray(_finite(units), dtype=float)
        unit_arr = unit_arr[np.isfinite(unit_arr)]
        if float(unit_arr.std()) <= 1e-12:
            ci = [float(unit_arr.mean())] * 2
        else:
            boot = stats.bootstrap((unit_arr,), np.mean, confidence_level=CONFIDENCE, n_resamples=n_resamples,
                                   method="percentile", random_state=np.random.default_rng(seed))
            ci = [float(boot.confidence_interval.low), float(boot.confidence_interval.high)]
        p = float(stats.wilcoxon(unit_arr).pvalue) if np.any(unit_arr != 0) else 1.0
        return {"mean": float(unit_arr.mean()), "ci": ci, "method": f"bootstrap over {len(unit_arr)} paired units",
                "p_value": p, "n": len(arr)}
    return {"mean": mean, "ci": None, "method": f"{len(arr)} seed(s): no interval", "p_value": None, "n": len(arr)}


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def describe(ours: float, baseline: float, interval: dict[str, Any], verdict: str) -> str:
    """The numbers behind a verdict in one sentence (the start of every claim's ``why``)."""
    ci = interval["ci"]
    ci_text = f"95% CI [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "no CI"
    reading = {
        "reproduced": "the CI excludes 0 in the paper's direction",
        "direction_only": "the mean points the paper's way but the CI includes 0" if ci else
                          f"the mean points the paper's way; fewer than {MIN_SEEDS} seeds give no CI",
        "not_reproduced": "the difference points against the paper (or is 0)",
        "untestable": "the difference is not finite",
    }[verdict]
    return (f"{_fmt(ours)} vs {_fmt(baseline)}: difference {_fmt(interval['mean'])}, {ci_text} "
            f"({interval['method']}); {reading}.")


def compare(id: str, statement: str, paper: str, metric: str, ours: Sequence[float],
            baseline: Sequence[float] | float, *, higher_is_better: bool = True,
            units: Sequence[float] | None = None, interval: Mapping[str, Any] | None = None,
            ours_label: str = "", baseline_label: str = "",
            why: Mapping[str, str] | str | None = None) -> dict[str, Any]:
    """A claim comparing per-seed values of ours with a baseline, its verdict by :func:`verdict_from`.

    ``ours`` and ``baseline`` are paired by position (same seeds, same order); ``baseline`` may be one number
    (a target such as the paper's reported value or 1.0 for a speed-up). ``units`` are per-unit paired
    differences for the bootstrap when seeds are few, ``interval`` a run-time :func:`bootstrap_interval` (used
    only when seeds are few). ``why`` adds the likely reason, optionally per verdict
    (``{"not_reproduced": "...", "reproduced": "..."}``): only the sentence for the computed verdict is kept.
    """
    ours = _finite(ours)
    if isinstance(baseline, (int, float)):
        base = [float(baseline)] * len(ours)
    else:
        base = _finite(baseline)
    if len(ours) != len(base):
        raise DataError(f"claim {id}: {len(ours)} values of ours vs {len(base)} of the baseline (pair by seed)")
    interval = paired_interval([a - b for a, b in zip(ours, base)], units=units, interval=interval)
    verdict = verdict_from(interval["mean"], interval["ci"], higher_is_better)
    mean_ours = sum(ours) / len(ours)
    mean_base = sum(base) / len(base)
    reason = why.get(verdict, "") if isinstance(why, Mapping) else (why or "")
    return {
        "id": id, "statement": statement, "paper": paper, "metric": metric,
        "ours": mean_ours, "baseline": mean_base,
        "ours_label": ours_label, "baseline_label": baseline_label,
        "diff": interval["mean"], "diff_ci95": interval["ci"], "n_seeds": len(ours),
        "higher_is_better": higher_is_better, "method": interval["method"], "p_value": interval["p_value"],
        "verdict": verdict,
        "why": (describe(mean_ours, mean_base, interval, verdict) + (" " + reason if reason else "")).strip(),
    }


def untestable(id: str, statement: str, paper: str, metric: str, why: str, *, ours: float | None = None,
               baseline: float | None = None, n_seeds: int = 0) -> dict[str, Any]:
    """A claim whose precondition never happened at this scale; ``why`` says which, and what scale would test it."""
    if not why:
        raise DataError(f"claim {id}: an untestable claim must say why")
    return {"id": id, "statement": statement, "paper": paper, "metric": metric, "ours": ours,
            "baseline": baseline, "ours_label": "", "baseline_label": "", "diff": None, "diff_ci95": None,
            "n_seeds": n_seeds, "higher_is_better": True, "method": "", "p_value": None,
            "verdict": "untestable", "why": why}


def control(id: str, kind: str, setting: str, expect: str, observed: str, passed: bool,
            **numbers: Any) -> dict[str, Any]:
    """A positive or negative control; ``passed`` must come from a rule fixed before the run (``expect``)."""
    if kind not in CONTROL_KINDS:
        raise DataError(f"control {id}: kind must be one of {CONTROL_KINDS}, got {kind!r}")
    return {"id": id, "kind": kind, "setting": setting, "expect": expect, "observed": observed,
            "passed": bool(passed), **numbers}


def gain_vanishes(comparison: dict[str, Any]) -> bool:
    """A negative control's rule: the gain is inside seed noise (its CI includes 0, or it points the other way).

    Without an interval (fewer than 3 seeds and no bootstrap) nothing is shown to vanish: the control fails
    rather than pass by lack of power.
    """
    return comparison["diff_ci95"] is not None and comparison["verdict"] != "reproduced"


def non_inferior(comparison: Mapping[str, Any], margin: float) -> bool:
    """"Matches or beats": the worse end of the difference's 95% CI is within ``margin`` of the baseline.

    ``margin`` is in the metric's units, fixed before the run (a CI that merely reaches 0 passes any wide
    interval, so "not significantly worse" is not "as good"). Without an interval nothing is shown: False.
    """
    ci = comparison["diff_ci95"]
    if ci is None:
        return False
    return ci[0] >= -margin if comparison["higher_is_better"] else ci[1] <= margin


def per_seed(rows: Sequence[Mapping[str, Any]], metric: str, **match: Any) -> dict[int, float]:
    """``{seed: value}`` of ``metric`` over the rows whose keys equal ``match`` (e.g. ``arm="ssd"``)."""
    out: dict[int, float] = {}
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()) and metric in row:
            value = row[metric]
            if isinstance(value, str):  # non-finite numbers are stored as strings ("nan", "inf")
                value = float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[int(row.get("seed", 0))] = float(value)
    return out


def paired(rows: Sequence[Mapping[str, Any]], metric: str, ours: Mapping[str, Any],
           baseline: Mapping[str, Any]) -> tuple[list[float], list[float], list[int]]:
    """Per-seed values of ``metric`` for two arms, on the seeds both ran, in seed order."""
    a = per_seed(rows, metric, **ours)
    b = per_seed(rows, metric, **baseline)
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds], seeds


def check(claims: Sequence[Mapping[str, Any]], controls: Sequence[Mapping[str, Any]], where: str = "") -> None:
    """Validate the schema, and that every claim's verdict follows from its stored numbers by the rule."""
    prefix = f"{where}: " if where else ""
    if not isinstance(claims, list) or not isinstance(controls, list):
        raise DataError(f"{prefix}'claims' and 'controls' must be lists")
    seen: set[str] = set()
    for claim in claims:
        missing = [k for k in CLAIM_KEYS if k not in claim]
        if missing:
            raise DataError(f"{prefix}claim {claim.get('id', '?')} lacks {missing}")
        if claim["id"] in seen:
            raise DataError(f"{prefix}claim id {claim['id']!r} appears twice")
        seen.add(claim["id"])
        if claim["verdict"] not in VERDICTS:
            raise DataError(f"{prefix}claim {claim['id']}: verdict {claim['verdict']!r} not in {VERDICTS}")
        if claim["verdict"] == "untestable":
            if not claim["why"]:
                raise DataError(f"{prefix}claim {claim['id']} is untestable without saying why")
            continue
        diff = claim.get("diff")
        diff = float(diff) if diff is not None else None
        expected = verdict_from(diff, claim["diff_ci95"], claim.get("higher_is_better", True))
        if expected != claim["verdict"]:
            raise DataError(f"{prefix}claim {claim['id']}: verdict {claim['verdict']!r} does not follow from its "
                            f"numbers (the rule gives {expected!r})")
    for item in controls:
        missing = [k for k in CONTROL_KEYS if k not in item]
        if missing:
            raise DataError(f"{prefix}control {item.get('id', '?')} lacks {missing}")
        if item["kind"] not in CONTROL_KINDS or not isinstance(item["passed"], bool):
            raise DataError(f"{prefix}control {item['id']}: kind must be positive/negative and passed a bool")
        if item["id"] in seen:
            raise DataError(f"{prefix}id {item['id']!r} appears twice")
        seen.add(item["id"])
