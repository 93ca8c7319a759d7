"""Dynamic negative sampling (survey §3.2): model-aware choice among M uniform candidates, every step.

Selection always runs under ``torch.no_grad`` on the current model (brief §5.5 "model-side"); the loss uses
the chosen *real* item through RecBole's own ``calculate_loss`` (DNS, DNS(M,N), curriculum, AHNS, SRNS) or
a synthetic/gated negative through :mod:`.backbone` (MixGCF, DENS). Costs are extra work per positive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from recsys_kit.negsampling import backbone
from recsys_kit.negsampling.base import (
    Negatives,
    NegativeSampler,
    SamplingContext,
    register,
    uniform_candidates,
)
from shared.errors import ConfigError


class CandidateSampler(NegativeSampler):
    """Base for samplers that score ``M`` uniform candidates per positive.

    ``n_candidates`` defaults to M = 16 (DNS, DNS(M,N), cns, AHNS, MixGCF, DENS): the kit's one protocol value
    (brief §10.3, "M = 16 uniform candidates", also the value of the §8.3 prototype runs), not any single repo's
    default — each subclass's docstring says what its official code uses (SRNS keeps its own S1 = 8).
    """

    needs_model = True
    family = "dynamic"
    uses_positive_score = False  # AHNS/SRNS need s(u, i); DNS-style selectors do not

    def __init__(self, n_candidates: int = 16, seed: int | None = None) -> None:
        super().__init__(seed)
        if n_candidates < 1:
            raise ConfigError(f"n_candidates must be >= 1, got {n_candidates}")
        self.n_candidates = self.num_candidates = int(n_candidates)

    def candidates(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, M]`` uniform non-positive candidates."""
        return uniform_candidates(self._require_ctx(), users, self.n_candidates, self.generator)

    def choose(self, scores: torch.Tensor, pos_scores: torch.Tensor) -> torch.Tensor:
        """Index ``[B]`` into the candidate axis, from scores ``[B, M]`` and positive scores ``[B]``."""
        raise NotImplementedError

    def sample(self, model, users, pos_items):
        cand = self.candidates(users)  # [B, M]
        if self.uses_positive_score:  # one scoring pass: candidates and the positive together
            both = backbone.score_candidates(model, users, torch.cat([cand, pos_items.unsqueeze(1)], 1))
            scores, pos_scores = both[:, :-1], both[:, -1]  # [B, M], [B]
        else:
            scores, pos_scores = backbone.score_candidates(model, users, cand), None
        index = self.choose(scores, pos_scores)
        return Negatives(cand.gather(1, index.unsqueeze(1))[:, 0])


@register
class DNSSampler(CandidateSampler):
    """DNS (Zhang et al., SIGIR'13): the highest-scored of M uniform candidates."""

    name = "dns"
    cost = "O(M) draws + O(M d) scores (+1 no-grad propagation for LightGCN)"

    def choose(self, scores, pos_scores):
        return scores.argmax(1)


@register
class DNSMNSampler(CandidateSampler):
    """DNS(M, N) (Shi et al., WWW'23): a uniform pick among the top-N of M candidates (N=1: DNS, N=M: RNS)."""

    name = "dns_mn"
    cost = "O(M d) scores + top-N"

    def __init__(self, n_candidates: int = 16, top_n: int = 5, seed: int | None = None) -> None:
        super().__init__(n_candidates, seed)
        if not 1 <= top_n <= n_candidates:
            raise ConfigError(f"top_n must be in [1, n_candidates={n_candidates}], got {top_n}")
        self.top_n = int(top_n)

    def choose(self, scores, pos_scores):
        top = scores.topk(self.top_n, dim=1).indices  # [B, N]
        pick = torch.randint(0, self.top_n, (scores.shape[0], 1), generator=self.generator)
        return top.gather(1, pick)[:, 0]


@register
class CurriculumDNSSampler(CandidateSampler):
    """Curriculum DNS ("cns", AHNS repo): argmax over the first max(1, floor((1 - t/T) M)) candidates.

    The pool shrinks from M (hard) to 1 (uniform) over the T = ``max_epochs`` training epochs.
    """

    name = "cns"
    cost = "O(M d) scores"

    def pool_size(self) -> int:
        """Candidates used at the current epoch."""
        total = max(self._require_ctx().max_epochs, 1)
        return max(1, int(math.floor((1 - self.epoch / total) * self.n_candidates)))

    def choose(self, scores, pos_scores):
        return scores[:, : self.pool_size()].argmax(1)


@register
class AHNSSampler(CandidateSampler):
    """AHNS (Lai et al., AAAI'24): j* = argmin_j |s(u,j) - beta·(s(u,i) + alpha)^(p+1)|, p < 0.

    The better the positive is already scored, the easier the chosen negative. Sources of the defaults
    (brief §4): alpha 1.0, beta 0.1, p -2 are the AHNS repo's defaults (also its Phones/Tools setting);
    n_candidates 16 is the kit's protocol M (brief §10.3) — the repo's default is n_negs 32 (Phones/Sports/Tools
    use 32; its ML-1M setting uses M 16 with alpha 0.1, beta 0.4). (alpha, beta) need tuning to the score
    scale: untuned (the Phones setting) AHNS lost to uniform on ml-100k in the brief's prototype (§8.3).
    """

    name = "ahns"
    cost = "O(M d) scores"
    uses_positive_score = True

    def __init__(self, n_candidates: int = 16, alpha: float = 1.0, beta: float = 0.1, p: float = -2.0,
                 seed: int | None = None) -> None:
        super().__init__(n_candidates, seed)
        if p >= 0:
            raise ConfigError(f"AHNS needs p < 0 (hardness decreasing in the positive's score), got {p}")
        self.alpha, self.beta, self.p = float(alpha), float(beta), float(p)

    def target(self, pos_scores: torch.Tensor) -> torch.Tensor:
        """Target score per positive: beta·(s_ui + alpha)^(p+1)."""
        return self.beta * torch.pow(pos_scores + self.alpha, self.p + 1)

    def choose(self, scores, pos_scores):
        return (scores - self.target(pos_scores).unsqueeze(1)).abs().argmin(1)


@register
class SRNSSampler(CandidateSampler):
    """SRNS (Ding et al., NeurIPS'20): a per-user memory, picked by score + alpha·warm-up·score std.

    Memory ``[U, S1]`` (``n_candidates`` = S1) with a score history ``[U, S1, H]`` recorded once per epoch.
    Pick j* = argmax_j [σ(s_uj - s_ui) + alpha·min(1, t/warmup)·std_j], std_j = std over the last H epochs of
    σ(s_t(u,j)). Each step the users' memory is refreshed: M_u ∪ {S2 = S1·s2_ratio fresh uniform items},
    S1 kept without replacement with p ∝ softmax(s_uj / tau) (Gumbel top-k).
    Choice (brief §3.2 "distribution-based"): the history is per (user, item), positive-independent, and
    recorded per epoch over the memory instead of the official 3000-item pools (memory cost O(U·S1·H)).
    Defaults are the official run.sh values (brief §4): S1 8, S2_div_S1 8, alpha 5.0, warmup 50, tau 10; the
    history length 5 is the brief's "last 5 epochs" (§3.2.4).
    Cost O((S1 + S2) d) per positive + O(U·S1·d) per epoch.
    """

    name = "srns"
    cost = "O((S1+S2) d) per positive + O(U S1 d) per epoch"

    def __init__(self, n_candidates: int = 8, s2_ratio: int = 8, alpha: float = 5.0, warmup: int = 50,
                 tau: float = 10.0, history: int = 5, seed: int | None = None) -> None:
        super().__init__(n_candidates, seed)
        self.s2_ratio, self.alpha, self.warmup = int(s2_ratio), float(alpha), int(warmup)
        self.tau, self.history = float(tau), int(history)

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        users = torch.arange(ctx.n_users)
        self.memory = uniform_candidates(ctx, users, self.n_candidates, self.generator)  # [U, S1]
        self.score_history = torch.full((ctx.n_users, self.n_candidates, self.history), float("nan"))
        return self

    def on_epoch_start(self, model, epoch):
        super().on_epoch_start(model, epoch)
        if model is None:
            return
        users = torch.arange(self._require_ctx().n_users)
        scores = backbone.score_candidates(model, users, self.memory)  # [U, S1]
        self.score_history = torch.cat([self.score_history[:, :, 1:], scores.unsqueeze(-1)], dim=-1)

    def variance(self, users: torch.Tensor) -> torch.Tensor:
        """std over the recorded epochs of σ(score) for each memory slot ``[B, S1]`` (0 with < 2 records)."""
        probs = torch.sigmoid(self.score_history[users])  # [B, S1, H]
        valid = ~torch.isnan(probs)
        n = valid.sum(-1).clamp(min=1)
        mean = torch.where(valid, probs, 0.0).sum(-1) / n
        var = torch.where(valid, (probs - mean.unsqueeze(-1)) ** 2, 0.0).sum(-1) / (n - 1).clamp(min=1)
        return torch.where(valid.sum(-1) >= 2, var.sqrt(), torch.zeros_like(var))

    def sample(self, model, users, pos_items):
        memory = self.memory[users]  # [B, S1]
        scores = backbone.score_candidates(model, users, memory)
        pos_scores = backbone.score_candidates(model, users, pos_items.unsqueeze(1))[:, 0]
        weight = self.alpha * min(1.0, self.epoch / max(self.warmup, 1))
        objective = torch.sigmoid(scores - pos_scores.unsqueeze(1)) + weight * self.variance(users)
        chosen = memory.gather(1, objective.argmax(1, keepdim=True))[:, 0]
        self._refresh_memory(model, users, memory, scores)
        return Negatives(chosen)

    def _refresh_memory(self, model, users, memory, scores) -> None:
        fresh = uniform_candidates(self._require_ctx(), users, self.n_candidates * self.s2_ratio, self.generator)
        fresh_scores = backbone.score_candidates(model, users, fresh)
        pool = torch.cat([memory, fresh], 1)  # [B, S1 + S2]
        logits = torch.cat([scores, fresh_scores], 1) / self.tau
        logits = logits.masked_fill(_later_duplicates(pool), float("-inf"))  # one slot per item
        gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=self.generator).clamp(1e-10, 1 - 1e-10)))
        keep = (logits + gumbel).topk(self.n_candidates, dim=1).indices  # sampling w/o replacement ∝ softmax
        history = torch.cat([self.score_history[users],
                             torch.full((len(users), fresh.shape[1], self.history), float("nan"))], 1)
        self.memory[users] = pool.gather(1, keep)
        self.score_history[users] = history.gather(1, keep.unsqueeze(-1).expand(-1, -1, self.history))


def _later_duplicates(rows: torch.Tensor) -> torch.Tensor:
    """Bool mask ``rows.shape``: True at every repeat of a value already seen earlier in its row."""
    ordered, order = rows.sort(dim=1, stable=True)
    repeat = torch.zeros_like(rows, dtype=torch.bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    mask = torch.zeros_like(repeat)
    mask.scatter_(1, order, repeat)
    return mask


@register
class MixGCFSampler(CandidateSampler):
    """MixGCF (Huang et al., KDD'21): positive mixing + hop mixing into a synthetic negative.

    Per layer l: e'_j(l) = a_l e_i(l) + (1 - a_l) e_j(l), a_l ~ U(0,1) per positive and layer; pick
    j*_l = argmax_j <pool(e_u), e'_j(l)>; e_n = mean_l e'_{j*_l}(l). Gradient flows into e_i and the chosen
    e_j. For MF (L = 0) it is positive mixing + DNS. Loss: BPR on <e_u, e_n> + the model's own L2.
    n_candidates 16 is the kit's protocol M (brief §10.3); the MixGCF repo's default is n_negs 64 (its LightGCN
    runs use 32 Alibaba, 64 Yelp2018, 16 Amazon; brief §4).
    Cost O(M (L+1) d) per positive.
    """

    name = "mixgcf"
    cost = "O(M (L+1) d)"

    def mix(self, user_pool: torch.Tensor, pos_layers: torch.Tensor, cand_layers: torch.Tensor,
            mix_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Synthetic negatives ``[B, d]`` and chosen candidate index per layer ``[B, L+1]``.

        ``user_pool [B, d]``, ``pos_layers [B, L+1, d]``, ``cand_layers [B, M, L+1, d]``.
        """
        batch, _, n_layers, _ = cand_layers.shape
        if mix_weights is None:
            mix_weights = torch.rand(batch, 1, n_layers, 1, generator=self.generator).to(cand_layers.device)
        mixed = mix_weights * pos_layers.unsqueeze(1) + (1 - mix_weights) * cand_layers  # [B, M, L+1, d]
        with torch.no_grad():
            scores = torch.einsum("bd,bmld->bml", user_pool, mixed)  # [B, M, L+1]
            index = scores.argmax(1)  # [B, L+1]
        gather = index.view(batch, 1, n_layers, 1).expand(-1, 1, -1, mixed.shape[-1])
        chosen = mixed.gather(1, gather).squeeze(1)  # [B, L+1, d]
        return chosen.mean(1), index

    def training_loss(self, model, interaction):
        users, pos = interaction[model.USER_ID], interaction[model.ITEM_ID]
        cand = self.candidates(users.cpu()).to(users.device)  # [B, M]
        user_layers, item_layers = backbone.layer_embeddings(model)
        user_pool = user_layers[users].mean(1)  # [B, d]
        pos_layers = item_layers[pos]  # [B, L+1, d]
        negative, index = self.mix(user_pool.detach(), pos_layers, item_layers[cand])
        self.last_negatives = Negatives(cand.gather(1, index[:, -1:]).cpu()[:, 0])  # last hop's real item
        pos_scores = (user_pool * pos_layers.mean(1)).sum(-1)
        neg_scores = (user_pool * negative).sum(-1)
        return backbone.weighted_bpr(pos_scores, neg_scores) + backbone.regulariser(model, users, pos,
                                                                                  cand.gather(1, index[:, -1:])[:, 0])

    def sample(self, model, users, pos_items):
        """Real-item view (for inspection): the candidate chosen at the last hop."""
        return super().sample(model, users, pos_items)

    def choose(self, scores, pos_scores):
        return scores.argmax(1)


class _DENSGates(torch.nn.Module):
    """Per-layer d×d gates of DENS: W_i, W_u (positive gate) and W_n, W_p (negative gate)."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.w_i = torch.nn.ModuleList(torch.nn.Linear(dim, dim) for _ in range(n_layers))
        self.w_u = torch.nn.ModuleList(torch.nn.Linear(dim, dim) for _ in range(n_layers))
        self.w_n = torch.nn.ModuleList(torch.nn.Linear(dim, dim) for _ in range(n_layers))
        self.w_p = torch.nn.ModuleList(torch.nn.Linear(dim, dim) for _ in range(n_layers))

    def positive(self, layer: int, item: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """Relevant part of the positive: e_i ⊙ σ(W_i e_i + W_u e_u)."""
        return item * torch.sigmoid(self.w_i[layer](item) + self.w_u[layer](user))

    def negative(self, layer: int, cand: torch.Tensor, pos_relevant: torch.Tensor) -> torch.Tensor:
        """Relevant part of a candidate: e_j ⊙ σ(W_n e_j + W_p e_i^r)."""
        return cand * torch.sigmoid(self.w_n[layer](cand) + self.w_p[layer](pos_relevant))


@register
class DENSSampler(CandidateSampler):
    """DENS (Lai et al., WSDM'23): gated disentangling of relevant/irrelevant factors + gate loss.

    Per layer l: j*_l = argmax_j <e_u(l), (1 - min(1, t/warmup)) e_j(l) - e_j^r(l)>; the negative is the
    original e_{j*_l}(l) pooled over layers. L_gate = gamma/4 [sp(s(u,i^ir) - s(u,i^r)) + sp(s(u,j^r) - s(u,j^ir))
    + sp(s(u,j^r) - s(u,i^r)) + sp(s(u,i^ir) - s(u,j^ir))] on layer-pooled parts (brief §3.2.4).
    The gates are this sampler's parameters, trained jointly by :class:`NegSamplingTrainer`.
    Sources of the defaults (brief §4): gamma 0.3 and warmup 100 (epochs) are the DENS repo's defaults;
    n_candidates 16 is the kit's protocol M (brief §10.3) — the DENS repo's default is n_negs 6.
    Cost O(M (L+1) d²) for the gates + O(M (L+1) d).
    """

    name = "dens"
    cost = "O(M (L+1) d^2)"

    def __init__(self, n_candidates: int = 16, gamma: float = 0.3, warmup: int = 100, seed: int | None = None) -> None:
        super().__init__(n_candidates, seed)
        self.gamma, self.warmup = float(gamma), int(warmup)
        self.gates: _DENSGates | None = None

    def build_gates(self, model: torch.nn.Module) -> _DENSGates:
        """Create the gates to match the model's embedding size and layer count (idempotent)."""
        if self.gates is None:
            user_layers, _ = backbone.layer_embeddings(model)
            self.gates = _DENSGates(user_layers.shape[-1], user_layers.shape[1]).to(user_layers.device)
        return self.gates

    def parameters(self):
        return list(self.gates.parameters()) if self.gates is not None else []

    def training_loss(self, model, interaction):
        gates = self.build_gates(model)
        users, pos = interaction[model.USER_ID], interaction[model.ITEM_ID]
        cand = self.candidates(users.cpu()).to(users.device)  # [B, M]
        user_layers, item_layers = backbone.layer_embeddings(model)
        u, i, c = user_layers[users], item_layers[pos], item_layers[cand]  # [B, L+1, d], [B, L+1, d], [B, M, L+1, d]
        n_layers = u.shape[1]
        hardness = 1.0 - min(1.0, self.epoch / max(self.warmup, 1))
        pos_rel = torch.stack([gates.positive(layer, i[:, layer], u[:, layer]) for layer in range(n_layers)], 1)
        chosen_idx = []
        with torch.no_grad():
            for layer in range(n_layers):
                cand_rel = gates.negative(layer, c[:, :, layer], pos_rel[:, layer].unsqueeze(1))  # [B, M, d]
                target = hardness * c[:, :, layer] - cand_rel
                chosen_idx.append(torch.einsum("bd,bmd->bm", u[:, layer], target).argmax(1))
        index = torch.stack(chosen_idx, 1)  # [B, L+1]
        layer_ids = torch.arange(n_layers, device=index.device)
        neg_layers = c[torch.arange(len(users), device=index.device).unsqueeze(1), index, layer_ids]  # [B, L+1, d]
        neg_rel = torch.stack([gates.negative(layer, neg_layers[:, layer], pos_rel[:, layer])
                               for layer in range(n_layers)], 1)
        user_pool, pos_pool, neg_pool = u.mean(1), i.mean(1), neg_layers.mean(1)
        self.last_negatives = Negatives(cand.gather(1, index[:, -1:]).cpu()[:, 0])

        def s(x: torch.Tensor) -> torch.Tensor:
            return (user_pool * x).sum(-1)

        i_r, i_ir = pos_rel.mean(1), (i - pos_rel).mean(1)
        j_r, j_ir = neg_rel.mean(1), (neg_layers - neg_rel).mean(1)
        gate_loss = (F.softplus(s(i_ir) - s(i_r)) + F.softplus(s(j_r) - s(j_ir)) + F.softplus(s(j_r) - s(i_r))
                     + F.softplus(s(i_ir) - s(j_ir))).mean() * self.gamma / 4
        bpr = backbone.weighted_bpr(s(pos_pool), s(neg_pool))
        return bpr + gate_loss + backbone.regulariser(model, users, pos, cand.gather(1, index[:, :1])[:, 0])

    def choose(self, scores, pos_scores):
        return scores.argmax(1)
