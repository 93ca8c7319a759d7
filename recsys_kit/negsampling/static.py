"""Static negative sampling (survey §3.1): a fixed distribution, blind to the model.

- ``uniform``: j ~ U(I \\ I_u^+) by vectorised rejection. Cost O(1) expected per negative.
- ``popularity``: p(j) ∝ f_j^alpha (word2vec's 0.75; RecBole's default 1.0), Walker alias table, O(N) build,
  O(1) per draw. Counts come from the *training* split only (RecBole's own sampler also counts valid/test
  interactions — a small leak we avoid; brief §5.2).
- ``predefined``: negatives from a fixed external set per user (ml-100k: explicit ratings <= 2). A user with no
  known negative falls back to a uniform draw (documented rule); known negatives that are also training
  positives are never returned. Cost O(1) lookup.
"""

from __future__ import annotations

import numpy as np
import torch

from recsys_kit.negsampling.base import (
    Negatives,
    NegativeSampler,
    SamplingContext,
    register,
    uniform_candidates,
)
from shared.errors import ConfigError, DataError


@register
class UniformSampler(NegativeSampler):
    """RNS: one uniform negative per positive, rejecting the user's training positives."""

    name = "uniform"
    family = "static"
    cost = "O(1) expected per negative (rejection rate |I_u^+|/N)"

    def sample(self, model, users, pos_items):
        return Negatives(uniform_candidates(self._require_ctx(), users, 1, self.generator)[:, 0])


def alias_table(probs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker/Vose alias table ``(accept [N], alias [N])`` for O(1) draws from ``probs`` (sums to 1)."""
    n = len(probs)
    scaled = np.asarray(probs, dtype=np.float64) * n
    accept = np.zeros(n)
    alias = np.zeros(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    for rest in small + large:  # numerical leftovers accept themselves
        accept[rest], alias[rest] = 1.0, rest
    return torch.from_numpy(accept), torch.from_numpy(alias)


def draw_alias(accept: torch.Tensor, alias: torch.Tensor, shape: tuple[int, ...],
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw indices of the alias table's distribution: one uniform column, one coin."""
    column = torch.randint(0, len(accept), shape, generator=generator)
    coin = torch.rand(shape, generator=generator, dtype=torch.float64)
    return torch.where(coin < accept[column], column, alias[column])


@register
class PopularitySampler(NegativeSampler):
    """p(j) ∝ f_j^alpha over items with at least one training interaction, minus the user's positives."""

    name = "popularity"
    family = "static"
    cost = "O(1) per draw (alias table), O(N) build"

    def __init__(self, alpha: float = 0.75, seed: int | None = None, max_rounds: int = 200) -> None:
        super().__init__(seed)
        if alpha < 0:
            raise ConfigError(f"popularity alpha must be >= 0, got {alpha}")
        self.alpha, self.max_rounds = float(alpha), max_rounds

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        weights = ctx.item_counts.double().clone()
        weights[0] = 0.0  # [PAD]
        weights = torch.where(weights > 0, weights.pow(self.alpha), torch.zeros_like(weights))
        if float(weights.sum()) <= 0:
            raise DataError("popularity sampler: no item has a training interaction")
        self.probs = (weights / weights.sum()).numpy()
        self.accept, self.alias = alias_table(self.probs)
        return self

    def draw(self, users: torch.Tensor, num: int) -> torch.Tensor:
        """``[B, num]`` popularity draws with the users' positives rejected (redrawn)."""
        ctx = self._require_ctx()
        users_2d = users.reshape(-1, 1).expand(-1, num)
        items = draw_alias(self.accept, self.alias, tuple(users_2d.shape), self.generator)
        bad = ctx.positives.contains(users_2d, items)
        rounds = 0
        while bool(bad.any()):
            rounds += 1
            if rounds > self.max_rounds:  # a user owning (almost) all popular items: finish uniformly
                items[bad] = uniform_candidates(ctx, users_2d[bad], 1, self.generator)[:, 0]
                break
            items[bad] = draw_alias(self.accept, self.alias, (int(bad.sum()),), self.generator)
            bad = ctx.positives.contains(users_2d, items)
        return items

    def sample(self, model, users, pos_items):
        return Negatives(self.draw(users, 1)[:, 0])


@register
class PredefinedSampler(NegativeSampler):
    """Negatives from a fixed per-user set (``SamplingContext.known_negatives``), uniform fallback."""

    name = "predefined"
    family = "static"
    cost = "O(1) lookup"

    def __init__(self, known_share: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        if not 0.0 <= known_share <= 1.0:
            raise ConfigError(f"known_share must be in [0, 1], got {known_share}")
        # share of positives that get a known negative (the rest: uniform); 1.0 = purely predefined
        self.known_share = float(known_share)

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        if ctx.known_negatives is None:
            raise DataError("the predefined sampler needs known negatives (e.g. ratings <= 2): build the context "
                            "with known_negatives (recsys_kit.negsampling.hook does this for --negative-ratings)")
        return self

    def sample(self, model, users, pos_items):
        ctx = self._require_ctx()
        items, has_any = ctx.known_negatives.random_member(users, self.generator)
        # a known negative that is also a training positive (e.g. all ratings kept as positives) is unusable
        clash = has_any & ctx.positives.contains(users, items)
        use_uniform = ~has_any | clash
        if self.known_share < 1.0:
            use_uniform |= torch.rand(users.shape, generator=self.generator) >= self.known_share
        if bool(use_uniform.any()):
            items[use_uniform] = uniform_candidates(ctx, users[use_uniform], 1, self.generator)[:, 0]
        self.fallback_share = float(use_uniform.float().mean())
        return Negatives(items)
