"""Recommendation metrics of ECR (brief §5.1): R@n, RT@n (liked only), MRR, NDCG, AUC global and per batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(pos > neg) + 0.5 P(tie) over all (pos, neg) pairs; NaN when either side is empty."""
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def batch_auc(gold_prob: Sequence[float], feedback: Sequence[str], batch_size: int = 32) -> float:
    """The official per-batch AUC: mean over consecutive batches holding both liked and disliked instances."""
    values = []
    for start in range(0, len(gold_prob), batch_size):
        probs = gold_prob[start:start + batch_size]
        labels = feedback[start:start + batch_size]
        pos = [p for p, f in zip(probs, labels) if f == "like"]
        neg = [p for p, f in zip(probs, labels) if f == "dislike"]
        if pos and neg:
            values.append(auc(pos, neg))
    return float(np.mean(values)) if values else float("nan")


def rank_metrics(ranks: Sequence[int], gold_prob: Sequence[float], feedback: Sequence[str],
                 ks: Sequence[int] = (1, 10, 50), batch_size: int = 32) -> dict[str, float]:
    """All metrics from 0-based gold ranks among items, p(gold), and the feedback of each instance."""
    ranks = np.asarray(ranks)
    feedback = list(feedback)
    liked = np.array([f == "like" for f in feedback])
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"R@{k}"] = float(hit.mean()) if len(hit) else float("nan")
        out[f"RT@{k}"] = float(hit[liked].mean()) if liked.any() else float("nan")
    out["MRR"] = float((1.0 / (ranks + 1)).mean()) if len(ranks) else float("nan")
    out["NDCG@10"] = float(np.where(ranks < 10, 1.0 / np.log2(ranks + 2), 0.0).mean()) if len(ranks) else float("nan")
    probs = list(gold_prob)
    out["AUC"] = auc([p for p, f in zip(probs, feedback) if f == "like"],
                     [p for p, f in zip(probs, feedback) if f == "dislike"])
    out["AUC_batch"] = batch_auc(probs, feedback, batch_size)
    return out
