"""Experts of (possibly) different widths and the dispatch that runs them.

Dispatch (no Python loop over tokens): the (token, expert) pairs of the routing mask are sorted by expert, so
the gathered token rows form one contiguous chunk per expert; the gate-weighted outputs are scattered back
with ``index_add_``. The chunks are run one of two ways (``dispatch``):

* ``"grouped"``: experts of equal width form a size group (all of them when homogeneous; HMoE's arithmetic
  sizes give one group per width), and each group runs as grouped GEMMs (``torch.nn.functional.grouped_mm``,
  MegaBlocks-style variable-size groups without padding: one call per weight matrix for all the group's
  experts), so there is no Python loop over the experts of a group. The group's weights are stacked per
  forward (a copy of the weights, small against the GEMMs at training shapes), which keeps the parameters one
  ``DenseFFN`` per expert (checkpoints and per-expert analyses unchanged).
* ``"loop"``: one GEMM per activated expert (the original sort-and-split path): reads only the experts in use,
  so it wins for a handful of tokens (decode), where stacking every expert's weights would dominate.
* ``"auto"`` (default): ``grouped`` when the pairs average at least ``grouped_min_rows`` per expert and
  ``grouped_mm`` supports the shapes (16-byte aligned rows), else ``loop``.

Both give the same outputs up to float rounding (the same products per expert; SwiGLU's gate and up
projections share one grouped GEMM) and leave routing untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_dynamics_kit.model import DenseFFN
from shared.errors import ConfigError

DISPATCHES = ("auto", "grouped", "loop")


def _size_groups(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of consecutive experts of equal width (sizes come sorted, smallest first)."""
    groups, start = [], 0
    for i in range(1, len(sizes) + 1):
        if i == len(sizes) or sizes[i] != sizes[start]:
            groups.append((start, i))
            start = i
    return groups


def _grouped_linear(rows: torch.Tensor, linears: Sequence[Sequence[nn.Linear]], offs: torch.Tensor) -> torch.Tensor:
    """Rows ``offs[i-1]:offs[i]`` through expert i's linears (outputs side by side), one grouped GEMM for all."""
    weight = torch.stack([torch.cat([lin.weight for lin in group]) if len(group) > 1 else group[0].weight
                          for group in linears])  # (G, out, in), nn.Linear layout
    return F.grouped_mm(rows, weight.transpose(1, 2), offs=offs)


class HeterogeneousExperts(nn.Module):
    """N SwiGLU (or plain MLP) experts; expert i has hidden width ``sizes[i]`` (HMoE §2.2)."""

    def __init__(self, d_model: int, sizes: Sequence[int], activation: str = "swiglu", dispatch: str = "auto",
                 grouped_min_rows: int = 16):
        super().__init__()
        if dispatch not in DISPATCHES:
            raise ConfigError(f"MoE dispatch must be one of {DISPATCHES}, got {dispatch!r}")
        self.sizes = [int(s) for s in sizes]
        self.activation = activation
        self.dispatch, self.grouped_min_rows = dispatch, grouped_min_rows
        self.experts = nn.ModuleList(DenseFFN(d_model, h, activation) for h in self.sizes)
        self.groups = _size_groups(self.sizes)
        # sees the hidden activations of each expert ("loop") or of each size group ("grouped"); rows = routed tokens
        self.act_probe = nn.Identity()
        self.last_dispatch = ""

    def __len__(self) -> int:
        return len(self.experts)

    def _grouped_ok(self, x: torch.Tensor) -> bool:
        align = 16 // x.element_size()  # grouped_mm needs 16-byte aligned strides
        return x.shape[-1] % align == 0 and all(self.sizes[a] % align == 0 for a, b in self.groups if b - a > 1)

    def choose_dispatch(self, x: torch.Tensor, pairs: int) -> str:
        """The path ``dispatch="auto"`` takes for ``pairs`` (token, expert) pairs."""
        if self.dispatch != "auto":
            if self.dispatch == "grouped" and not self._grouped_ok(x):
                raise ConfigError(f"grouped MoE dispatch needs d_model and the widths of equal-size experts to be "
                                  f"multiples of {16 // x.element_size()} for {x.dtype}; got d_model={x.shape[-1]}, "
                                  f"sizes {self.sizes}: use dispatch='loop'")
            return self.dispatch
        big = pairs >= self.grouped_min_rows * len(self.experts)
        return "grouped" if big and self._grouped_ok(x) else "loop"

    def forward(self, x: torch.Tensor, mask: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """x (T, C), mask (T, N) bool, gates (T, N) -> (T, C) = Σ_{i∈E_t} g_{i,t} e_i(x_t)."""
        token_idx, expert_idx = mask.nonzero(as_tuple=True)  # (P,), (P,) pairs, sorted by token
        order = torch.argsort(expert_idx, stable=True)
        token_idx, expert_idx = token_idx[order], expert_idx[order]  # now grouped by expert
        counts = torch.bincount(expert_idx, minlength=len(self.experts))
        routed = x.index_select(0, token_idx)  # (P, C); backward is an index_add (x[idx]'s sorts on CPU)
        self.last_dispatch = self.choose_dispatch(x, routed.shape[0])
        if self.last_dispatch == "grouped":
            y = self._run_grouped(routed, counts)
        else:
            y = self._run_loop(routed, counts.tolist())
        weight = gates[token_idx, expert_idx].unsqueeze(-1).to(y.dtype)  # (P, 1)
        return torch.zeros_like(x).index_add_(0, token_idx, y * weight)

    def _run_loop(self, routed: torch.Tensor, counts: list[int]) -> torch.Tensor:
        outputs = []
        for expert, chunk in zip(self.experts, routed.split(counts)):
            if chunk.shape[0]:
                outputs.append(expert.w_out(self.act_probe(expert.hidden_activations(chunk))))
        return torch.cat(outputs) if outputs else routed.new_zeros(0, routed.shape[-1])  # (P, C)

    def _hidden(self, gate: torch.Tensor, up: torch.Tensor | None) -> torch.Tensor:
        if self.activation == "swiglu":
            return F.silu(gate) * up
        return F.relu(gate) if self.activation == "relu" else F.gelu(gate)

    def _run_grouped(self, routed: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        bounds = [0] + torch.cumsum(counts, 0).tolist()
        outputs = []
        for a, b in self.groups:
            rows = routed[bounds[a]:bounds[b]]
            if not rows.shape[0]:
                continue
            experts = self.experts[a:b]
            if b - a == 1:  # a width of its own: one plain GEMM pair
                outputs.append(experts[0].w_out(self.act_probe(experts[0].hidden_activations(rows))))
                continue
            offs = torch.cumsum(counts[a:b], 0).to(torch.int32)  # group ends within ``rows``
            if self.activation == "swiglu":  # W_g and W_p side by side: one grouped GEMM of width 2h
                gate, up = _grouped_linear(rows, [(e.w_in, e.w_up) for e in experts], offs).chunk(2, dim=-1)
            else:
                gate, up = _grouped_linear(rows, [(e.w_in,) for e in experts], offs), None
            hidden = self.act_probe(self._hidden(gate, up))
            outputs.append(_grouped_linear(hidden, [(e.w_out,) for e in experts], offs))
        return torch.cat(outputs) if outputs else routed.new_zeros(0, routed.shape[-1])
