"""Activation statistics over training (SSD brief §2.2–2.3): activation ratio, dead neurons, pattern stability.

:class:`ActivationMonitor` is a trainer callback: every ``every`` steps it runs the model on a fixed held-out
batch with the ``act_probe`` hooks (``Transformer.capture(ffn=True)``), and, when asked, re-clusters every
layer's neurons (warm-started from the previous check) to measure how stable the expert partition is
(adjusted Rand index between consecutive checks) and how much activation mass a centroid router's top-k
experts keep (recall@k). Values go into the trainer's metrics (``act/...`` keys) and :attr:`history`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_dynamics_kit.data import eval_batches
from llm_dynamics_kit.model import DenseFFN, Transformer
from llm_dynamics_kit.ssd.clustering import Clustering, partition_similarity, recluster
from llm_dynamics_kit.ssd.moefied import ACTIVATIONS, MoEfiedFFN
from llm_dynamics_kit.train import Callback, Trainer


def ffn_inputs_and_activations(model: Transformer, x: torch.Tensor,
                               dense: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer: the FFN input (N, C) and the hidden activations seen by ``act_probe`` (N, D).

    ``dense=True`` runs MoEfied FFNs densely while measuring, so the ratio reflects the weights' own activation
    sparsity rather than the neurons a router switched off (sparse phases would otherwise show ≈ k/E · r).
    """
    inputs: list[torch.Tensor | None] = [None] * len(model.blocks)
    handles = []
    for i, block in enumerate(model.blocks):
        def hook(_m, args, i=i):
            inputs[i] = args[0].detach().reshape(-1, args[0].shape[-1])
        handles.append(block.ffn.register_forward_pre_hook(hook))
    saved = {}
    for ffn in model.ffns:  # sparse inference kernels bypass act_probe: use the masked path while measuring
        if isinstance(ffn, MoEfiedFFN):
            saved[ffn] = (ffn.inference_path, ffn.mode)
            ffn.inference_path = "masked"
            if dense:
                ffn.mode = "dense"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), model.capture(attention=False, ffn=True) as record:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for ffn, (path, mode) in saved.items():
            ffn.inference_path, ffn.mode = path, mode
        model.train(was_training)
    acts = [h.reshape(-1, h.shape[-1]) for h in record.ffn]
    return inputs, acts


def activation_stats(acts: torch.Tensor) -> dict[str, float]:
    """Activation ratio r = mean 1[h > 0], share of dead neurons (never > 0) and mean active neurons per token."""
    active = acts > 0  # (N, D)
    return {"ratio": float(active.float().mean()), "dead": float((~active.any(0)).float().mean()),
            "active_per_token": float(active.sum(1).float().mean())}


def routing_recall(x: torch.Tensor, w_in: torch.Tensor, clustering: Clustering, top_k: int,
                   activation: str = "relu") -> float:
    """recall@k (brief §2.3): share of positive activation mass kept by a centroid router's top-k experts."""
    h = ACTIVATIONS[activation](x @ w_in.T).clamp_min(0).double()  # (N, D)
    labels = torch.as_tensor(clustering.labels)
    mass = torch.zeros(h.shape[0], clustering.n_experts, dtype=h.dtype).index_add_(1, labels, h)  # (N, E)
    centroids = torch.as_tensor(clustering.centroids)
    scores = x.double() @ (centroids / centroids.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
    top = scores.topk(top_k, dim=-1).indices
    kept = mass.gather(1, top).sum(1)
    total = mass.sum(1)
    valid = total > 0
    return float((kept[valid] / total[valid]).mean()) if valid.any() else 1.0


def _w_in(ffn) -> torch.Tensor:
    return ffn.w_in.weight.detach()


class ActivationMonitor(Callback):
    """Trainer callback logging per-layer activation ratio, dead neurons and pattern stability (see module doc)."""

    def __init__(self, every: int = 100, batches: int = 1, stability: bool = True, n_experts: int = 16,
                 top_k_fraction: float = 0.25, similarity: str = "ari", n_iter: int = 30, backend: str = "auto",
                 seed: int = 0, dense: bool = True, restart_margin: float = 0.0):
        self.every, self.batches, self.stability, self.dense = every, batches, stability, dense
        self.restart_margin = restart_margin
        self.n_experts, self.top_k_fraction, self.similarity = n_experts, top_k_fraction, similarity
        self.n_iter, self.backend, self.seed = n_iter, backend, seed
        self.history: list[dict[str, Any]] = []
        self._previous: list[np.ndarray | None] = []  # canonical labels (original neuron ids) per layer
        self._batch: torch.Tensor | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        tokens = trainer.valid_tokens if trainer.valid_tokens is not None else trainer.train_tokens
        xs = [torch.from_numpy(x) for x, _ in eval_batches(tokens, trainer.config.seq_len, trainer.config.batch_size,
                                                            self.batches)]
        self._batch = torch.cat(xs).to(trainer.device)
        if trainer.step == 0:
            self.on_step(trainer, {"step": 0})

    def measure(self, model: Transformer, x: torch.Tensor, step: int) -> dict[str, Any]:
        """One monitoring record for ``model`` on token ids ``x`` (B, T)."""
        inputs, acts = ffn_inputs_and_activations(model, x, self.dense)
        record: dict[str, Any] = {"step": step, "ratio": [], "dead": [], "active_per_token": [], "similarity": [],
                                  "recall": []}
        if len(self._previous) != len(acts):
            self._previous = [None] * len(acts)
        for layer, (ffn, h) in enumerate(zip(model.ffns, acts)):
            stats = activation_stats(h)
            record["ratio"].append(stats["ratio"])
            record["dead"].append(stats["dead"])
            record["active_per_token"].append(stats["active_per_token"])
            if not self.stability or not isinstance(ffn, (DenseFFN, MoEfiedFFN)) or ffn.activation not in ACTIVATIONS:
                continue
            perm = ffn.perm.cpu().numpy() if isinstance(ffn, MoEfiedFFN) else np.arange(ffn.hidden)
            prev = self._previous[layer]
            clustering = recluster(_w_in(ffn), self.n_experts, prev[perm] if prev is not None else None,
                                   self.n_iter, self.backend, self.seed + layer, self.restart_margin)
            canonical = np.empty_like(clustering.labels)
            canonical[perm] = clustering.labels
            if prev is not None:
                record["similarity"].append(partition_similarity(prev, canonical, self.similarity))
            self._previous[layer] = canonical
            k = max(1, round(self.top_k_fraction * self.n_experts))
            record["recall"].append(routing_recall(inputs[layer].float().cpu(), _w_in(ffn).float().cpu(),
                                                   clustering, k, ffn.activation))
        return record

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self._batch is None:
            return
        record = self.measure(trainer.raw_model, self._batch, trainer.step)
        self.history.append(record)
        for key in ("ratio", "dead", "active_per_token", "similarity", "recall"):
            if record[key]:
                metrics[f"act/{key}"] = float(np.mean(record[key]))
                metrics[f"act/{key}_per_layer"] = [round(v, 5) for v in record[key]]

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "previous": [p.tolist() if p is not None else None for p in self._previous]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self._previous = [np.asarray(p) if p is not None else None for p in state.get("previous", [])]


def plot_monitor(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Activation ratio and partition similarity per layer vs step (one figure, two panels)."""
    from shared.plots import line_plot

    path = Path(path)
    series = {}
    steps = [r["step"] for r in history]
    n_layers = len(history[0]["ratio"]) if history else 0
    for layer in range(n_layers):
        series[f"activation ratio L{layer}"] = (steps, [r["ratio"][layer] for r in history], None)
    sim = [r for r in history if r["similarity"]]
    for layer in range(len(sim[0]["similarity"]) if sim else 0):
        series[f"similarity L{layer}"] = ([r["step"] for r in sim], [r["similarity"][layer] for r in sim], None)
    return line_plot(series, path, xlabel="step", ylabel="ratio / similarity", title=title or "activation monitor")
