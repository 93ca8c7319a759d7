"""Per-domain evaluation for cross-domain sequential recommendation (brief §3.6, §6).

Every test row is ranked only against items of its target's domain, under two protocols: full in-domain ranking
and the C2DSR-style sampled protocol (the target against ``n_sampled`` random same-domain items; when a domain has
fewer items than that, all of them are used and the two protocols coincide). RecBole's evaluator pools users, so
this small loop groups by the target's domain and keeps per-row values for paired significance tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from shared.claims import paired_interval

Scorer = Callable[[object], torch.Tensor]  # interaction batch -> (B, N) scores, foreign items at -1e9


@dataclasses.dataclass
class Evaluation:
    """Per-row ranks and derived metrics; ``metrics`` holds means overall and per domain."""

    users: np.ndarray
    domains: np.ndarray          # domain token per row
    full_rank: np.ndarray        # 0-based rank within the target's domain
    sampled_rank: np.ndarray
    k: int = 10
    ks: tuple[int, ...] = (5, 10)   # cut-offs reported for NDCG/HR (brief §6: NDCG@5/10, HR@5/10)

    def per_row(self, metric: str, protocol: str = "full", k: int | None = None) -> np.ndarray:
        """NDCG@k, HR@k, MRR@k or full MRR of every row under ``protocol`` ('full' or 'sampled').

        ``metric="mrr"`` is the mean reciprocal rank over the *whole* ranking (brief §6; every row counts
        1/(rank+1)); ``"mrr@k"`` truncates it at k (0 beyond). ``k`` defaults to :attr:`k`.
        """
        rank = self.full_rank if protocol == "full" else self.sampled_rank
        if metric == "mrr":
            return 1.0 / (rank + 1.0)
        if metric.startswith("mrr@"):
            metric, k = "mrr_at", int(metric[4:])
        hit = rank < (k or self.k)
        if metric == "ndcg":
            return np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
        if metric == "hr":
            return hit.astype(float)
        if metric == "mrr_at":
            return np.where(hit, 1.0 / (rank + 1.0), 0.0)
        raise ValueError(f"unknown metric {metric!r}")

    @property
    def metrics(self) -> dict[str, float]:
        """``{protocol}_{ndcg|hr}@k`` for each k in :attr:`ks`, ``{protocol}_mrr`` (full) and ``_mrr@k``, overall
        and as ``{domain}_{protocol}_…`` per domain."""
        out: dict[str, float] = {}
        names = [(f"{m}@{k}", m, k) for m in ("ndcg", "hr") for k in sorted({*self.ks, self.k})]
        names += [("mrr", "mrr", None), (f"mrr@{self.k}", f"mrr@{self.k}", None)]
        for protocol in ("full", "sampled"):
            for name, metric, k in names:
                values = self.per_row(metric, protocol, k)
                out[f"{protocol}_{name}"] = float(values.mean())
                for domain in sorted(set(self.domains)):
                    out[f"{domain}_{protocol}_{name}"] = float(values[self.domains == domain].mean())
        return out


def ranks_within_domain(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among the finite (allowed) scores; ties count against the target."""
    target_scores = scores.gather(1, targets.unsqueeze(1))                       # (B, 1)
    allowed = scores > -1e8
    ahead = ((scores >= target_scores) & allowed).sum(1) - 1                     # exclude the target itself
    return ahead


@torch.no_grad()
def evaluate_split(scorer: Scorer, split, item_domain: np.ndarray, domain_tokens: np.ndarray,
                   n_sampled: int = 999, k: int = 10, batch_size: int = 512, seed: int = 0,
                   domain_field: str = "domain", item_field: str = "item_id", user_field: str = "user_id"
                   ) -> Evaluation:
    """Rank every row of a RecBole split (``Dataset`` with ``inter_feat``) with ``scorer``."""
    inter = split.inter_feat
    n = len(inter)
    generator = np.random.default_rng(seed)                  # the sampled negatives are fixed per seed
    domain_items = {d: np.flatnonzero(item_domain == d) for d in np.unique(item_domain) if d > 0}
    full, sampled, users, domains = [], [], [], []
    for start in range(0, n, batch_size):
        batch = inter[start:start + batch_size]
        scores = scorer(batch)                                                   # (B, N)
        targets = batch[item_field]
        full.append(ranks_within_domain(scores, targets).cpu().numpy())
        target_domain = batch[domain_field].cpu().numpy()
        scores_np, targets_np = scores.cpu().numpy(), targets.cpu().numpy()
        for row, (dom, target) in enumerate(zip(target_domain, targets_np)):
            pool = domain_items[dom]
            pool = pool[pool != target]
            picked = pool if len(pool) <= n_sampled else generator.choice(pool, n_sampled, replace=False)
            sampled.append(int((scores_np[row, picked] >= scores_np[row, target]).sum()))
        users.append(batch[user_field].cpu().numpy())
        domains.append(domain_tokens[target_domain])
    return Evaluation(users=np.concatenate(users), domains=np.concatenate(domains), full_rank=np.concatenate(full),
                      sampled_rank=np.asarray(sampled), k=k)


def popularity_scorer(train_split, item_domain: np.ndarray, domain_field: str = "domain",
                      item_field: str = "item_id") -> Scorer:
    """Most-popular-in-domain baseline: training-target counts, foreign-domain items masked."""
    counts = np.bincount(train_split.inter_feat[item_field].numpy(), minlength=len(item_domain)).astype(np.float32)
    popularity = torch.from_numpy(counts + 1e-6 * np.random.default_rng(0).random(len(counts)).astype(np.float32))
    item_domain_t = torch.as_tensor(item_domain)

    def score(batch) -> torch.Tensor:
        target_domain = batch[domain_field]
        scores = popularity.unsqueeze(0).repeat(len(target_domain), 1)
        allowed = item_domain_t.unsqueeze(0) == target_domain.unsqueeze(1)
        allowed[:, 0] = False
        return scores.masked_fill(~allowed, -1e9)

    return score


def paired_test(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Paired comparison over users of per-user metric arrays: mean difference, Wilcoxon p, bootstrap 95% CI.

    The statistics are :func:`shared.claims.paired_interval` with the per-user differences as units
    (``scipy.stats.bootstrap`` percentile CI of their mean, ``scipy.stats.wilcoxon`` p); fewer than 10 users give
    no CI (NaN bounds).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a - b
    if len(diff) == 0:
        return {"mean_diff": float("nan"), "wilcoxon_p": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "method": "no users"}
    result = paired_interval([float(diff.mean())], units=diff.tolist(), seed=seed, n_resamples=n_boot)
    low, high = result["ci"] or (float("nan"), float("nan"))
    p = result["p_value"]
    return {"mean_diff": float(result["mean"]), "wilcoxon_p": float("nan") if p is None else float(p),
            "ci_low": float(low), "ci_high": float(high), "method": result["method"]}
