"""A LLaMA-style decoder in one readable file, whose FFN is a swappable component.

Config dataclasses first, then the modules named after the concept (``RMSNorm``, ``CausalSelfAttention``,
``DenseFFN``, ``Block``), then the model (``Transformer``) and its parameter / FLOP accounting.

The FFN of every block is built from ``ModelConfig.ffn.kind`` through :data:`FFN_REGISTRY`:
``"dense"`` (SwiGLU, or a plain ReLU/GELU MLP) here, and every other kind registered with :func:`register_ffn`
where it is defined (``"moe"`` in :mod:`llm_dynamics_kit.moe.layer`, SSD's ``"moefied"``), found through the
``paperkits.llm_ffn`` entry points when not yet imported: this module imports no plug-in. Every FFN follows the :class:`FFN` interface: ``forward(x) -> y`` with ``(B, T, C)`` in and out,
``aux_losses`` / ``aux_coefficients`` filled during forward (summed over layers by the model), ``stats`` for
logging, ``activated_hidden()`` for parameter / FLOP accounting and an ``act_probe`` (``nn.Identity``)
applied to the hidden activations so a forward hook sees them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared.errors import ConfigError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
MODEL_TYPE = "paperkits_llm"


@dataclass
class FFNConfig:
    """The feed-forward component of every block (dense or mixture of experts)."""

    kind: str = "dense"  # "dense" | "moe" | a kind registered with register_ffn (e.g. SSD's "moefied")
    hidden: int = 256  # dense: hidden width; moe: total budget Σ_i h_i over the experts
    activation: str = "swiglu"  # "swiglu" (gated, LLaMA) | "relu" | "gelu" (plain two-matrix MLP)
    # --- mixture of experts (kind == "moe") ---
    n_experts: int = 8
    size_strategy: str = "homogeneous"  # homogeneous | arithmetic | geometric | hybrid | custom (HMoE §2.6)
    custom_sizes: list[int] | None = None  # relative sizes for size_strategy="custom"
    size_ratio: float | None = None  # arithmetic: max/min ratio (None = the paper's 23/9)
    multiple_of: int = 8  # expert widths are rounded to this multiple
    router: str = "topk"  # "topk" | "topp"
    top_k: int = 2
    top_p: float = 0.6
    renormalize: bool = True  # HMoE eq. 11 renormalises the selected probabilities
    max_experts: int | None = None  # top-p: cap on experts per token (None = no cap)
    # auxiliary-loss coefficients, each loss summed over layers (HMoE §2.5.4); 0 disables a loss
    load_balance_coef: float = 0.0
    p_penalty_coef: float = 0.0
    entropy_coef: float = 0.0
    p_penalty_variant: str = "paper"  # "paper" (eq. 4) | "gate_weighted" (official code, brief §6.2)
    size_normalization: str = "sum"  # h̃_i = h_i / Σh ("sum", default) | h_i / mean h ("mean") | h_i ("none")
    entropy_scale_by_n: bool = False  # multiply the entropy loss by N (the paper's printed constant)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form options for registered FFN kinds

    def __post_init__(self) -> None:
        if self.hidden <= 0:
            raise ValueError(f"ffn.hidden must be positive, got {self.hidden}")
        if self.activation not in ("swiglu", "relu", "gelu"):
            raise ValueError(f"ffn.activation must be swiglu, relu or gelu, got {self.activation!r}")
        if self.router not in ("topk", "topp"):
            raise ValueError(f"ffn.router must be 'topk' or 'topp', got {self.router!r}")
        if self.kind == "moe" and not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"ffn.top_k must be in 1..n_experts={self.n_experts}, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"ffn.top_p must be in (0, 1], got {self.top_p}")


@dataclass
class ModelConfig:
    """Every shape and knob of the decoder (nanoGPT-style: all in one place)."""

    vocab_size: int = 2048
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_seq_len: int = 128
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0  # residual dropout
    attn_dropout: float = 0.0  # dropout on attention probabilities only (copying brief, Fig. 7)
    init_std: float = 0.02
    ffn: FFNConfig = field(default_factory=FFNConfig)

    def __post_init__(self) -> None:
        if isinstance(self.ffn, dict):
            self.ffn = FFNConfig(**self.ffn)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("the head size d_model / n_heads must be even for rotary embeddings")
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


# ----------------------------------------------------------------------------------------------------------
# building blocks


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned gain (no bias, no mean subtraction)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.float().pow(2).mean(-1, keepdim=True).add(self.eps).rsqrt()
        return (x.float() * norm).type_as(x) * self.weight


def rotary_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables ``(max_len, head_dim)`` for rotate-half RoPE (the HF LLaMA convention)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, D)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (B, H, T, D) by position; cos/sin are (T, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Keys and values of the tokens seen so far, per layer, (B, H, T, D) each: what a decode step attends to.

    The interface is the one ``transformers`` caches have (``update(k, v, layer_idx) -> (keys, values)``,
    ``get_seq_length()``, ``reset()``), so attention takes either this or an HF ``DynamicCache``.
    Size: 2 · n_layers · B · T · d_model values (keys and values of every layer).

    Storage is preallocated per layer and grows by doubling, so a decode step writes its one new position in
    place instead of copying the whole cache (``torch.cat`` per step was a quarter of a d=1024 batch-1 decode
    step, issue 25); ``update`` returns views of the filled part. A view returned earlier stays valid until the
    cache is cropped below it and written again (``crop`` then ``update`` reuses those positions).
    """

    def __init__(self, min_capacity: int = 64) -> None:
        self.min_capacity = min_capacity
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        self._len: list[int] = []

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys/values of ``layer_idx``; returns every cached key/value of that layer."""
        t = key.shape[-2]
        if layer_idx == len(self._k):
            cap = max(self.min_capacity, t)
            self._k.append(key.new_empty(*key.shape[:-2], cap, key.shape[-1]))
            self._v.append(value.new_empty(*value.shape[:-2], cap, value.shape[-1]))
            self._len.append(0)
        n, cap = self._len[layer_idx], self._k[layer_idx].shape[-2]
        if n + t > cap:  # grow (doubling): amortised O(1) copies per token
            cap = max(2 * cap, n + t)
            for store in (self._k, self._v):
                old = store[layer_idx]
                grown = old.new_empty(*old.shape[:-2], cap, old.shape[-1])
                grown[..., :n, :] = old[..., :n, :]
                store[layer_idx] = grown
        self._k[layer_idx][..., n:n + t, :] = key
        self._v[layer_idx][..., n:n + t, :] = value
        self._len[layer_idx] = n + t
        return self._k[layer_idx][..., :n + t, :], self._v[layer_idx][..., :n + t, :]

    @property
    def keys(self) -> list[torch.Tensor]:
        """The cached keys of every layer, (B, H, T, D) views."""
        return [k[..., :n, :] for k, n in zip(self._k, self._len)]

    @property
    def values(self) -> list[torch.Tensor]:
        """The cached values of every layer, (B, H, T, D) views."""
        return [v[..., :n, :] for v, n in zip(self._v, self._len)]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens cached so far."""
        return self._len[layer_idx] if layer_idx < len(self._len) else 0

    def reset(self) -> None:
        self._k, self._v, self._len = [], [], []

    def crop(self, length: int) -> None:
        """Keep the first ``length`` cached tokens (e.g. to time the same decode step again)."""
        self._len = [min(n, length) for n in self._len]

    def nbytes(self) -> int:
        """Memory the cached keys and values take (the filled part; :meth:`capacity_nbytes` for the storage)."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)

    def capacity_nbytes(self) -> int:
        """Memory the preallocated storage holds (at most twice the filled part once past ``min_capacity``)."""
        return sum(t.numel() * t.element_size() for t in self._k + self._v)


def _attention_mask(t: int, past: int, device: torch.device) -> torch.Tensor | None:
    """(t, past + t) bool mask: query i (absolute position past + i) sees keys 0..past + i; None for one query."""
    if t == 1:
        return None
    return torch.ones(t, past + t, dtype=torch.bool, device=device).tril(diagonal=past)


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention with RoPE; exposes its probabilities through ``attn_probe`` when asked.

    The fast path uses ``scaled_dot_product_attention``; when ``need_weights`` is set (by
    :meth:`Transformer.capture`) the probabilities are computed explicitly and passed through
    ``attn_probe`` (shape (B, H, T, T)) so forward hooks can read them.
    """

    def __init__(self, config: ModelConfig, layer_idx: int = 0):
        super().__init__()
        c = config.d_model
        self.layer_idx = layer_idx  # this layer's slot in a KV cache
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.q_proj = nn.Linear(c, c, bias=False)
        self.k_proj = nn.Linear(c, c, bias=False)
        self.v_proj = nn.Linear(c, c, bias=False)
        self.o_proj = nn.Linear(c, c, bias=False)
        self.attn_dropout = config.attn_dropout
        self.attn_probe = nn.Identity()
        self.need_weights = False

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """``cos``/``sin`` are the tables of the new tokens' positions; with ``cache`` (a :class:`KVCache` or an HF
        cache) the new keys/values are appended and the queries attend to every cached token."""
        b, t, c = x.shape
        # (B, T, C) -> (B, H, T, D)
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.get_seq_length(self.layer_idx)
            k, v = cache.update(k, v, self.layer_idx)  # (B, H, past + T, D)
        dropout = self.attn_dropout if self.training else 0.0
        if self.need_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, past + T)
            causal = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            probs = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
            probs = self.attn_probe(probs)
            y = F.dropout(probs, p=dropout, training=self.training) @ v  # (B, H, T, D)
        elif past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:  # SDPA's is_causal aligns the mask top-left when T != past + T: pass the bottom-right mask
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=_attention_mask(t, past, x.device),
                                               dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # (B, T, C)
        return self.o_proj(y)


class FFN(nn.Module):
    """The interface every feed-forward component implements (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.aux_losses: dict[str, torch.Tensor] = {}
        self.aux_coefficients: dict[str, float] = {}
        self.stats: dict[str, Any] = {}
        self.act_probe = nn.Identity()

    def activated_hidden(self) -> float:
        """Mean number of hidden units a token activated in the last forward (the FFN's compute size)."""
        raise NotImplementedError

    @property
    def matrices_per_unit(self) -> int:
        """Weight matrices a hidden unit touches: 3 for a gated (SwiGLU) FFN, 2 for a plain MLP."""
        return 3 if getattr(self, "activation", "swiglu") == "swiglu" else 2

    def active_router_params(self) -> int:
        """Router weights a token uses beyond what the config describes (``kind == "moe"``'s E·d router is
        counted from the config); 0 here, overridden by FFNs with their own router (SSD's MoEfied FFN)."""
        return 0


class DenseFFN(FFN):
    """The LLaMA SwiGLU FFN ``W_o (SiLU(W_g x) * W_p x)``, or a plain ``W_o act(W_i x)`` MLP; no biases."""

    def __init__(self, d_model: int, hidden: int, activation: str = "swiglu"):
        super().__init__()
        self.activation, self.hidden = activation, hidden
        self.w_in = nn.Linear(d_model, hidden, bias=False)  # the gate projection W_g for SwiGLU
        self.w_up = nn.Linear(d_model, hidden, bias=False) if activation == "swiglu" else None
        self.w_out = nn.Linear(hidden, d_model, bias=False)

    def hidden_activations(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., H) activations fed to the output projection."""
        if self.activation == "swiglu":
            return F.silu(self.w_in(x)) * self.w_up(x)
        return F.relu(self.w_in(x)) if self.activation == "relu" else F.gelu(self.w_in(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_out(self.act_probe(self.hidden_activations(x)))

    def activated_hidden(self) -> float:
        return float(self.hidden)


FFN_REGISTRY: dict[str, Callable[[ModelConfig], FFN]] = {}


def register_ffn(kind: str) -> Callable[[Callable[[ModelConfig], FFN]], Callable[[ModelConfig], FFN]]:
    """Decorator: register ``builder(model_config) -> FFN`` under ``kind`` (used by ``ffn.kind``)."""

    def decorate(builder: Callable[[ModelConfig], FFN]) -> Callable[[ModelConfig], FFN]:
        FFN_REGISTRY[kind] = builder
        return builder

    return decorate


@register_ffn("dense")
def _build_dense(config: ModelConfig) -> FFN:
    return DenseFFN(config.d_model, config.ffn.hidden, config.ffn.activation)


FFN_ENTRY_POINT_GROUP = "paperkits.llm_ffn"


def _load_ffn_plugin(kind: str) -> None:
    """Import the module that defines ``kind`` (named by an installed ``paperkits.llm_ffn`` entry point).

    The substrate knows no plug-in: each FFN kind registers itself where it is defined (``moe.layer``,
    ``ssd.moefied``), and a saved model of that kind loads without its paper package imported first.
    """
    from importlib.metadata import entry_points

    for point in entry_points(group=FFN_ENTRY_POINT_GROUP):
        if point.name == kind:
            builder = point.load()  # importing the module registers the kind
            FFN_REGISTRY.setdefault(kind, builder)
            return


def build_ffn(config: ModelConfig) -> FFN:
    """The FFN component named by ``config.ffn.kind``."""
    if config.ffn.kind not in FFN_REGISTRY:
        _load_ffn_plugin(config.ffn.kind)
    if config.ffn.kind not in FFN_REGISTRY:
        raise ConfigError(f"unknown ffn.kind {config.ffn.kind!r}; registered kinds: {sorted(FFN_REGISTRY)} "
                          f"(plug-in kinds are found through the {FFN_ENTRY_POINT_GROUP!r} entry points)")
    return FFN_REGISTRY[config.ffn.kind](config)


class Block(nn.Module):
    """Pre-norm transformer block: ``h = x + Attn(norm(x)); out = h + FFN(norm(h))``."""

    def __init__(self, config: ModelConfig, layer_idx: int = 0):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ffn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.ffn: FFN = build_ffn(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: Any = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), cos, sin, cache))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


@dataclass
class LMOutput:
    """What a forward pass returns: logits (B, T, V) and, with targets, the losses."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None  # lm_loss + aux_loss (what the trainer minimises)
    lm_loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None  # Σ_layers Σ_name coef * aux
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)  # raw, summed over layers


@dataclass
class Capture:
    """Tensors recorded by :meth:`Transformer.capture`: one entry per layer (the last forward only)."""

    attention: list[torch.Tensor | None] = field(default_factory=list)  # (B, H, T, T)
    # hidden activations, (B, T, H) for a dense FFN. An MoE FFN's probe fires once per expert (once per size
    # group under grouped dispatch; rows = routed tokens) and this keeps only the last call: register a hook on
    # ``ffn.act_probe`` to collect every expert.
    ffn: list[torch.Tensor | None] = field(default_factory=list)


class Transformer(nn.Module):
    """The decoder: token embedding -> blocks -> RMSNorm -> untied LM head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None  # cached tables (not buffers: no meta init)
        self.apply(self._init_weights)
        # GPT-2/nanoGPT: scale the projections that write into the residual stream by 1/sqrt(2 L)
        for name, param in self.named_parameters():
            if name.endswith(("o_proj.weight", "w_out.weight")) or ".w_out" in name:
                nn.init.normal_(param, mean=0.0, std=config.init_std / math.sqrt(2 * config.n_layers))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)

    def rotary(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin tables (max_seq_len, head_dim) on ``device``, computed once."""
        if self._rope is None or self._rope[0].device != device:
            c = self.config
            cos, sin = rotary_tables(c.head_dim, c.max_seq_len, c.rope_theta)
            self._rope = (cos.to(device), sin.to(device))
        return self._rope

    @property
    def ffns(self) -> list[FFN]:
        """The FFN component of every layer."""
        return [block.ffn for block in self.blocks]

    def replace_ffn(self, layer: int, ffn: FFN) -> FFN:
        """Swap the FFN of ``layer`` (e.g. dense -> MoEfied); returns the old one."""
        old = self.blocks[layer].ffn
        self.blocks[layer].ffn = ffn
        return old

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: Any = None) -> LMOutput:
        """``idx`` (B, T) token ids; ``targets`` (B, T) next tokens (-100 = ignored).

        With ``cache`` (:class:`KVCache`, or an HF cache), ``idx`` are the tokens after the cached ones: their
        positions start at the cache length, and their keys/values are appended to the cache.
        """
        b, t = idx.shape
        past = cache.get_seq_length() if cache is not None else 0
        if past + t > self.config.max_seq_len:
            raise ConfigError(f"sequence length {past + t} exceeds max_seq_len={self.config.max_seq_len}"
                              + (f" ({past} cached + {t} new tokens)" if past else ""))
        cos, sin = self.rotary(idx.device)
        cos, sin = cos[past:past + t], sin[past:past + t]
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        logits = self.lm_head(self.norm(x))  # (B, T, V)
        if targets is None:
            return LMOutput(logits=logits)
        lm_loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        aux_total = lm_loss.new_zeros(())
        aux_losses: dict[str, torch.Tensor] = {}
        for ffn in self.ffns:
            for name, value in ffn.aux_losses.items():
                aux_losses[name] = aux_losses.get(name, 0.0) + value
                coef = ffn.aux_coefficients.get(name, 0.0)
                if coef:
                    aux_total = aux_total + coef * value
        return LMOutput(logits=logits, loss=lm_loss + aux_total, lm_loss=lm_loss, aux_loss=aux_total,
                        aux_losses=aux_losses)

    # ------------------------------------------------------------------ analysis hooks

    @contextlib.contextmanager
    def capture(self, attention: bool = True, ffn: bool = False, detach: bool = True) -> Iterator[Capture]:
        """Record per-layer attention probabilities and/or FFN hidden activations during forwards."""
        record = Capture(attention=[None] * len(self.blocks), ffn=[None] * len(self.blocks))
        handles = []

        def keeper(store: list, layer: int) -> Callable:
            def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
                store[layer] = output.detach() if detach else output
            return hook

        for layer, block in enumerate(self.blocks):
            if attention:
                block.attn.need_weights = True
                handles.append(block.attn.attn_probe.register_forward_hook(keeper(record.attention, layer)))
            if ffn:
                handles.append(block.ffn.act_probe.register_forward_hook(keeper(record.ffn, layer)))
        try:
            yield record
        finally:
            for handle in handles:
                handle.remove()
            for block in self.blocks:
                block.attn.need_weights = False

    def head_weights(self, layer: int) -> dict[str, torch.Tensor]:
        """Per-head W_Q, W_K, W_V (H, D, C) and W_O (H, C, D) of one layer, for QK/OV circuit analysis."""
        attn = self.blocks[layer].attn
        h, d, c = attn.n_heads, attn.head_dim, self.config.d_model
        return {
            "W_Q": attn.q_proj.weight.view(h, d, c),
            "W_K": attn.k_proj.weight.view(h, d, c),
            "W_V": attn.v_proj.weight.view(h, d, c),
            "W_O": attn.o_proj.weight.view(c, h, d).permute(1, 0, 2),
        }

    # ------------------------------------------------------------------ accounting

    def num_params(self, trainable_only: bool = False) -> int:
        """Total parameters (every expert counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _ffn_units(self) -> list[tuple[float, int, float]]:
        """Per layer (activated hidden, matrices per unit, router params in use beyond the config's)."""
        return [(f.activated_hidden(), f.matrices_per_unit, float(f.active_router_params())) for f in self.ffns]

    def activated_params(self) -> float:
        """Parameters used per token in the last forward (embeddings counted, like the HMoE paper)."""
        return activated_params(self.config, self._ffn_units())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token from the last forward's activated parameters (see :func:`flops_per_token`)."""
        return flops_per_token(self.config, self._ffn_units(), seq_len or self.config.max_seq_len)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 use_cache: bool = True) -> torch.Tensor:
        """Sample ``max_new_tokens`` continuations of ``idx`` (B, T); temperature 0 = greedy.

        ``use_cache``: decode one token a step against a :class:`KVCache` (the same tokens as without, up to
        float rounding). Once the sequence outgrows ``max_seq_len`` both paths re-run the last window each
        step (positions restart at 0 in the window, so cached keys would be at the wrong positions).
        """
        window = self.config.max_seq_len
        cache = KVCache() if use_cache else None
        for _ in range(max_new_tokens):
            if cache is not None and idx.shape[1] <= window:
                new = idx[:, cache.get_seq_length():]
                logits = self(new, cache=cache).logits[:, -1, :]
            else:
                logits = self(idx[:, -window:]).logits[:, -1, :]
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (the layout :mod:`llm_dynamics_kit.hf` also reads)."""
        from safetensors.torch import save_file

        from shared.results import atomic_write_text

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {f"lm.{k}": v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = path / f".{WEIGHTS_NAME}.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(path / WEIGHTS_NAME)
        atomic_write_text(path / CONFIG_NAME, json.dumps(hf_config_dict(self.config), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, map_location: str = "cpu") -> Transformer:
        """Load a model written by :meth:`save_pretrained` (or by the HF wrapper's ``save_pretrained``)."""
        from safetensors.torch import load_file

        from shared.errors import DataError

        path = Path(path)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise DataError(f"{path} is not a saved model: expected {CONFIG_NAME} and {WEIGHTS_NAME} in it")
        config = config_from_dict(json.loads((path / CONFIG_NAME).read_text())["model"])
        model = cls(config)
        state = load_file(str(path / WEIGHTS_NAME), device=map_location)
        state = {k.removeprefix("lm."): v for k, v in state.items()}
        model.load_state_dict(state)
        return model


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """A :class:`ModelConfig` from its dict form (as saved in ``config.json``)."""
    from shared.config import from_dict

    return from_dict(ModelConfig, data, where="model")


def hf_config_dict(config: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` contents shared by the native and the HF-wrapped model."""
    return {"model_type": MODEL_TYPE, "architectures": ["PaperkitsLMForCausalLM"],
            "model": dataclasses.asdict(config), "vocab_size": config.vocab_size}


# ----------------------------------------------------------------------------------------------------------
# parameter and FLOP accounting (analytic, so it also works for configs too large to build)


def non_ffn_params(config: ModelConfig) -> int:
    """Embeddings (input + untied output), attention (4 d² per layer) and all RMSNorm gains."""
    d, layers = config.d_model, config.n_layers
    return 2 * config.vocab_size * d + layers * (4 * d * d + 2 * d) + d


def activated_params(config: ModelConfig, ffn_units: list[tuple[float, ...]] | float | None = None) -> float:
    """Parameters a token uses: non-FFN params + Σ_layers (matrices · d · activated hidden + router).

    ``ffn_units`` is per layer ``(activated hidden units, matrices per unit)`` or ``(…, router params in
    use)``, or one activated-hidden number for every layer; ``None`` uses the config's expectation (dense:
    hidden; MoE top-k: k · mean expert width, i.e. uniform routing; top-p: one expert). The router of
    ``kind == "moe"`` (E · d, HMoE §2.8) is always counted; a third tuple entry adds a router the config
    cannot describe (SSD's MoEfied FFN: E · d, only while sparse — SSD brief §2.9/§2.10 "2dD·k/E + dE").
    """
    matrices = 3 if config.ffn.activation == "swiglu" else 2
    if ffn_units is None:
        ffn_units = expected_activated_hidden(config)
    if not isinstance(ffn_units, list):
        ffn_units = [(float(ffn_units), matrices)] * config.n_layers
    router = config.ffn.n_experts * config.d_model if config.ffn.kind == "moe" else 0
    return non_ffn_params(config) + sum(unit[1] * config.d_model * unit[0] + router + sum(unit[2:])
                                        for unit in ffn_units)


def expected_activated_hidden(config: ModelConfig) -> float:
    """Activated hidden units per token implied by the config alone (uniform routing for MoE).

    Top-P under uniform routing (as at initialisation) selects the fewest experts whose mass 1/N each reaches
    p: ceil(p·N), capped by ``max_experts`` — not one expert. Trained Top-P routing varies, so training FLOPs
    come from the measured routing (``Transformer.flops_per_token`` after a forward), never from this.
    """
    if config.ffn.kind != "moe":
        return float(config.ffn.hidden)
    f = config.ffn
    mean_width = f.hidden / f.n_experts
    if f.router == "topk":
        return mean_width * f.top_k
    n = min(f.n_experts, max(1, math.ceil(f.top_p * f.n_experts - 1e-9)))
    return mean_width * (min(n, f.max_experts) if f.max_experts else n)


def flops_per_token(config: ModelConfig, ffn_units: list[tuple[float, ...]] | float | None = None,
                    seq_len: int | None = None) -> float:
    """Training FLOPs per token: 6 · (matmul params touched) + 6 · L · T · d for attention scores/values.

    Kaplan et al. (2020) accounting: forward = 2 FLOPs per weight per token plus 2·L·T·d for QKᵀ and AV
    (causal masking not discounted), backward = 2 × forward. The input embedding is a lookup (no FLOPs); the
    untied LM head is a matmul and is counted.
    """
    seq_len = seq_len or config.max_seq_len
    matmul = activated_params(config, ffn_units) - config.vocab_size * config.d_model  # minus the lookup
    matmul -= config.n_layers * 2 * config.d_model + config.d_model  # norms are not matmuls
    return 6.0 * matmul + 6.0 * config.n_layers * seq_len * config.d_model
