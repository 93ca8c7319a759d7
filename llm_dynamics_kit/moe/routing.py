"""Token-choice routers: Top-K (Switch/Mixtral) and Top-P (dynamic routing, Huang et al. 2024; HMoE eq. 11).

Both compute router probabilities ``P = softmax(W_r x)`` in float32 and return a :class:`RouterOutput`
with dense ``(T, N)`` tensors: ``probs`` (full softmax, for the auxiliary losses), ``mask`` (which experts
each token activates) and ``gates`` (combine weights, zero outside the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class RouterOutput:
    """Routing decision for T tokens over N experts."""

    probs: torch.Tensor  # (T, N) float32 softmax of the router logits
    mask: torch.Tensor  # (T, N) bool, True where the expert is activated
    gates: torch.Tensor  # (T, N) float32 combine weights, 0 where mask is False

    def detach(self) -> RouterOutput:
        """A copy that holds no autograd graph (for statistics)."""
        return RouterOutput(self.probs.detach(), self.mask.detach(), self.gates.detach())


def _gates(probs: torch.Tensor, mask: torch.Tensor, renormalize: bool) -> torch.Tensor:
    gates = probs * mask
    if renormalize:
        gates = gates / gates.sum(-1, keepdim=True).clamp_min(1e-9)
    return gates


class Router(nn.Module):
    """Linear router ``W_r ∈ R^{N×d}`` without bias; subclasses choose the experts."""

    def __init__(self, d_model: int, n_experts: int, renormalize: bool = True):
        super().__init__()
        self.n_experts, self.renormalize = n_experts, renormalize
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(T, C) -> (T, N) router softmax in float32."""
        return (x.float() @ self.weight.float().t()).softmax(dim=-1)

    def select(self, probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> RouterOutput:
        probs = self.probabilities(x)
        mask = self.select(probs)
        return RouterOutput(probs=probs, mask=mask, gates=_gates(probs, mask, self.renormalize))


class TopKRouter(Router):
    """Each token activates its ``k`` most probable experts."""

    def __init__(self, d_model: int, n_experts: int, k: int = 2, renormalize: bool = True):
        super().__init__(d_model, n_experts, renormalize)
        self.k = k

    def select(self, probs: torch.Tensor) -> torch.Tensor:
        return select_top_k(probs, self.k)


class TopPRouter(Router):
    """Each token activates the smallest prefix of its sorted experts whose mass reaches ``p`` (>= 1 expert).

    ``renormalize`` defaults to True as in HMoE eq. 11; Huang et al.'s released code does not renormalise.
    """

    def __init__(self, d_model: int, n_experts: int, p: float = 0.6, renormalize: bool = True,
                 max_experts: int | None = None):
        super().__init__(d_model, n_experts, renormalize)
        self.p, self.max_experts = p, max_experts

    def select(self, probs: torch.Tensor) -> torch.Tensor:
        return select_top_p(probs, self.p, self.max_experts)


def select_top_k(probs: torch.Tensor, k: int) -> torch.Tensor:
    """(T, N) probabilities -> (T, N) bool mask of the k largest per row."""
    index = probs.topk(k, dim=-1).indices
    return torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, index, True)


def select_top_p(probs: torch.Tensor, p: float, max_experts: int | None = None) -> torch.Tensor:
    """(T, N) -> (T, N) bool mask of the minimal prefix of sorted experts with cumulative mass >= p.

    An expert is kept while the mass *before* it is < p, so the expert that crosses p is included and
    the first expert always is (HMoE brief §2.4). Ties keep ``torch.sort``'s (stable) order.
    """
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    keep = (sorted_probs.cumsum(-1) - sorted_probs) < p  # (T, N) in sorted order
    keep[..., 0] = True
    if max_experts is not None:
        keep[..., max_experts:] = False
    return torch.zeros_like(keep).scatter_(-1, order, keep)
