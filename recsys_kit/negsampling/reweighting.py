"""Importance re-weighting (survey §3.4): keep the sampled negatives, change their weights.

- ``pris``: PRIS-style self-normalised importance sampling (Lian et al., WWW'20): K negatives from a cheap
  proposal q (uniform or popularity^alpha), w_j = softmax_k(s_uj - log q(j)) (log-Q correction, weights
  detached, sum to 1 per positive), L = sum_k w_k · -log σ(s_ui - s_uj_k). Cost O(K d).
- ``tce``: denoising truncated loss (T-CE, Wang et al., WSDM'21) on the BPR pair loss with uniform negatives:
  drop the ``drop_rate(t)`` share of largest-loss pairs in each batch, drop_rate rising linearly from 0 to
  ``max_drop`` over ``gradual_epochs`` (the paper counts iterations; epochs are our documented unit). O(B log B).
"""

from __future__ import annotations

import torch

from recsys_kit.negsampling import backbone
from recsys_kit.negsampling.base import (
    Negatives,
    NegativeSampler,
    SamplingContext,
    register,
    uniform_candidates,
)
from recsys_kit.negsampling.static import PopularitySampler
from shared.errors import ConfigError


def importance_weights(scores: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Self-normalised weights ``softmax_k(s_k - log q_k)`` over the last axis (each row sums to 1)."""
    return torch.softmax(scores - log_q, dim=-1)


@register
class PRISSampler(NegativeSampler):
    """PRIS: importance-weighted BPR over K proposal negatives."""

    name = "pris"
    family = "reweighting"
    cost = "O(K d) scores per positive"
    needs_model = True

    def __init__(self, n_samples: int = 16, proposal: str = "popularity", alpha: float = 0.75,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        if proposal not in ("uniform", "popularity"):
            raise ConfigError(f"PRIS proposal must be 'uniform' or 'popularity', got {proposal!r}")
        self.n_samples = self.num_candidates = int(n_samples)
        self.proposal, self.alpha = proposal, float(alpha)

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        if self.proposal == "popularity":
            self._pop = PopularitySampler(alpha=self.alpha)
            self._pop.generator = self.generator
            self._pop.bind(ctx)
            self.log_q = torch.log(torch.from_numpy(self._pop.probs).float().clamp(min=1e-12))
        else:
            self.log_q = torch.zeros(ctx.n_items)  # constant: cancels in the softmax
        return self

    def draw(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` proposal draws (positives rejected)."""
        if self.proposal == "popularity":
            return self._pop.draw(users, self.n_samples)
        return uniform_candidates(self._require_ctx(), users, self.n_samples, self.generator)

    def sample(self, model, users, pos_items):
        items = self.draw(users)
        scores = backbone.score_candidates(model, users, items)
        return Negatives(items, importance_weights(scores, self.log_q[items]))

    def training_loss(self, model, interaction):
        users, pos = interaction[model.USER_ID], interaction[model.ITEM_ID]
        items = self.draw(users.cpu()).to(users.device)  # [B, K]
        user_e, item_e = backbone.final_embeddings(model)
        u = user_e[users]
        pos_scores = (u * item_e[pos]).sum(-1)  # [B]
        neg_scores = torch.einsum("bd,bkd->bk", u, item_e[items])  # [B, K]
        weights = importance_weights(neg_scores.detach(), self.log_q.to(users.device)[items])
        self.last_negatives = Negatives(items.cpu(), weights.cpu())
        return backbone.weighted_bpr(pos_scores, neg_scores, weights) + backbone.regulariser(model, users, pos, items)


@register
class TCESampler(NegativeSampler):
    """T-CE-style denoising: uniform negatives, the largest-loss pairs truncated (weight 0)."""

    name = "tce"
    family = "reweighting"
    cost = "O(B log B) for the truncation"
    needs_model = True

    def __init__(self, max_drop: float = 0.2, gradual_epochs: int = 10, seed: int | None = None) -> None:
        super().__init__(seed)
        if not 0 <= max_drop < 1:
            raise ConfigError(f"max_drop must be in [0, 1), got {max_drop}")
        self.max_drop, self.gradual_epochs = float(max_drop), int(gradual_epochs)

    def drop_rate(self) -> float:
        """Share of pairs dropped at the current epoch."""
        return self.max_drop * min(1.0, self.epoch / max(self.gradual_epochs, 1))

    def truncation_weights(self, losses: torch.Tensor) -> torch.Tensor:
        """``[B]`` weights: 0 for the ``drop_rate`` largest losses, then renormalised to mean 1 over kept pairs."""
        n_drop = int(self.drop_rate() * len(losses))
        weights = torch.ones_like(losses)
        if n_drop:
            weights[losses.topk(n_drop).indices] = 0.0
        return weights * len(losses) / weights.sum()

    def sample(self, model, users, pos_items):
        return Negatives(uniform_candidates(self._require_ctx(), users, 1, self.generator)[:, 0])

    def training_loss(self, model, interaction):
        users, pos = interaction[model.USER_ID], interaction[model.ITEM_ID]
        neg = self.sample(model, users.cpu(), pos.cpu()).items.to(users.device)
        user_e, item_e = backbone.final_embeddings(model)
        u = user_e[users]
        per_pair = -torch.nn.functional.logsigmoid((u * item_e[pos]).sum(-1) - (u * item_e[neg]).sum(-1))  # [B]
        weights = self.truncation_weights(per_pair.detach())
        self.last_negatives = Negatives(neg.cpu())
        return (weights * per_pair).mean() + backbone.regulariser(model, users, pos, neg)
