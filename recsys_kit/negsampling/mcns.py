"""MCNS: Markov-chain Monte Carlo negative sampling (Yang et al., KDD'20; the survey's representative of it).

Target: p_n(j | u) ∝ p_d(j | u)^alpha over the user's non-positives, 0 < alpha < 1 ("sub-linearly correlated
with the positive distribution"), with p_d approximated by the recommender's own score (self-contrast):
p_d(j | u) ∝ exp(s(u, j)), so p_n(j | u) ∝ exp(alpha · s(u, j)). Sampled by Metropolis–Hastings:

- proposal q(y | x) = (1 − nu) · uniform + nu · two-hop walk x -> random co-user -> random item of that user
  (the paper mixes a uniform and a graph-neighbourhood proposal; items without a training user walk uniformly);
- acceptance min(1, exp(alpha (s(u,y) − s(u,x))) · q(x | y) / q(y | x)), exact (the two-hop density is a
  dense item×item table built once); a proposal that is a training positive has p_n = 0 and is rejected.

Deviation (documented choice, parameter-free): the paper carries one chain along a DFS traversal of the graph
so that consecutive nodes, whose negative distributions are close, warm-start each other. RecBole's loader
shuffles positives, so we keep one *persistent chain per user* instead: each time a user appears its chain
continues from the user's last state (``n_steps`` MH steps), a new chain starts uniform and runs ``burn_in``
extra steps. Training uses RecBole's own BPR on the chain's state (the paper uses a hinge loss).
Cost per positive: (n_steps [+ burn_in]) × (2 O(d) scores + O(1) proposal).
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
from shared.errors import ConfigError

MAX_DENSE_ITEMS = 8000  # the exact two-hop proposal density is an n_items² float table (8000² = 256 MB)


def two_hop_table(ctx: SamplingContext) -> torch.Tensor:
    """``[N, N]`` P(y | x) of the walk item x -> random training user of x -> random training item of that user.

    Rows of items without a training user (and of [PAD]) are uniform over the real items (the walk falls back
    to a uniform draw there); column 0 ([PAD]) is 0.
    """
    pos = ctx.positives
    n = ctx.n_items
    users, items = pos.row_users, pos.row_items
    item_deg = torch.bincount(items, minlength=n).double()
    user_deg = pos.counts.double()
    values_iu = 1.0 / item_deg[items]  # x -> u
    values_uy = 1.0 / user_deg[users]  # u -> y
    item_user = torch.zeros(n, ctx.n_users, dtype=torch.float64)
    item_user[items, users] = values_iu  # pairs are unique (PositiveIndex merged duplicates)
    user_item = torch.zeros(ctx.n_users, n, dtype=torch.float64)
    user_item[users, items] = values_uy
    table = item_user @ user_item
    isolated = item_deg == 0
    table[isolated] = 1.0 / (n - 1)
    table[:, 0] = 0.0
    return table.float()


@register
class MCNSSampler(NegativeSampler):
    """MCNS: Metropolis–Hastings chains per user targeting p_n(j|u) ∝ exp(alpha · s(u, j)) on non-positives."""

    name = "mcns"
    family = "dynamic"
    cost = "(n_steps [+ burn_in]) x (2 O(d) scores + O(1) proposal) per positive; O(N^2) table once"
    needs_model = True

    def __init__(self, alpha: float = 0.5, neighbour_share: float = 0.5, n_steps: int = 2, burn_in: int = 10,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        # alpha: the paper's theory needs 0 < alpha < 1; its default is not in our brief, 0.5 is our choice
        if not 0.0 < alpha < 1.0:
            raise ConfigError(f"MCNS needs 0 < alpha < 1 (sub-linear in p_d), got {alpha}")
        if not 0.0 <= neighbour_share <= 1.0:
            raise ConfigError(f"neighbour_share must be in [0, 1], got {neighbour_share}")
        if n_steps < 1 or burn_in < 0:
            raise ConfigError(f"MCNS needs n_steps >= 1 and burn_in >= 0, got {n_steps}, {burn_in}")
        self.alpha, self.neighbour_share = float(alpha), float(neighbour_share)
        self.n_steps, self.burn_in = int(n_steps), int(burn_in)

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        if self.neighbour_share > 0 and ctx.n_items > MAX_DENSE_ITEMS:
            raise ConfigError(f"MCNS's exact two-hop proposal needs an n_items² table; {ctx.n_items} items exceed "
                              f"{MAX_DENSE_ITEMS}: use neighbour_share=0 (uniform proposal)")
        self.table = two_hop_table(ctx) if self.neighbour_share > 0 else None
        pos = ctx.positives
        order = torch.argsort(pos.row_items, stable=True)  # item -> users CSR for the walk
        self.item_users = pos.row_users[order]
        counts = torch.bincount(pos.row_items, minlength=ctx.n_items)
        self.item_offsets = torch.zeros(ctx.n_items + 1, dtype=torch.long)
        self.item_offsets[1:] = torch.cumsum(counts, 0)
        self.state = torch.zeros(ctx.n_users, dtype=torch.long)  # 0 = no chain yet
        self.acceptance = 0.0
        return self

    def _propose(self, current: torch.Tensor) -> torch.Tensor:
        ctx = self._require_ctx()
        uniform = torch.randint(1, ctx.n_items, current.shape, generator=self.generator)
        if self.table is None:
            return uniform
        start, degree = self.item_offsets[current], self.item_offsets[current + 1] - self.item_offsets[current]
        pick = (torch.rand(current.shape, generator=self.generator) * degree.clamp(min=1)).long()
        co_user = self.item_users[(start + pick).clamp(max=max(len(self.item_users) - 1, 0))]
        walked, _ = ctx.positives.random_member(co_user, self.generator)
        walked = torch.where(degree > 0, walked, uniform)
        use_walk = torch.rand(current.shape, generator=self.generator) < self.neighbour_share
        return torch.where(use_walk, walked, uniform)

    def _log_q(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        ctx = self._require_ctx()
        q = torch.full(src.shape, (1.0 - self.neighbour_share) / (ctx.n_items - 1))
        if self.table is not None:
            q = q + self.neighbour_share * self.table[src, dst]
        return torch.log(q)

    def sample(self, model, users, pos_items):
        ctx = self._require_ctx()
        current = self.state[users].clone()
        fresh = current == 0
        if bool(fresh.any()):
            current[fresh] = uniform_candidates(ctx, users[fresh], 1, self.generator)[:, 0]
        steps = self.n_steps + (self.burn_in if bool(fresh.any()) else 0)
        score = _scorer(model, users)
        accepted = tried = 0
        for step in range(steps):
            active = torch.ones_like(fresh) if step < self.n_steps else fresh  # burn-in: new chains only
            proposal = self._propose(current)
            scores = score(torch.stack([current, proposal], 1))  # [B, 2]
            log_ratio = (self.alpha * (scores[:, 1] - scores[:, 0]) + self._log_q(proposal, current)
                         - self._log_q(current, proposal))
            ok = torch.log(torch.rand(users.shape, generator=self.generator)) < log_ratio
            ok &= active & ~ctx.positives.contains(users, proposal)
            current = torch.where(ok, proposal, current)
            accepted += int(ok.sum())
            tried += int(active.sum())
        self.acceptance = accepted / max(tried, 1)
        self.state[users] = current
        return Negatives(current)


def _scorer(model: torch.nn.Module, users: torch.Tensor):
    """``items [B, M] -> scores [B, M]`` for the batch's users; BPR/LightGCN embeddings computed once per batch."""
    if backbone._is_lightgcn(model) or backbone._is_mf(model):
        was_training = model.training
        with torch.no_grad():
            user_e, item_e = (t.detach().cpu() for t in backbone.final_embeddings(model))
        model.train(was_training)
        batch = user_e[users]
        return lambda items: torch.einsum("bd,bmd->bm", batch, item_e[items])
    return lambda items: backbone.score_candidates(model, users, items)
