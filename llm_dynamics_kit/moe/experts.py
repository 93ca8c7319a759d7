"""Experts of (possibly) different widths and the sort-and-split dispatch that runs them.

Dispatch (no Python loop over tokens): the (token, expert) pairs of the routing mask are sorted by
expert, the gathered token rows are split into one contiguous chunk per expert, each expert runs one
GEMM on its chunk, and the gate-weighted outputs are scattered back with ``index_add_``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from llm_dynamics_kit.model import DenseFFN


class HeterogeneousExperts(nn.Module):
    """N SwiGLU (or plain MLP) experts; expert i has hidden width ``sizes[i]`` (HMoE §2.2)."""

    def __init__(self, d_model: int, sizes: Sequence[int], activation: str = "swiglu"):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.experts = nn.ModuleList(DenseFFN(d_model, h, activation) for h in self.sizes)
        self.act_probe = nn.Identity()  # sees each expert's hidden activations (rows = routed tokens)

    def __len__(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """x (T, C), mask (T, N) bool, gates (T, N) -> (T, C) = Σ_{i∈E_t} g_{i,t} e_i(x_t)."""
        token_idx, expert_idx = mask.nonzero(as_tuple=True)  # (P,), (P,) pairs, sorted by token
        order = torch.argsort(expert_idx, stable=True)
        token_idx, expert_idx = token_idx[order], expert_idx[order]  # now grouped by expert
        counts = torch.bincount(expert_idx, minlength=len(self.experts)).tolist()
        routed = x[token_idx]  # (P, C)
        outputs = []
        for expert, chunk in zip(self.experts, routed.split(counts)):
            if chunk.shape[0]:
                outputs.append(expert.w_out(self.act_probe(expert.hidden_activations(chunk))))
        y = torch.cat(outputs) if outputs else routed.new_zeros(0, x.shape[-1])  # (P, C)
        weight = gates[token_idx, expert_idx].unsqueeze(-1).to(y.dtype)  # (P, 1)
        return torch.zeros_like(x).index_add_(0, token_idx, y * weight)
