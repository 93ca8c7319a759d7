"""HMoE's positive and negative controls on the planted two-difficulty language (:mod:`.synthetic`).

Positive control: hard positions (a random function of a token pair) need FFN capacity, easy positions (a
+1 bigram) need none. Heterogeneous experts with P-Penalty must route hard positions to wider experts than
easy ones, and reach a hard-position loss no worse than the homogeneous MoE at equal training FLOPs.
Negative control: both classes equally hard (two pair tables of one size) -> no width gap between them.

Every run logs, per layer, experts per token and activated width over training (``trace``), which is how the
Top-P collapse was diagnosed (see :mod:`llm_dynamics_kit.moe.losses`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from llm_dynamics_kit.hmoe.analysis import routing_report
from llm_dynamics_kit.hmoe.presets import arm_config
from llm_dynamics_kit.hmoe.synthetic import CLASS_NAMES, PlantedLanguage, class_loss
from llm_dynamics_kit.model import ModelConfig, Transformer
from llm_dynamics_kit.train import Callback, TrainConfig, Trainer
from shared.seeding import seed_everything


@dataclass
class ControlConfig:
    """Model and training sizes of one control run (defaults: the test-suite size)."""

    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    seq_len: int = 32
    total_hidden: int = 256  # Σh per layer: homogeneous 8 × 32
    steps: int = 120
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 10
    n_train_tokens: int = 60_000
    n_valid_tokens: int = 8_000
    eval_batches: int = 8
    trace_every: int = 10
    language: PlantedLanguage = field(default_factory=PlantedLanguage)


class RoutingTrace(Callback):
    """Per-layer experts per token and activated width of the training batch every ``every`` steps."""

    def __init__(self, every: int = 10):
        self.every = every
        self.steps: list[int] = []
        self.experts_per_token: list[list[float]] = []  # per logged step, per MoE layer
        self.activated_hidden: list[list[float]] = []

    def on_step(self, trainer: Trainer, metrics: dict) -> None:
        stats = [f.stats for f in trainer.raw_model.ffns if f.stats]
        if stats:
            self.steps.append(trainer.step)
            self.experts_per_token.append([round(float(s["experts_per_token"]), 4) for s in stats])
            self.activated_hidden.append([round(float(s["activated_hidden"]), 2) for s in stats])

    def as_dict(self) -> dict:
        return {"steps": self.steps, "experts_per_token": self.experts_per_token,
                "activated_hidden": self.activated_hidden}


def train_planted(arm: str, seed: int, cfg: ControlConfig, uniform: bool = False,
                  ffn_overrides: dict | None = None) -> dict:
    """Train ``arm`` (a :mod:`.presets` arm) on the planted language; per-class loss and routing, and the trace.

    Every seed draws its own language (lookup tables) and streams, so nothing fixed across seeds — such as one
    table happening to be easier than the other in the uniform control — passes for an effect; arms of one
    seed share them (paired comparisons).
    """
    lang = dataclasses.replace(cfg.language, uniform=uniform, seed=cfg.language.seed + seed)
    train, _ = lang.generate(cfg.n_train_tokens, seed=1000 + seed)
    valid, labels = lang.generate(cfg.n_valid_tokens, seed=2000 + seed)
    base = ModelConfig(vocab_size=lang.vocab_size, d_model=cfg.d_model, n_layers=cfg.n_layers,
                       n_heads=cfg.n_heads, max_seq_len=cfg.seq_len)
    config = arm_config(arm, base, cfg.total_hidden)
    if ffn_overrides:
        config = dataclasses.replace(config, ffn=dataclasses.replace(config.ffn, **ffn_overrides))
    seed_everything(seed)
    model = Transformer(config)
    train_cfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lr=cfg.lr,
                            warmup_steps=cfg.warmup, eval_every=0, log_every=cfg.steps, seed=seed,
                            cpu_threads=1, device="cpu")
    trace = RoutingTrace(cfg.trace_every)
    result = Trainer(model, train, None, train_cfg, callbacks=[trace]).fit()
    row = {"arm": arm, "seed": seed, "uniform": uniform, "train_flops": result.flops_seen,
           **{f"loss_{k}": v for k, v in class_loss(model, valid, labels, cfg.seq_len,
                                                       max_batches=cfg.eval_batches).items()}}
    if config.ffn.kind == "moe":
        report = routing_report(model, valid, cfg.seq_len, 16, cfg.eval_batches, labels=labels)
        per_class = report.by_label(CLASS_NAMES)
        for name, stats in per_class.items():
            row[f"width_{name}"] = float(np.mean(stats["gate_weighted_size"]))
            row[f"activated_{name}"] = float(np.mean(stats["activated_hidden"]))
            row[f"experts_{name}"] = float(np.mean(stats["experts_per_token"]))
        row["width_gap"] = row["width_hard"] - row["width_easy"]  # > 0: hard positions use wider experts
        row["per_layer"] = per_class
        row["trace"] = trace.as_dict()
    return row


POSITIVE_ARMS = ("hmoe_topk_pp", "moe_topk_lb")
NEGATIVE_ARMS = ("hmoe_topk_pp",)


def run_controls(cfg: ControlConfig, seeds: list[int], which: tuple[str, ...] = ("positive", "negative")) -> list[dict]:
    """Rows of the positive (planted difficulty) and negative (uniform difficulty) control runs."""
    rows = []
    if "positive" in which:
        rows += [{"control": "positive", **train_planted(arm, s, cfg)} for arm in POSITIVE_ARMS for s in seeds]
    if "negative" in which:
        rows += [{"control": "negative", **train_planted(arm, s, cfg, uniform=True)} for arm in NEGATIVE_ARMS
                 for s in seeds]
    return rows
