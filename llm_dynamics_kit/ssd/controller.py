"""The SSD switching state machine (brief §2.7) as a trainer callback.

DENSE: every ``monitor_every`` steps re-cluster each layer's neurons (warm-started from the previous check) and
compare with the previous partition (layer-mean ARI). When the similarity has stayed ≥ ``threshold`` for
``patience`` checks (and the centroid router keeps ≥ ``min_recall`` of the activation mass, ρ≈0.9), and
there is room before the final dense phase, MoEfy: permute neurons + AdamW moments, build routers from the
centroids, go SPARSE. SPARSE: after ``sparse_steps`` steps (or when the final dense phase starts) go back to
DENSE in the permuted order. The last ``final_dense_steps`` are always dense, so the delivered model is a
normal dense model. ``static=True`` is the static-sparse ablation (switch once, never back);
``split="random"`` the random-split ablation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llm_dynamics_kit.ssd.clustering import partition_similarity
from llm_dynamics_kit.ssd.moefied import MoEfiedFFN, as_moefied, cluster_layer
from llm_dynamics_kit.ssd.monitor import ffn_inputs_and_activations, routing_recall
from llm_dynamics_kit.train import Callback, Trainer
from shared.errors import ConfigError


@dataclass
class SSDConfig:
    """Switching schedule and MoEfication settings ([RECON] defaults of brief §2.3/§2.7, all parameters)."""

    n_experts: int = 16
    top_k: int = 8  # experts per token during sparse phases (k/E = 0.5, brief §8.2)
    monitor_every: int = 100  # Δ_mon
    warmup_dense_steps: int = 200  # never switch before this step
    threshold: float = 0.8  # τ on the layer-mean partition similarity
    patience: int = 1  # consecutive checks ≥ τ
    # ρ: the switch also needs the centroid router's recall@k ≥ ρ — brief §2.3 switch rule [RECON default]
    # "as a safety, recall@k ≥ ρ (ρ≈0.9)"; 0 disables the check (and skips computing recall)
    min_recall: float = 0.9
    sparse_steps: int = 300  # T_sparse per sparse phase
    final_dense_steps: int = 200  # T_final_dense
    min_sparse_steps: int = 1  # do not start a sparse phase shorter than this
    max_sparse_phases: int = 0  # 0 = unlimited
    split: str = "kmeans"  # "kmeans" | "random" (ablation)
    static: bool = False  # static-sparse ablation: switch once, never back
    similarity: str = "ari"  # "ari" | "matched"
    kmeans_iters: int = 30
    backend: str = "auto"
    restart_margin: float = 0.0  # fresh clustering must beat warm start by this fraction (0 = official rule)
    router_trainable: bool = True
    router_scale: str = "mean_norm"  # "mean_norm" | "first_neuron" (official code)
    train_impl: str = "masked"  # "masked" | "grouped" sparse training kernel
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= self.n_experts:
            raise ConfigError(f"ssd.top_k must be in 1..n_experts={self.n_experts}, got {self.top_k}")
        if self.monitor_every < 1 or self.sparse_steps < 1:
            raise ConfigError("ssd.monitor_every and ssd.sparse_steps must be ≥ 1")
        if self.split not in ("kmeans", "random"):
            raise ConfigError(f"ssd.split must be 'kmeans' or 'random', got {self.split!r}")


class SSDController(Callback):
    """Switchable sparse-dense training: the §2.7 state machine on a model with MoEfied (or plain ReLU) FFNs."""

    every = 1

    def __init__(self, config: SSDConfig | None = None, total_steps: int | None = None):
        self.config = config or SSDConfig()
        self.total_steps = total_steps
        self.state = "dense"
        self.sparse_left = 0
        self.streak = 0
        self.phases: list[dict[str, Any]] = []  # {"phase": "sparse", "start": s, "end": e}
        self.checks: list[dict[str, Any]] = []  # {"step", "similarity", "recall"}
        self._previous: list[np.ndarray | None] = []  # canonical labels per layer
        self._switched_once = False
        self._batch = None

    # ------------------------------------------------------------------ helpers

    def _ffns(self, trainer: Trainer) -> list[MoEfiedFFN]:
        return [f for f in trainer.raw_model.ffns if isinstance(f, MoEfiedFFN)]

    def _total(self, trainer: Trainer) -> int:
        return self.total_steps or trainer.config.steps

    def on_train_start(self, trainer: Trainer) -> None:
        c = self.config
        model = trainer.raw_model
        as_moefied(model, c.n_experts, c.top_k, router_trainable=c.router_trainable, train_impl=c.train_impl)
        for ffn in self._ffns(trainer):
            if ffn.n_experts != c.n_experts:
                raise ConfigError(f"the model's FFNs have {ffn.n_experts} experts but ssd.n_experts={c.n_experts}; "
                                  "set model.ffn.n_experts to the same value")
            ffn.top_k, ffn.mode = c.top_k, self.state  # (after a resume the saved state is restored)
            ffn.train_impl = c.train_impl
            ffn.router.weight.requires_grad_(c.router_trainable)
        trainer.refresh_optimizer()  # routers are new parameters (or no longer trained)
        import torch

        from llm_dynamics_kit.data import eval_batches

        tokens = trainer.valid_tokens if trainer.valid_tokens is not None else trainer.train_tokens
        x, _ = next(iter(eval_batches(tokens, trainer.config.seq_len, trainer.config.batch_size, 1)))
        self._batch = torch.from_numpy(x).to(trainer.device)

    def check(self, trainer: Trainer) -> dict[str, float]:
        """Re-cluster every layer; layer-mean similarity to the previous check and router recall@k."""
        c = self.config
        ffns = self._ffns(trainer)
        if len(self._previous) != len(ffns):
            self._previous = [None] * len(ffns)
        inputs = ffn_inputs_and_activations(trainer.raw_model, self._batch)[0] if c.min_recall > 0 else None
        sims, recalls, self._current = [], [], []
        for i, ffn in enumerate(ffns):
            perm = ffn.perm.cpu().numpy()
            prev = self._previous[i]
            clustering = cluster_layer(ffn, "kmeans", prev[perm] if prev is not None else None, c.kmeans_iters,
                                       c.backend, c.seed + i + trainer.step, c.restart_margin)
            canonical = ffn.canonical(clustering.labels)
            if prev is not None:
                sims.append(partition_similarity(prev, canonical, c.similarity))
            if inputs is not None:
                recalls.append(routing_recall(inputs[i].float().cpu(), ffn.w_in.weight.detach().float().cpu(),
                                              clustering, c.top_k, ffn.activation))
            self._previous[i] = canonical
            self._current.append(clustering)
        out = {"step": trainer.step, "similarity": float(np.mean(sims)) if sims else float("nan")}
        if recalls:
            out["recall"] = float(np.mean(recalls))
        self.checks.append(out)
        return out

    def to_sparse(self, trainer: Trainer) -> None:
        """MoEfy every layer (clusters from the last check, or a random split) and start a sparse phase."""
        c = self.config
        optimizer = trainer.optimizer
        for i, ffn in enumerate(self._ffns(trainer)):
            clustering = self._current[i] if c.split == "kmeans" else cluster_layer(
                ffn, "random", seed=c.seed + 1000 * len(self.phases) + i)
            ffn.apply_clustering_(clustering, optimizer, c.router_scale)
            ffn.mode = "sparse"
        self.state = "sparse"
        self.sparse_left = c.sparse_steps
        self._switched_once = True
        self.phases.append({"phase": "sparse", "start": trainer.step, "end": None})

    def to_dense(self, trainer: Trainer) -> None:
        """Back to dense training, keeping the permuted neuron order (``merge_ckpt``)."""
        for ffn in self._ffns(trainer):
            ffn.mode = "dense"
        self.state = "dense"
        self.streak = 0
        if self.phases and self.phases[-1]["end"] is None:
            self.phases[-1]["end"] = trainer.step

    # ------------------------------------------------------------------ the state machine

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        c = self.config
        step, total = trainer.step, self._total(trainer)
        final_dense_from = total - c.final_dense_steps
        if self.state == "sparse":
            self.sparse_left -= 1
            if not c.static and (self.sparse_left <= 0 or step >= final_dense_from):
                self.to_dense(trainer)
        elif step % c.monitor_every == 0 and not (c.static and self._switched_once):
            result = self.check(trainer)
            metrics["ssd/similarity"] = result["similarity"]
            if "recall" in result:
                metrics["ssd/recall"] = result["recall"]
            stable = np.isfinite(result["similarity"]) and result["similarity"] >= c.threshold
            self.streak = self.streak + 1 if stable else 0
            room = (final_dense_from - step) >= c.min_sparse_steps or c.static
            phases_left = not c.max_sparse_phases or len(self.phases) < c.max_sparse_phases
            recall_ok = result.get("recall", 1.0) >= c.min_recall
            if (step >= c.warmup_dense_steps and self.streak >= c.patience and room and phases_left and recall_ok
                    and step < total):
                self.to_sparse(trainer)
        metrics["ssd/sparse"] = 1.0 if self.state == "sparse" else 0.0

    def on_train_end(self, trainer: Trainer) -> None:
        if self.phases and self.phases[-1]["end"] is None:
            self.phases[-1]["end"] = trainer.step

    def sparse_steps_done(self, upto: int) -> int:
        """Training steps run in sparse mode up to step ``upto``."""
        return sum(min(p["end"] if p["end"] is not None else upto, upto) - p["start"] for p in self.phases
                   if p["start"] < upto)

    def state_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "state": self.state, "sparse_left": self.sparse_left,
                "streak": self.streak, "phases": self.phases, "checks": self.checks,
                "switched_once": self._switched_once,
                "previous": [p.tolist() if p is not None else None for p in self._previous]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state, self.sparse_left, self.streak = state["state"], state["sparse_left"], state["streak"]
        self.phases, self.checks = list(state["phases"]), list(state["checks"])
        self._switched_once = state.get("switched_once", bool(self.phases))
        self._previous = [np.asarray(p) if p is not None else None for p in state.get("previous", [])]
