"""Post-hoc MoEfication of a Hugging Face GPT-2-class model (ReLU/GELU MLP with ``c_fc``/``c_proj``).

GPT-2's MLP is ``c_proj(act(c_fc(x)))`` with biases and ``Conv1D`` weights stored (in, out). Neuron i is
column i of ``c_fc.weight``, ``c_fc.bias[i]`` and row i of ``c_proj.weight``. Clustering uses the normalised
rows ``[w_i, b_i]`` (the bias carried through the permutation, brief §2.1) and the router is built from the
centroids: ``s_e(x) = scale · (ĉ_e[:d] · x + ĉ_e[d])``. The MLP modules themselves are kept (weights
permuted in place, no copies) inside :class:`MoEfiedGPT2MLP`; :func:`densify_hf` puts them back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from llm_dynamics_kit.ssd.clustering import Clustering, recluster
from llm_dynamics_kit.ssd.moefied import MoEficationError
from llm_dynamics_kit.train import permute_parameter_
from shared.errors import ConfigError

SUPPORTED_ACTIVATIONS = ("relu", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu")


class MoEfiedGPT2MLP(nn.Module):
    """A GPT-2 MLP run as a top-k SMoE over contiguous neuron blocks (gate value 1: masked dense output)."""

    def __init__(self, mlp: nn.Module, n_experts: int, top_k: int):
        super().__init__()
        self.mlp = mlp
        d_model, hidden = mlp.c_fc.weight.shape  # Conv1D weight is (in, out)
        self.n_experts, self.hidden = n_experts, hidden
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=True).to(mlp.c_fc.weight.device, mlp.c_fc.weight.dtype)
        self.register_buffer("perm", torch.arange(hidden, device=mlp.c_fc.weight.device))
        self.selector = "router"

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        h = self.mlp.act(self.mlp.c_fc(hidden_states))  # (B, T, D)
        m = self.hidden // self.n_experts
        blocks = h.view(*h.shape[:-1], self.n_experts, m)  # (B, T, E, m)
        scores = blocks.clamp_min(0).sum(-1) if self.selector == "oracle" else self.router(hidden_states)
        top = scores.topk(self.top_k, dim=-1).indices
        mask = torch.zeros_like(scores).scatter(-1, top, 1.0)
        h = (blocks * mask.unsqueeze(-1)).view_as(h)
        return self.mlp.dropout(self.mlp.c_proj(h))


def _blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    base = getattr(model, "transformer", model)
    layers = getattr(base, "h", None)
    if layers is None:
        raise MoEficationError(f"{type(model).__name__} is not a GPT-2-class model (no transformer.h blocks); "
                               "post-hoc MoEfication supports GPT-2-style c_fc/c_proj MLPs")
    prefix = "transformer.h" if hasattr(model, "transformer") else "h"
    return [(f"{prefix}.{i}.mlp", block) for i, block in enumerate(layers)]


def check_hf_moefiable(model: nn.Module) -> None:
    """Raise :class:`MoEficationError` naming the first MLP that cannot be MoEfied."""
    activation = getattr(getattr(model, "config", None), "activation_function", None)
    for name, block in _blocks(model):
        mlp = block.mlp
        if isinstance(mlp, MoEfiedGPT2MLP):
            continue
        if hasattr(mlp, "gate_proj") or not (hasattr(mlp, "c_fc") and hasattr(mlp, "c_proj")):
            raise MoEficationError(f"{name} ({type(mlp).__name__}) is not a plain c_fc/c_proj MLP (gated FFNs "
                                   "cannot be MoEfied)")
        if activation not in SUPPORTED_ACTIVATIONS:
            raise MoEficationError(f"{name} uses activation {activation!r}; MoEfication needs one of "
                                   f"{SUPPORTED_ACTIVATIONS}")


def moefy_hf(model: nn.Module, n_experts: int, top_k: int, n_iter: int = 50, backend: str = "auto",
             seed: int = 0) -> list[Clustering]:
    """MoEfy every MLP of a GPT-2-class model in place; returns the per-layer clusterings."""
    check_hf_moefiable(model)
    if not 1 <= top_k <= n_experts:
        raise ConfigError(f"top_k must be in 1..{n_experts}, got {top_k}")
    out = []
    for i, (name, block) in enumerate(_blocks(model)):
        mlp = block.mlp.mlp if isinstance(block.mlp, MoEfiedGPT2MLP) else block.mlp
        old_perm = block.mlp.perm if isinstance(block.mlp, MoEfiedGPT2MLP) else None
        w, b = mlp.c_fc.weight.detach().T, mlp.c_fc.bias.detach()  # (D, d), (D,)
        if w.shape[0] % n_experts:
            raise MoEficationError(f"{name} has {w.shape[0]} neurons, not divisible by n_experts={n_experts}")
        rows = torch.cat([w, b[:, None]], dim=1)  # (D, d+1): the bias is part of a neuron's input weight
        clustering = recluster(rows, n_experts, None, n_iter, backend, seed + i)
        perm = torch.as_tensor(clustering.permutation(), device=w.device)
        permute_parameter_(mlp.c_fc.weight, perm, 1)
        permute_parameter_(mlp.c_fc.bias, perm, 0)
        permute_parameter_(mlp.c_proj.weight, perm, 0)
        wrapper = MoEfiedGPT2MLP(mlp, n_experts, top_k)
        if old_perm is not None:
            wrapper.perm.copy_(old_perm[perm])
        else:
            wrapper.perm.copy_(perm)
        with torch.no_grad():
            c = torch.as_tensor(clustering.centroids, dtype=w.dtype, device=w.device)
            c = c / c.norm(dim=1, keepdim=True).clamp_min(1e-12) * rows.norm(dim=1).mean()
            wrapper.router.weight.copy_(c[:, :-1])
            wrapper.router.bias.copy_(c[:, -1])
        block.mlp = wrapper
        out.append(clustering)
    return out


def densify_hf(model: nn.Module, restore_order: bool = True) -> None:
    """Put the original MLP modules back (and, by default, the original neuron order)."""
    for _, block in _blocks(model):
        wrapper = block.mlp
        if not isinstance(wrapper, MoEfiedGPT2MLP):
            continue
        mlp = wrapper.mlp
        if restore_order:
            inverse = torch.argsort(wrapper.perm)
            permute_parameter_(mlp.c_fc.weight, inverse, 1)
            permute_parameter_(mlp.c_fc.bias, inverse, 0)
            permute_parameter_(mlp.c_proj.weight, inverse, 0)
        block.mlp = mlp


def set_hf_experts(model: nn.Module, top_k: int | None = None, selector: str | None = None) -> None:
    """Change top_k / selector ("router" | "oracle") of every MoEfied MLP."""
    for _, block in _blocks(model):
        if isinstance(block.mlp, MoEfiedGPT2MLP):
            if top_k is not None:
                block.mlp.top_k = top_k
            if selector is not None:
                block.mlp.selector = selector


def hf_labels(model: nn.Module) -> list[np.ndarray]:
    """Current expert id of every neuron (original neuron order) for each MoEfied layer."""
    out = []
    for _, block in _blocks(model):
        if isinstance(block.mlp, MoEfiedGPT2MLP):
            m = block.mlp.hidden // block.mlp.n_experts
            labels = np.empty(block.mlp.hidden, dtype=np.int64)
            labels[block.mlp.perm.cpu().numpy()] = np.repeat(np.arange(block.mlp.n_experts), m)
            out.append(labels)
    return out
