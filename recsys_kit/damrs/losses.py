"""DA-MRS's three training signals (brief §2.3–2.5): denoised BPR, AU (user-guided alignment), AI (graded items)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-7


def dbpr_weights(user_vectors: torch.Tensor, pos_views: list[torch.Tensor], neg_views: list[torch.Tensor],
                 exponents: tuple[float, float, float] = (1.0, 2.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-triple weights (w⁺, w⁻) of the denoised BPR, detached.

    ``user_vectors`` (B, d) are NOT normalised; each view's item rows (B, d) are. With p_m = σ(zᵤ·ĥ_m(i⁺)):
    w⁺ = clip(p̄^α · exp(−s²)^β, 0, 1) and w⁻ = clip((p_max − q̄)^γ · 1[p̄ < q̄], 0, 1), where s² is the
    unbiased variance of p over views and q̄ the mean negative probability over views AND the batch (a
    scalar, as in the official code). The released code fixes (α, β, γ) = (1, 2, 1).
    """
    alpha, beta, gamma = exponents
    with torch.no_grad():
        p = torch.stack([torch.sigmoid((user_vectors * F.normalize(v, dim=1)).sum(-1)) for v in pos_views], 1)
        q = torch.stack([torch.sigmoid((user_vectors * F.normalize(v, dim=1)).sum(-1)) for v in neg_views], 1)
        p_mean = p.mean(dim=1)  # (B,)
        # a single view has no spread: variance 0 instead of torch.var's NaN
        p_var = p.var(dim=1, unbiased=True) if p.shape[1] > 1 else torch.zeros_like(p_mean)
        p_max = p.max(dim=1).values
        q_mean = q.mean()  # scalar over views and batch (official code, brief §6 item 6)
        w_pos = (p_mean.pow(alpha) * torch.exp(-p_var).pow(beta)).clamp(0.0, 1.0)
        suspicious = (p_mean < q_mean).float()
        w_neg = ((p_max - q_mean).clamp(min=0.0).pow(gamma) * suspicious).clamp(0.0, 1.0)
    return w_pos, w_neg


def denoised_bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, w_pos: torch.Tensor,
                      w_neg: torch.Tensor) -> torch.Tensor:
    """−mean[w⁺ log σ(ŷ⁺ − ŷ⁻) + w⁻ log σ(ŷ⁻ − ŷ⁺)]; with w⁺ = 1, w⁻ = 0 this is plain BPR."""
    diff = pos_scores - neg_scores
    return -(w_pos * F.logsigmoid(diff) + w_neg * F.logsigmoid(-diff)).mean()


def bernoulli_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Element-wise KL(Bern(p) ‖ Bern(q)), clamped to [1e-7, 1 − 1e-7] (the official code has no epsilon)."""
    p = p.clamp(_EPS, 1 - _EPS)
    q = q.clamp(_EPS, 1 - _EPS)
    return p * (p.log() - q.log()) + (1 - p) * ((1 - p).log() - (1 - q).log())


def user_alignment_loss(users: torch.Tensor, cf_items: torch.Tensor, content_items: torch.Tensor) -> torch.Tensor:
    """AU: symmetric Bernoulli KL between σ(a) = σ(zᵤ·norm(z_i)) and σ(b) = σ(zᵤ·norm(h̄_i)), all batch pairs.

    KL(p‖q) + KL(q‖p) = (p − q)(logit p − logit q) = (σ(a) − σ(b))(a − b): the same quantity as the official
    element-wise formula, computed exactly from the logits (no clamp, no log of 0, a third of the memory).
    """
    a = users @ F.normalize(cf_items, dim=1).T  # (U_b, I_b)
    b = users @ F.normalize(content_items, dim=1).T
    return ((torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)).mean()


@torch.no_grad()
def view_neighbour_probs(views: list[torch.Tensor], anchors: torch.Tensor,
                         excluded: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Q_o = row-softmax(norm(H_o[a]) · norm(H_o)ᵀ) for every view (temperature 1; selection only, no grad)."""
    probs = []
    for h in views:
        unit = F.normalize(h, dim=1)
        logits = unit[anchors] @ unit.T  # (A, N)
        if excluded is not None:
            logits = logits.masked_fill(excluded.unsqueeze(0), float("-inf"))
        probs.append(torch.softmax(logits, dim=1))
    return probs


@torch.no_grad()
def graded_positives(probs: list[torch.Tensor], view: int, n_pos: int = 10,
                     excluded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """First-grade (cross-view consensus) and second-grade (own-view only) positives in view ``view``.

    First grade = top-n of Σ_{o≠m} Q_o + 2·Q_m; second grade = top-n of Q_m after zeroing the first-grade
    columns, so the two sets never overlap. ``excluded`` (N,) marks columns that are never positives (PAD).
    """
    consensus = sum(probs) + probs[view]  # own view counted twice
    first = torch.topk(consensus, n_pos, dim=1).indices  # (A, n)
    own = probs[view].scatter(1, first, 0.0)
    if excluded is not None:
        own = own.masked_fill(excluded.unsqueeze(0), -1.0)
    second = torch.topk(own, n_pos, dim=1).indices
    return first, second


def graded_infonce(view: torch.Tensor, anchors: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                   temperature: float = 0.2, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """ℓ = −log(Σ_{P⁺⁺} e / Σ_all e) − log(Σ_{P⁺} e / (Σ_all e − Σ_{P⁺⁺} e)), e = exp(cos/τ); mean over anchors."""
    unit = F.normalize(view, dim=1)
    logits = unit[anchors] @ unit.T / temperature  # (A, N)
    if excluded is not None:
        logits = logits.masked_fill(excluded.unsqueeze(0), float("-inf"))
    log_all = torch.logsumexp(logits, dim=1)
    log_first = torch.logsumexp(logits.gather(1, first), dim=1)
    log_second = torch.logsumexp(logits.gather(1, second), dim=1)
    # Σ_all − Σ_{P⁺⁺} computed exactly as a logsumexp over the non-first-grade columns
    log_rest = torch.logsumexp(logits.scatter(1, first, float("-inf")), dim=1)
    return ((log_all - log_first) + (log_rest - log_second)).mean()


def item_alignment_loss(views: list[torch.Tensor], anchors: torch.Tensor, n_pos: int = 10,
                        temperature: float = 0.2, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """AI: graded InfoNCE averaged over views (positives chosen without gradient)."""
    n_active = views[0].shape[0] - (int(excluded.sum()) if excluded is not None else 0)
    n_pos = max(1, min(n_pos, n_active // 2))  # both grades must fit without overlapping
    total = views[0].new_zeros(())
    probs = view_neighbour_probs([v.detach() for v in views], anchors, excluded)
    for m, h in enumerate(views):
        first, second = graded_positives(probs, m, n_pos, excluded)
        total = total + graded_infonce(h, anchors, first, second, temperature, excluded)
    return total / len(views)
