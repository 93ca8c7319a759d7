"""The MoEfied FFN (registered as ``ffn.kind = "moefied"``) and dense <-> SMoE conversion of the kit's model.

One set of weights, two modes (SSD brief §2.5–2.8): ``dense`` is the plain ReLU/GELU MLP; ``sparse`` splits
the D neurons into E contiguous experts of m = D/E neurons, a router picks the top-k experts per token and
only their neurons are computed. The gate is ``g = 1 + p − stopgrad(p)`` (p = softmax of the k selected
router logits): forward value exactly 1, so the SMoE output equals the dense output restricted to the
selected neurons, while the router still receives a gradient (official ``fastmoe`` branch).

``moefy`` re-orders the neurons in place (rows of W_in, columns of W_out and their AdamW moments, through
:func:`llm_dynamics_kit.train.permute_parameter_`) so experts are contiguous, and builds the router from the
cluster centroids; ``densify`` goes back (optionally restoring the original order, bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_dynamics_kit.model import FFN, DenseFFN, ModelConfig, Transformer, register_ffn
from llm_dynamics_kit.ssd.clustering import Clustering, clustering_from_labels, random_partition, recluster
from llm_dynamics_kit.ssd.sparse_infer import PATHS, sparse_ffn
from llm_dynamics_kit.train import permute_parameter_
from shared.errors import ConfigError

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class MoEficationError(ConfigError):
    """A module cannot be turned into a mixture of experts (gated FFN, unsupported activation, bad shape)."""


class MoEfiedFFN(FFN):
    """A plain ReLU/GELU MLP that can run densely or as a top-k SMoE over contiguous neuron blocks."""

    def __init__(self, d_model: int, hidden: int, n_experts: int, top_k: int, activation: str = "relu",
                 mode: str = "dense", selector: str = "router", router_trainable: bool = True,
                 train_impl: str = "masked", inference_path: str = "auto"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise MoEficationError(f"a MoEfied FFN needs a plain relu or gelu MLP, got activation {activation!r} "
                                   "(gated SwiGLU FFNs cannot be MoEfied: build the model with ffn.activation=relu)")
        if n_experts < 1 or hidden % n_experts:
            raise MoEficationError(f"ffn.hidden={hidden} is not divisible by n_experts={n_experts}")
        self.activation, self.hidden, self.n_experts = activation, hidden, n_experts
        self.w_in = nn.Linear(d_model, hidden, bias=False)
        self.w_out = nn.Linear(hidden, d_model, bias=False)
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.router.weight.requires_grad_(router_trainable)
        # current position -> original neuron index (so analyses and restore_order can undo the permutations)
        self.register_buffer("perm", torch.arange(hidden))
        self.top_k = top_k
        self.mode = mode
        self.selector = selector
        self.train_impl = train_impl
        self.inference_path = inference_path
        self._out_cache: tuple[int, torch.Tensor] | None = None

    # --------------------------------------------------------------------- properties with validation

    @property
    def expert_size(self) -> int:
        return self.hidden // self.n_experts

    @property
    def top_k(self) -> int:
        return self._top_k

    @top_k.setter
    def top_k(self, value: int) -> None:
        if not 1 <= value <= self.n_experts:
            raise ConfigError(f"top_k must be in 1..n_experts={self.n_experts}, got {value}")
        self._top_k = int(value)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in ("dense", "sparse"):
            raise ConfigError(f"mode must be 'dense' or 'sparse', got {value!r}")
        self._mode = value

    @property
    def selector(self) -> str:
        return self._selector

    @selector.setter
    def selector(self, value: str) -> None:
        if value not in ("router", "oracle"):
            raise ConfigError(f"selector must be 'router' or 'oracle', got {value!r}")
        self._selector = value

    @property
    def train_impl(self) -> str:
        return self._train_impl

    @train_impl.setter
    def train_impl(self, value: str) -> None:
        if value not in ("masked", "grouped"):
            raise ConfigError(f"train_impl must be 'masked' or 'grouped', got {value!r}")
        self._train_impl = value

    @property
    def inference_path(self) -> str:
        return self._inference_path

    @inference_path.setter
    def inference_path(self, value: str) -> None:
        if value not in (*PATHS, "masked"):
            raise ConfigError(f"inference_path must be one of {(*PATHS, 'masked')}, got {value!r}")
        self._inference_path = value

    # --------------------------------------------------------------------- construction

    @classmethod
    def from_config(cls, config: ModelConfig) -> MoEfiedFFN:
        """Build from ``config.ffn`` (n_experts, top_k, activation; ``extra`` may set mode/selector/...)."""
        f = config.ffn
        options = {k: f.extra[k] for k in ("mode", "selector", "router_trainable", "train_impl", "inference_path")
                   if k in f.extra}
        return cls(config.d_model, f.hidden, f.n_experts, f.top_k, f.activation, **options)

    @classmethod
    def from_dense(cls, dense: DenseFFN, n_experts: int, top_k: int, **options: Any) -> MoEfiedFFN:
        """Wrap a plain DenseFFN, sharing its weight tensors (same Parameter objects: no copy, optimizer intact)."""
        if dense.activation not in ACTIVATIONS:
            raise MoEficationError(f"{dense.activation} FFN cannot be MoEfied")
        d_model = dense.w_in.in_features
        ffn = cls(d_model, dense.hidden, n_experts, top_k, dense.activation, **options)
        ffn.w_in, ffn.w_out = dense.w_in, dense.w_out
        ffn.router.to(dense.w_in.weight.device, dense.w_in.weight.dtype)
        return ffn

    def to_dense(self) -> DenseFFN:
        """A DenseFFN sharing this FFN's weights (in the current neuron order)."""
        dense = DenseFFN(self.w_in.in_features, self.hidden, self.activation)
        dense.w_in, dense.w_out = self.w_in, self.w_out
        return dense

    # --------------------------------------------------------------------- forward

    def act(self, a: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](a)

    def expert_mass(self, x: torch.Tensor) -> torch.Tensor:
        """Oracle scores (N, E): positive activation mass of each expert's neurons (brief §2.5 (a))."""
        h = self.act(self.w_in(x)).clamp_min(0)
        return h.view(*h.shape[:-1], self.n_experts, self.expert_size).sum(-1)

    def select(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k expert ids (N, k) and gates (N, k) with forward value 1 and the router's gradient."""
        logits = self.router(x)  # (N, E)
        scores = self.expert_mass(x) if self.selector == "oracle" else logits
        experts = scores.topk(self.top_k, dim=-1).indices  # (N, k)
        p = logits.gather(-1, experts).softmax(-1)
        return experts, 1.0 + p - p.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if self.mode == "dense":
            self.stats = {}
            return self.w_out(self.act_probe(self.act(self.w_in(x))))
        x = x.reshape(-1, shape[-1])  # (N, C)
        e, m = self.n_experts, self.expert_size
        self.stats = {"experts_per_token": float(self.top_k), "activated_hidden": float(self.top_k * m)}
        training = torch.is_grad_enabled()
        path = self.train_impl if training else self.inference_path
        if not training and path != "masked":  # inference: gates are exactly 1, only the top-k ids matter
            scores = self.expert_mass(x) if self.selector == "oracle" else self.router(x)
            experts = scores.topk(self.top_k, dim=-1).indices  # (N, k)
            return sparse_ffn(x, self.w_in.weight.view(e, m, -1), self._out_blocks(), experts, self.act,
                              path).view(shape)
        experts, gates = self.select(x)
        if path == "masked":
            # dense compute, unselected neurons zeroed: identical values and gradients to the sparse path
            h = self.act(self.w_in(x)).view(-1, e, m)  # (N, E, m)
            mask = torch.zeros(x.shape[0], e, dtype=h.dtype, device=h.device).scatter(-1, experts, gates.to(h.dtype))
            h = self.act_probe((h * mask.unsqueeze(-1)).view(-1, e * m))  # (N, D)
            return self.w_out(h).view(shape)
        w_in_blocks = self.w_in.weight.view(e, m, -1)  # (E, m, C): a view, experts are contiguous rows
        w_out_blocks = self.w_out.weight.t().view(e, m, -1)  # (E, m, C) strided view (gradients flow)
        return sparse_ffn(x, w_in_blocks, w_out_blocks, experts, self.act, "grouped", gates=gates).view(shape)

    def _out_blocks(self) -> torch.Tensor:
        """Contiguous (E, m, C) copy of W_outᵀ for inference, refreshed whenever the weight changes."""
        weight = self.w_out.weight
        key = (weight._version, weight.data_ptr())
        if self._out_cache is None or self._out_cache[0] != key:
            self._out_cache = (key, weight.detach().t().contiguous().view(self.n_experts, self.expert_size, -1))
        return self._out_cache[1]

    def activated_hidden(self) -> float:
        return float(self.hidden if self.mode == "dense" else self.top_k * self.expert_size)

    def active_router_params(self) -> int:
        """Router weights a token uses: the d × E centroid router (brief §2.5, logits W_g x) while sparse, else 0.

        Counted by ``Transformer.activated_params`` / ``flops_per_token`` (brief §2.10: sparse FFN cost
        2dD·k/E + dE). The router is a plain linear map built from the cluster centroids, so its cost is
        d·E multiply-adds per token; dense mode never evaluates it. (The diagnostic ``oracle`` selector also
        computes the full W_in x — an upper bound, not a cost model — and is not counted beyond this.)
        """
        return self.router.weight.numel() if self.mode == "sparse" else 0

    def extra_repr(self) -> str:
        return (f"hidden={self.hidden}, n_experts={self.n_experts}, top_k={self.top_k}, mode={self.mode}, "
                f"activation={self.activation}")

    # --------------------------------------------------------------------- conversion (in place)

    def apply_clustering_(self, clustering: Clustering, optimizer: torch.optim.Optimizer | None = None,
                          router_scale: str = "mean_norm") -> None:
        """Make experts contiguous (permute weights + AdamW moments) and build the router from the centroids.

        Router row e = ĉ_e · scale (brief §2.5). The official code takes the norm of one neuron's W_in row as
        the shared scale; ``mean_norm`` (default) uses the mean row norm instead (top-k is scale invariant,
        the scale only sets the softmax temperature of the router gradient).
        """
        if len(clustering.labels) != self.hidden or clustering.n_experts != self.n_experts:
            raise MoEficationError(f"clustering of {len(clustering.labels)} neurons / {clustering.n_experts} experts "
                                   f"does not fit an FFN of {self.hidden} neurons / {self.n_experts} experts")
        perm = torch.as_tensor(clustering.permutation(), device=self.w_in.weight.device)
        permute_parameter_(self.w_in.weight, perm, 0, optimizer)
        permute_parameter_(self.w_out.weight, perm, 1, optimizer)
        self.perm.copy_(self.perm[perm])
        with torch.no_grad():
            norms = self.w_in.weight.norm(dim=1)
            scale = norms.mean() if router_scale == "mean_norm" else norms[0]
            c = torch.as_tensor(clustering.centroids, dtype=self.router.weight.dtype, device=norms.device)
            self.router.weight.copy_(c / c.norm(dim=1, keepdim=True).clamp_min(1e-12) * scale)
        if optimizer is not None:  # the router is new: no stale moments (brief §2.8)
            optimizer.state.pop(self.router.weight, None)

    def restore_order_(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Put the neurons back in their original order (inverse of every permutation applied so far)."""
        inverse = torch.argsort(self.perm)
        permute_parameter_(self.w_in.weight, inverse, 0, optimizer)
        permute_parameter_(self.w_out.weight, inverse, 1, optimizer)
        self.perm.copy_(torch.arange(self.hidden, device=self.perm.device))

    def current_labels(self) -> np.ndarray:
        """Expert id of each neuron in the current order (contiguous blocks)."""
        return np.repeat(np.arange(self.n_experts), self.expert_size)

    def canonical(self, labels: np.ndarray) -> np.ndarray:
        """Labels indexed by original neuron id (for comparing partitions across permutations)."""
        out = np.empty_like(labels)
        out[self.perm.cpu().numpy()] = labels
        return out


@register_ffn("moefied")
def build_moefied_ffn(config: ModelConfig) -> FFN:
    return MoEfiedFFN.from_config(config)


# ------------------------------------------------------------------------------ model-level API


def check_moefiable(model: Transformer) -> None:
    """Raise :class:`MoEficationError` naming the first FFN that cannot be MoEfied."""
    for i, ffn in enumerate(model.ffns):
        if isinstance(ffn, MoEfiedFFN):
            continue
        if not isinstance(ffn, DenseFFN):
            raise MoEficationError(f"blocks.{i}.ffn is a {type(ffn).__name__}, not a dense FFN: only plain "
                                   "relu/gelu MLPs can be MoEfied")
        if ffn.activation not in ACTIVATIONS:
            raise MoEficationError(f"blocks.{i}.ffn is a gated {ffn.activation} FFN: MoEfication needs a plain "
                                   "relu or gelu MLP (train with ffn.activation=relu)")


def as_moefied(model: Transformer, n_experts: int, top_k: int, **options: Any) -> list[MoEfiedFFN]:
    """Swap every DenseFFN for a MoEfiedFFN in dense mode sharing its weights; updates ``model.config.ffn``."""
    check_moefiable(model)
    out = []
    for i, ffn in enumerate(model.ffns):
        if not isinstance(ffn, MoEfiedFFN):
            ffn = MoEfiedFFN.from_dense(ffn, n_experts, top_k, **options)
            model.replace_ffn(i, ffn)
        out.append(ffn)
    model.config.ffn.kind = "moefied"
    model.config.ffn.n_experts, model.config.ffn.top_k = out[0].n_experts, out[0].top_k
    return out


def cluster_layer(ffn: MoEfiedFFN, split: str = "kmeans", previous: np.ndarray | None = None, n_iter: int = 100,
                  backend: str = "auto", seed: int = 0, restart_margin: float = 0.0) -> Clustering:
    """Partition one FFN's neurons (in its current order): balanced k-means or a random equal split."""
    if split == "kmeans":
        return recluster(ffn.w_in.weight, ffn.n_experts, previous, n_iter, backend, seed, restart_margin)
    if split == "random":
        return clustering_from_labels(ffn.w_in.weight, random_partition(ffn.hidden, ffn.n_experts, seed))
    raise ConfigError(f"split must be 'kmeans' or 'random', got {split!r}")


def moefy(model: Transformer, n_experts: int | None = None, top_k: int | None = None,
          optimizer: torch.optim.Optimizer | None = None, split: str = "kmeans",
          previous: Sequence[np.ndarray | None] | None = None, n_iter: int = 100, backend: str = "auto",
          seed: int = 0, router_scale: str = "mean_norm", **options: Any) -> list[Clustering]:
    """Cluster every layer's neurons, make experts contiguous (weights + AdamW moments) and go sparse.

    ``previous`` (per layer, labels in the current neuron order) warm-starts the clustering. Returns the
    clusterings (labels in the neuron order *before* this call).
    """
    ffns = [f for f in model.ffns if isinstance(f, MoEfiedFFN)]
    if n_experts is not None and any(f.n_experts != n_experts for f in ffns):
        # a different expert count: re-wrap the same weight tensors (the neuron order is kept)
        for i, ffn in enumerate(model.ffns):
            if isinstance(ffn, MoEfiedFFN) and ffn.n_experts != n_experts:
                new = MoEfiedFFN.from_dense(ffn.to_dense(), n_experts, min(top_k or ffn.top_k, n_experts),
                                            **options)
                new.perm.copy_(ffn.perm)
                model.replace_ffn(i, new)
        ffns = [f for f in model.ffns if isinstance(f, MoEfiedFFN)]
        model.config.ffn.n_experts = n_experts
    if len(ffns) != len(model.ffns):
        if n_experts is None or top_k is None:
            raise ConfigError("moefy of a dense model needs n_experts and top_k")
        ffns = as_moefied(model, n_experts, top_k, **options)
    clusterings = []
    for i, ffn in enumerate(ffns):
        if top_k is not None:
            ffn.top_k = top_k
        prev = previous[i] if previous is not None else None
        clustering = cluster_layer(ffn, split, prev, n_iter, backend, seed + i)
        ffn.apply_clustering_(clustering, optimizer, router_scale)
        ffn.mode = "sparse"
        clusterings.append(clustering)
    return clusterings


def densify(model: Transformer, optimizer: torch.optim.Optimizer | None = None, restore_order: bool = False,
            to_dense_modules: bool = False) -> None:
    """Back to dense computation; optionally undo the neuron permutations and/or swap back to DenseFFN modules."""
    for i, ffn in enumerate(model.ffns):
        if not isinstance(ffn, MoEfiedFFN):
            continue
        ffn.mode = "dense"
        if restore_order:
            ffn.restore_order_(optimizer)
        if to_dense_modules:
            model.replace_ffn(i, ffn.to_dense())
    if to_dense_modules:
        model.config.ffn.kind = "dense"


def set_mode(model: Transformer, mode: str, top_k: int | None = None, selector: str | None = None) -> None:
    """Set mode (and optionally top_k / selector) of every MoEfied FFN."""
    for ffn in model.ffns:
        if isinstance(ffn, MoEfiedFFN):
            ffn.mode = mode
            if top_k is not None:
                ffn.top_k = top_k
            if selector is not None:
                ffn.selector = selector


def fit_routers(model: Transformer, tokens: torch.Tensor, steps: int = 100, lr: float = 1e-2,
                batch_tokens: int = 512, seed: int = 0) -> list[float]:
    """Train every MoEfied FFN's router to predict its experts' activation mass (MoEfication's router objective).

    Targets are the oracle scores g_e(x) / max_e g_e(x) (brief §2.5 (b)), loss BCE-with-logits, Adam; the
    inputs are the FFN inputs of ``tokens`` (B, T) under the current model. Only router weights change.
    Returns the final loss per layer.
    """
    ffns = [f for f in model.ffns if isinstance(f, MoEfiedFFN)]
    if not ffns:
        raise ConfigError("fit_routers needs a MoEfied model: call moefy first")
    inputs: dict[int, torch.Tensor] = {}
    handles = [f.register_forward_pre_hook(lambda _m, args, i=i: inputs.__setitem__(i, args[0].detach()))
               for i, f in enumerate(ffns)]
    modes = [f.mode for f in ffns]
    set_mode(model, "dense")
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for handle in handles:
            handle.remove()
        for f, mode in zip(ffns, modes):
            f.mode = mode
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for i, ffn in enumerate(ffns):
        x = inputs[i].reshape(-1, inputs[i].shape[-1])  # (N, C)
        with torch.no_grad():
            mass = ffn.expert_mass(x)
            target = mass / mass.max(-1, keepdim=True).values.clamp_min(1e-12)
        weight = ffn.router.weight
        was = weight.requires_grad
        weight.requires_grad_(True)
        optimizer = torch.optim.Adam([weight], lr=lr)
        loss = torch.zeros(())
        for _ in range(steps):
            idx = torch.randint(0, x.shape[0], (min(batch_tokens, x.shape[0]),), generator=generator)
            loss = F.binary_cross_entropy_with_logits(F.linear(x[idx], weight), target[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        weight.grad = None
        weight.requires_grad_(was)
        losses.append(float(loss.detach()))
    return losses
