"""Auxiliary router losses of HMoE (brief §2.5): load balance, P-Penalty, router entropy.

Notation: T tokens, N experts; ``probs`` (T, N) full router softmax, ``mask`` (T, N) activated experts.
``f_i`` = fraction of tokens dispatched to expert i (a count, no gradient), ``P̂_i`` = mean router
probability of expert i (carries the gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from shared.errors import ConfigError


def dispatch_fractions(mask: torch.Tensor) -> torch.Tensor:
    """f_i = (1/T) Σ_t 1{i ∈ E_t}; shape (N,), no gradient."""
    return mask.detach().float().mean(0)


def load_balance_loss(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Switch load-balancing loss ``N · Σ_i f_i · P̂_i`` (not divided by k, as in the official code)."""
    n = probs.shape[-1]
    return n * (dispatch_fractions(mask) * probs.mean(0)).sum()


def relative_sizes(sizes: Sequence[int] | torch.Tensor, normalization: str = "sum") -> torch.Tensor:
    """h̃_i: h_i / Σ_j h_j ("sum", default), h_i / mean_j h_j ("mean") or raw h_i ("none")."""
    h = torch.as_tensor(sizes, dtype=torch.float32)
    if normalization == "sum":
        return h / h.sum()
    if normalization == "mean":
        return h / h.mean()
    if normalization == "none":
        return h
    raise ConfigError(f"size_normalization must be 'sum', 'mean' or 'none', got {normalization!r}")


def p_penalty_loss(probs: torch.Tensor, mask: torch.Tensor, sizes: Sequence[int] | torch.Tensor,
                   normalization: str = "sum", variant: str = "paper",
                   gates: torch.Tensor | None = None) -> torch.Tensor:
    """HMoE's parameter penalty.

    ``variant="paper"`` (eq. 4, default): ``N · Σ_i M_i · P̂_i`` with ``M_i = f_i · h̃_i``; we use the
    relative size h̃ (brief §2.5.2: the paper's plotted loss values and the official code both imply it;
    with equal sizes this is exactly ``load_balance_loss / N``).
    ``variant="gate_weighted"`` (official code ``ecb201f``): ``Σ_t Σ_{i∈E_t} g_{i,t} h_i / (T·k) / Σ_j h_j``,
    the gate-weighted mean size of the chosen experts; it needs ``gates`` and only moves weight among
    already-selected experts (zero gradient for top-1 with renormalised gates). k is the mean number of
    selected experts (exactly k for Top-K; our choice for Top-P, which the official code lacks).
    """
    h_rel = relative_sizes(sizes, normalization).to(probs.device)
    if variant == "paper":
        n = probs.shape[-1]
        m = dispatch_fractions(mask) * h_rel  # (N,)
        return n * (m * probs.mean(0)).sum()
    if variant == "gate_weighted":
        if gates is None:
            raise ConfigError("p_penalty_variant='gate_weighted' needs the router gates")
        h = torch.as_tensor(sizes, dtype=torch.float32, device=probs.device)
        k = mask.detach().float().sum(-1).mean()
        return (gates * h).sum(-1).mean() / k / h.sum()
    raise ConfigError(f"p_penalty_variant must be 'paper' or 'gate_weighted', got {variant!r}")


def router_entropy_loss(probs: torch.Tensor, scale_by_n: bool = False) -> torch.Tensor:
    """Mean per-token router entropy ``-(1/T) Σ_t Σ_i P log P``, minimised to keep Top-P sparse.

    The paper prints ``N Σ_i P_i log P_i``, which minimised would *raise* entropy, against its stated aim;
    we implement the intended entropy (brief §2.5.3). ``scale_by_n`` multiplies by N like the printed form.

    Scale: this term's gradient on the router logits, ``-c·P_i(log P_i + H)`` per token, does not depend on the
    model; the force that keeps a token on several experts is the LM gain of mixing them, which reaches the
    router only through the renormalised gates of the experts already selected (zero once one is). In a
    miniature that gain is small, so the paper's coefficient 0.03 collapses Top-P to one (mostly the smallest)
    expert per token within ~100 steps — not a sign error (the sign sharpens, as intended) nor a schedule
    effect (switched on only after 200 steps it still collapses). The HMoE presets therefore default to a
    smaller coefficient and keep 0.03 as ``ENT_PAPER`` (``llm_dynamics_kit.hmoe.presets``).
    """
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
    return entropy * probs.shape[-1] if scale_by_n else entropy
