"""The one training loop of the kit (``accelerate``; CPU here, GPU / multi-GPU unchanged).

A plain loop with every knob in :class:`TrainConfig`: AdamW with linear warm-up then a constant, cosine or
linear schedule; gradient accumulation and clipping; the model's auxiliary losses (summed over layers by
the model) added to the LM loss and logged separately; periodic evaluation; one JSON line of metrics per
log step; checkpoints every N steps with exact resume (weights, optimizer, scheduler, RNG states; the data
order is a pure function of the step, see :func:`llm_dynamics_kit.data.random_batch`; the training data may
also be a dataset of token sequences or any iterable of token batches, :func:`llm_dynamics_kit.data.batch_source`);
callbacks every N steps that see the step, tokens seen and cumulative FLOPs; a non-finite loss stops training with
:class:`~shared.errors.TrainingDivergedError` before the optimizer touches the weights, leaving every saved
checkpoint intact.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_dynamics_kit.data import DataConfig, batch_source, check_context, eval_batches
from llm_dynamics_kit.model import ModelConfig, Transformer
from shared.errors import ConfigError, DataError, TrainingDivergedError
from shared.progress import progress
from shared.results import atomic_write_text

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Optimisation, evaluation and checkpoint settings."""

    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 100
    schedule: str = "constant"  # constant after warm-up (HMoE App. B) | cosine | linear
    min_lr_ratio: float = 0.1  # cosine/linear: final lr = min_lr_ratio · lr
    weight_decay: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping
    eval_every: int = 100
    eval_batches: int = 8
    log_every: int = 10
    checkpoint_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2  # newest checkpoints kept on disk (0 = all)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"
    # CPU threads for torch (0 = torch's default). On a shared, loaded CPU one thread can be >10x faster than
    # several, because OpenMP workers spin-wait for cores other processes hold.
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 1 or self.grad_accum < 1:
            raise ValueError("steps, batch_size, seq_len and grad_accum must be positive")
        if self.schedule not in ("constant", "cosine", "linear"):
            raise ValueError(f"schedule must be constant, cosine or linear, got {self.schedule!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class RunConfig:
    """Everything one ``paperkits llm train`` run needs (saved as ``config.yaml`` beside the run)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class Callback:
    """Called every ``every`` steps after the optimizer step; override :meth:`on_step`.

    ``trainer.step``, ``trainer.tokens_seen`` and ``trainer.flops_seen`` say where training is; a callback
    may change the model (e.g. swap FFNs, then call ``trainer.refresh_optimizer()``), add keys to
    ``metrics`` (they are logged), or set ``trainer.should_stop = True``.
    """

    every: int = 1

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first step (also after a resume)."""

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """Every ``every`` steps."""

    def on_eval(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """After each evaluation, with the evaluation metrics."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last step."""

    def state_dict(self) -> dict[str, Any]:
        """State saved in checkpoints (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class FunctionCallback(Callback):
    """Wrap ``fn(trainer, metrics)`` as a callback run every ``every`` steps."""

    def __init__(self, fn: Callable[[Trainer, dict[str, Any]], None], every: int = 1):
        self.fn, self.every = fn, every

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.fn(trainer, metrics)


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the peak lr at a step: linear warm-up from lr/warmup, then the schedule."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress_ = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
        if config.schedule == "cosine":
            shape = 0.5 * (1 + math.cos(math.pi * progress_))
        else:
            shape = 1.0 - progress_
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * shape

    return factor


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (norm gains are not decayed)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps)


def permute_parameter_(param: torch.nn.Parameter, perm: torch.Tensor, dim: int,
                       optimizer: torch.optim.Optimizer | None = None) -> None:
    """Permute ``param`` along ``dim`` in place, and its AdamW moments the same way (SSD neuron reordering)."""
    with torch.no_grad():
        param.copy_(param.index_select(dim, perm.to(param.device)))
        if optimizer is not None:
            for value in optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value.copy_(value.index_select(dim, perm.to(value.device)))


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    step: int
    tokens_seen: int
    flops_seen: float
    final_train_loss: float
    final_val_loss: float | None
    history: list[dict[str, Any]]
    out_dir: Path | None


class Trainer:
    """Trains a :class:`Transformer` on token arrays; see the module docstring."""

    def __init__(self, model: Transformer, train_tokens: Any, valid_tokens: np.ndarray | None,
                 config: TrainConfig, out_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
                 run_config: RunConfig | None = None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.config = config
        if config.cpu_threads > 0:
            torch.set_num_threads(config.cpu_threads)
        cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
        # experts a micro-batch routes no token to get no gradient: DDP must be told (dense FFNs use every weight)
        ddp = DistributedDataParallelKwargs(find_unused_parameters=model.config.ffn.kind != "dense")
        self.accelerator = Accelerator(cpu=cpu, mixed_precision=config.mixed_precision, kwargs_handlers=[ddp])
        # a 1-D token stream (random windows), a dataset of token sequences or an iterable of token batches. Under
        # `accelerate launch` with P processes, batch_size is per process: every process draws the same global
        # batch (batch_size · P rows, a function of the step alone) and trains its own slice of it, so the data
        # and the averaged gradients equal a 1-process run with batch_size · P (see _shard).
        self.batches = batch_source(train_tokens, config.seq_len, config.batch_size * self.accelerator.num_processes,
                                    config.seed, config.grad_accum)
        if valid_tokens is not None:
            check_context(valid_tokens, config.seq_len, "valid")
        if config.seq_len > model.config.max_seq_len:
            raise ConfigError(f"train.seq_len={config.seq_len} exceeds model.max_seq_len={model.config.max_seq_len}")
        self.train_tokens, self.valid_tokens = train_tokens, valid_tokens
        self.model = model
        self.optimizer = make_optimizer(model, config)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        # stepped by us once per optimisation step (accelerate's wrapper would step it once per process)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config))
        self.callbacks = list(callbacks)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_config = run_config
        self.step = 0
        self.tokens_seen = 0
        self.flops_seen = 0.0
        self.should_stop = False
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers

    @property
    def raw_model(self) -> Transformer:
        """The model without accelerate/DDP wrappers."""
        return self.accelerator.unwrap_model(self.model)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def refresh_optimizer(self) -> None:
        """Add parameters created since the optimizer was built (e.g. new routers) and drop removed ones."""
        current = {id(p): p for p in self.raw_model.parameters() if p.requires_grad}
        known = set()
        for group in self.optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) in current]
            known |= {id(p) for p in group["params"]}
        for state_key in [k for k in self.optimizer.state if id(k) not in current]:
            del self.optimizer.state[state_key]
        new = [p for pid, p in current.items() if pid not in known]
        for p in new:
            target = self.optimizer.param_groups[0 if p.dim() >= 2 else 1]
            target["params"].append(p)

    def _shard(self, batch: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """This process's rows of a global batch (all of it in a 1-process run)."""
        n_proc, rank = self.accelerator.num_processes, self.accelerator.process_index
        if n_proc == 1:
            return batch
        x, y = batch
        if x.shape[0] % n_proc:
            raise DataError(f"a global training batch of {x.shape[0]} rows does not split over {n_proc} processes")
        rows = x.shape[0] // n_proc
        return x[rank * rows:(rank + 1) * rows], y[rank * rows:(rank + 1) * rows]

    def _batch(self, tokens: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = tokens
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self, tokens: np.ndarray | None = None, max_batches: int | None = None) -> dict[str, float]:
        """Mean LM cross-entropy (and perplexity) over fixed windows of the validation tokens."""
        tokens = self.valid_tokens if tokens is None else tokens
        if tokens is None:
            raise DataError("no validation tokens were given to the trainer")
        model = self.raw_model
        was_training = model.training
        model.eval()
        total, count = 0.0, 0
        for batch in eval_batches(tokens, self.config.seq_len, self.config.batch_size,
                                  max_batches or self.config.eval_batches):
            x, y = self._batch(batch)
            with self.accelerator.autocast():
                out = model(x, y)
            total += float(out.lm_loss) * y.numel()
            count += y.numel()
        model.train(was_training)
        val = total / max(count, 1)
        return {"val_loss": val, "val_ppl": math.exp(min(val, 50.0))}

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_path(self, step: int) -> Path:
        assert self.out_dir is not None
        return self.out_dir / CHECKPOINT_DIR / f"step_{step:07d}"

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint under ``out_dir`` (named by the ``latest`` file), or None."""
        if self.out_dir is None:
            return None
        pointer = self.out_dir / CHECKPOINT_DIR / "latest"
        if not pointer.is_file():
            return None
        path = self.out_dir / CHECKPOINT_DIR / pointer.read_text().strip()
        return path if (path / "trainer_state.pt").is_file() else None

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint to a temp folder, then rename it and update ``latest`` (never a partial one)."""
        if self.out_dir is None:
            return None
        if not self.accelerator.is_main_process:
            self.accelerator.wait_for_everyone()  # until the main process has written it
            return None
        final = self.checkpoint_path(self.step)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.raw_model.save_pretrained(tmp)
        torch.save({
            "step": self.step, "tokens_seen": self.tokens_seen, "flops_seen": self.flops_seen,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(), "callbacks": [cb.state_dict() for cb in self.callbacks],
            "train_config": self.config.__dict__,
        }, tmp / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_text(final.parent / "latest", final.name + "\n")
        self._prune_checkpoints()
        self.accelerator.wait_for_everyone()
        return final

    def _prune_checkpoints(self) -> None:
        if self.config.keep_checkpoints <= 0:
            return
        folder = self.out_dir / CHECKPOINT_DIR
        done = sorted(p for p in folder.glob("step_*") if not p.name.endswith(".tmp"))
        for old in done[:-self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore weights, optimizer, scheduler, counters, RNG and callback states from a checkpoint."""
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "trainer_state.pt").is_file():
            raise DataError(f"{path} is not a complete checkpoint (no trainer_state.pt)")
        state = {k.removeprefix("lm."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self.raw_model.load_state_dict(state)
        # the file holds optimizer tensors and RNG states written by this trainer (trusted, our own format)
        saved = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.step, self.tokens_seen, self.flops_seen = saved["step"], saved["tokens_seen"], saved["flops_seen"]
        _set_rng_state(saved["rng"])
        for cb, cb_state in zip(self.callbacks, saved.get("callbacks", [])):
            cb.load_state_dict(cb_state)

    # ------------------------------------------------------------------ metrics

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.out_dir is not None and self.accelerator.is_main_process:
            with (self.out_dir / METRICS_FILE).open("a") as handle:
                handle.write(json.dumps(record, default=float) + "\n")

    def _truncate_metrics(self) -> None:
        """On resume, drop logged lines past the checkpoint so the file matches an uninterrupted run."""
        path = self.out_dir / METRICS_FILE if self.out_dir else None
        if path is None or not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= self.step:
                kept.append(line)
        atomic_write_text(path, "".join(line + "\n" for line in kept))
        self.history = [json.loads(line) for line in kept]

    # ------------------------------------------------------------------ the loop

    def train_step(self) -> dict[str, Any]:
        """One optimisation step (``grad_accum`` micro-batches); raises on a non-finite loss."""
        cfg = self.config
        model = self.model
        model.train()
        sums: dict[str, float] = {}
        batch_tokens = 0
        for micro in range(cfg.grad_accum):
            x, y = self._batch(self._shard(self.batches(self.step, micro, 0)))
            if x.shape[1] > self.raw_model.config.max_seq_len:
                raise DataError(f"a training batch has {x.shape[1]} positions, more than model.max_seq_len="
                                f"{self.raw_model.config.max_seq_len}")
            batch_tokens += y.numel()
            with self.accelerator.autocast():
                out = model(x, y)
            loss = out.loss
            if not torch.isfinite(loss):
                last = self.latest_checkpoint()
                raise TrainingDivergedError(
                    f"non-finite loss ({float(loss.detach())}) at step {self.step + 1}; the weights were not updated and "
                    f"saved checkpoints are untouched (latest: {last or 'none'}). Lower train.lr, raise "
                    "train.warmup_steps or enable train.grad_clip, then resume.")
            self.accelerator.backward(loss / cfg.grad_accum)
            parts = {"loss": out.loss, "lm_loss": out.lm_loss, "aux_loss": out.aux_loss}
            parts.update({f"aux/{k}": v for k, v in out.aux_losses.items()})
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / cfg.grad_accum
        if self.accelerator.num_processes > 1:  # log the global batch's mean (each process saw one slice)
            mean = self.accelerator.reduce(torch.tensor(list(sums.values()), device=self.device), "mean")
            sums = dict(zip(sums, mean.tolist()))
        grad_norm = None
        if cfg.grad_clip > 0:
            grad_norm = float(self.accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            if not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingDivergedError(
                    f"non-finite gradient norm at step {self.step + 1}; weights not updated, checkpoints untouched "
                    f"(latest: {self.latest_checkpoint() or 'none'}). Lower train.lr and resume.")
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        tokens = batch_tokens * self.accelerator.num_processes  # the batches' own size (a batch source may differ)
        raw = self.raw_model
        self.step += 1
        self.tokens_seen += tokens
        self.flops_seen += raw.flops_per_token(int(y.shape[1])) * tokens
        metrics: dict[str, Any] = {"step": self.step, "tokens": self.tokens_seen, "flops": self.flops_seen,
                                   "lr": lr, **sums, "activated_params": raw.activated_params()}
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm
        metrics.update(routing_metrics(raw))
        return metrics

    def fit(self, resume: bool = True) -> TrainResult:
        """Train to ``config.steps`` (resuming from the latest checkpoint in ``out_dir`` when asked)."""
        cfg = self.config
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.run_config is not None:
                from shared.config import save_config

                save_config(self.run_config, self.out_dir / "config.yaml")
            last = self.latest_checkpoint() if resume else None
            if last is not None:
                self.load_checkpoint(last)
                self._truncate_metrics()
            elif (self.out_dir / METRICS_FILE).exists():
                (self.out_dir / METRICS_FILE).unlink()
        for cb in self.callbacks:
            cb.on_train_start(self)
        last_metrics: dict[str, Any] = {}
        val_loss = None
        start_time, start_tokens = time.perf_counter(), self.tokens_seen
        bar = progress(total=cfg.steps, initial=self.step, desc="train", unit="step")
        try:
            while self.step < cfg.steps and not self.should_stop:
                metrics = self.train_step()
                for cb in self.callbacks:
                    if self.step % max(cb.every, 1) == 0:
                        cb.on_step(self, metrics)
                if self.valid_tokens is not None and cfg.eval_every and (
                        self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    evaluation = self.evaluate()
                    metrics.update(evaluation)
                    val_loss = evaluation["val_loss"]
                    for cb in self.callbacks:
                        cb.on_eval(self, metrics)
                elapsed = time.perf_counter() - start_time
                metrics["tokens_per_s"] = (self.tokens_seen - start_tokens) / max(elapsed, 1e-9)
                if self.step % cfg.log_every == 0 or "val_loss" in metrics or self.step == cfg.steps:
                    self._log(metrics)
                last_metrics = metrics
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['lm_loss']:.3f}")
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
        finally:
            bar.close()
        if self.out_dir is not None and (not cfg.checkpoint_every or self.step % cfg.checkpoint_every):
            self.save_checkpoint()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return TrainResult(self.step, self.tokens_seen, self.flops_seen, float(last_metrics.get("lm_loss", float("nan"))),
                           val_loss, self.history, self.out_dir)


def routing_metrics(model: Transformer) -> dict[str, Any]:
    """MoE statistics of the last forward, averaged over MoE layers (empty for a dense model)."""
    stats = [f.stats for f in model.ffns if f.stats]
    if not stats:
        return {}
    out: dict[str, Any] = {}
    for key in ("experts_per_token", "activated_hidden"):
        values = [s[key] for s in stats if key in s]
        if values:
            out[f"moe/{key}"] = sum(values) / len(values)
    fractions = [s["expert_fraction"] for s in stats if "expert_fraction" in s]
    if fractions:
        out["moe/expert_fraction"] = [[round(float(v), 5) for v in f] for f in fractions]  # per layer, per expert
    return out


def train_run(config: RunConfig, out_dir: str | Path | None, callbacks: Sequence[Callback] = (),
              resume: bool = True, data=None) -> tuple[Transformer, TrainResult]:
    """Prepare data, build the model (vocab from the tokenizer) and train: what ``paperkits llm train`` runs."""
    import dataclasses

    from llm_dynamics_kit.data import prepare_data
    from shared.seeding import seed_everything

    data = data or prepare_data(config.data)
    if config.model.vocab_size != data.vocab_size:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=data.vocab_size))
    seed_everything(config.train.seed)
    model = Transformer(config.model)
    trainer = Trainer(model, data.train, data.valid, config.train, out_dir=out_dir, callbacks=callbacks,
                      run_config=config)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        data.tokenizer.save(str(Path(out_dir) / "tokenizer.json"))
    result = trainer.fit(resume=resume)
    return trainer.raw_model, result
