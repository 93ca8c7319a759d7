"""Feedback-aware item reweighting (paper Eq. 7): L = (1/B) Σ_k m(f_k) · CE(logits_k, i_k)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from recsys_kit.ecr.labels import EMOTION_LOSS_WEIGHTS, FEEDBACK_WEIGHTS
from shared.errors import ConfigError


def feedback_weights(feedback: Sequence[str], weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """m(f) per instance (like 2.0 / dislike 1.0 / not-say 0.5 by default)."""
    table = dict(FEEDBACK_WEIGHTS if weights is None else weights)
    missing = sorted(set(feedback) - set(table))
    if missing:
        raise ConfigError(f"no loss weight for feedback {missing}; weights cover {sorted(table)}")
    return torch.tensor([table[f] for f in feedback], dtype=torch.float32)


def emotion_weights(reactions: Sequence[Mapping[str, float]], default: float = 1.0) -> torch.Tensor:
    """The code's unused alternative: Σ_label p · w(label) of the seeker's next-turn emotions."""
    out = []
    for reaction in reactions:
        out.append(sum(p * EMOTION_LOSS_WEIGHTS[label] for label, p in reaction.items()) if reaction else default)
    return torch.tensor(out, dtype=torch.float32)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Batch mean of ``weights * CE``; plain CE when ``weights`` is None. logits (B, N), targets (B,)."""
    per_sample = F.cross_entropy(logits, targets, reduction="none")  # (B,)
    if weights is None:
        return per_sample.mean()
    return (weights.to(per_sample) * per_sample).mean()
