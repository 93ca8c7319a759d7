"""Copying over training: a trainer callback, a sweep over saved checkpoints, and the onset analysis.

Both the callback (:class:`CopyingTracker`) and the sweep (:func:`track_checkpoints`) produce the same
records, one per evaluated step: ``step``, ``tokens``, the training loss (EMA), the copy-task metrics and the
per-(layer, head) induction scores. :func:`onsets` turns a series of records into the brief §8.4 quantities
(loss-saturation step, copy-onset step, their ratio, abruptness, per-layer induction-head formation step).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_dynamics_kit.copying.adapters import as_adapter
from llm_dynamics_kit.copying.evaluate import copy_accuracy
from llm_dynamics_kit.copying.icl import icl_score
from llm_dynamics_kit.copying.induction import default_probes, induction_scores, probe_scores
from llm_dynamics_kit.copying.task import CopyTask
from llm_dynamics_kit.train import Callback, Trainer
from shared.errors import ConfigError, DataError
from shared.progress import progress
from shared.results import atomic_write_text

TRACK_FILE = "copying.jsonl"
TASK_FILE = "copy_task.json"


def evaluate_model(model: Any, task: CopyTask, induction: dict[str, Any] | None = None,
                   batch_size: int = 32, icl_tokens: np.ndarray | None = None) -> dict[str, Any]:
    """Copy metrics + induction scores (+ the ICL score on ``icl_tokens``) of one model as a flat record.

    ``induction`` holds :func:`induction_scores` keyword arguments (the paper's single geometry: ``induction``,
    ``induction_layer_max``) plus optionally ``probes``: the (repeat length, lead-in) geometries of
    :func:`probe_scores` (default :func:`default_probes`; ``[]`` turns them off). The probes give each head's
    score at every geometry and their minimum (``induction_min``, ``induction_min_layer_max``: what the onset
    analysis uses, so a fixed-offset copier does not read as induction) and the copy accuracy on repeats of
    lengths other than the paper's (``repeat_acc`` per probe, ``repeat_acc_min``; ``copied_context`` sets from
    which copy token on they are scored, see :func:`probe_scores`).
    The model is adapted once here (``as_adapter``) and the adapter passed to every metric.
    """
    adapter = as_adapter(model)
    record: dict[str, Any] = copy_accuracy(adapter, task, batch_size=batch_size).as_row()
    if icl_tokens is not None:
        record["icl_score"] = icl_score(adapter, icl_tokens)
    if induction is not None:
        induction = dict(induction)
        probes = induction.pop("probes", None)
        distinct = bool(induction.pop("distinct", False))  # probe_scores only: no recurring probe tokens
        copied_context = int(induction.pop("copied_context", 1))  # probe_scores only: first scored copy token
        scores = induction_scores(adapter, **induction)
        record.update({"induction": scores.induction.round(5).tolist(),
                       "prefix_matching": scores.prefix_matching.round(5).tolist(),
                       "ov_positivity": scores.ov_positivity.round(5).tolist(),
                       "previous_token": scores.previous_token.round(5).tolist(),
                       "induction_layer_max": scores.per_layer_max().round(5).tolist(),
                       "induction_loss": scores.induction_loss})
        if probes is None:
            probes = default_probes(adapter.max_len, induction.get("bos_id") is not None,
                                    induction.get("half_len", 100))
        if probes:
            record.update(probe_scores(
                adapter, probes, n_sequences=induction.get("n_sequences", 64), seed=induction.get("seed", 0),
                vocab_pool=induction.get("vocab_pool"), bos_id=induction.get("bos_id"),
                fold_norms=induction.get("fold_norms", True), batch_size=induction.get("batch_size", 16),
                ov_positivity=scores.ov_positivity, distinct=distinct, copied_context=copied_context).as_record())
    return record


class CopyingTracker(Callback):
    """Evaluate copy accuracy and induction scores every ``eval_every`` optimizer steps during training.

    Records (with ``step`` and ``tokens`` seen) are kept in :attr:`records`, saved in checkpoints (so a
    resumed run keeps them) and written to ``<out_dir>/copying.jsonl``; ``copy_acc`` is added to the
    trainer's logged metrics. The training loss is an EMA over every step (``ema``), because a single
    batch's loss is too noisy to locate the loss plateau.
    """

    every = 1  # called every step to keep the loss EMA; evaluates every ``eval_every``

    def __init__(self, task: CopyTask, eval_every: int = 100, induction: dict[str, Any] | None = None,
                 ema: float = 0.95, at_start: bool = True, batch_size: int = 32, icl_tokens: np.ndarray | None = None,
                 eval_steps: Sequence[int] | None = None, save_checkpoints: bool = False):
        self.task, self.eval_every, self.induction = task, max(1, eval_every), induction
        # explicit evaluation steps (e.g. log_grid(steps)) replace the every-N rule; save_checkpoints also writes
        # a checkpoint at each evaluated step (needs the trainer's out_dir and keep_checkpoints=0 to keep them all)
        self.eval_steps = set(int(s) for s in eval_steps) if eval_steps is not None else None
        self.save_checkpoints = save_checkpoints
        self.icl_tokens = icl_tokens  # e.g. validation tokens: adds Olsson's ICL score to every record
        self.ema, self.at_start, self.batch_size = ema, at_start, batch_size
        self.records: list[dict[str, Any]] = []
        self._loss_ema: float | None = None
        self._adapter: Any = None  # the trained model adapted once (as_adapter), reused at every evaluation

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.step == 0 and self.at_start and not self.records:
            self._evaluate(trainer, None)
        if trainer.out_dir is not None:
            self.task.save(Path(trainer.out_dir) / TASK_FILE)

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        loss = float(metrics["lm_loss"])
        self._loss_ema = loss if self._loss_ema is None else self.ema * self._loss_ema + (1 - self.ema) * loss
        due = (trainer.step in self.eval_steps) if self.eval_steps is not None else trainer.step % self.eval_every == 0
        if due or trainer.step == trainer.config.steps:
            record = self._evaluate(trainer, self._loss_ema)
            metrics["copy_acc"] = record["copy_acc"]
            if self.save_checkpoints and trainer.out_dir is not None and trainer.step != trainer.config.steps:
                trainer.save_checkpoint()  # the trainer itself saves the final one

    def _evaluate(self, trainer: Trainer, loss: float | None) -> dict[str, Any]:
        record = {"step": trainer.step, "tokens": trainer.tokens_seen, "train_loss": loss,
                  **evaluate_model(self._adapted(trainer), self.task, self.induction, self.batch_size,
                                   self.icl_tokens)}
        self.records.append(record)
        if trainer.out_dir is not None:
            write_records(self.records, Path(trainer.out_dir) / TRACK_FILE)
        return record

    def _adapted(self, trainer: Trainer) -> Any:
        model = trainer.raw_model
        if self._adapter is None or self._adapter.model is not model:
            self._adapter = as_adapter(model)
        return self._adapter

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records, "loss_ema": self._loss_ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state.get("records", []))
        self._loss_ema = state.get("loss_ema")


def log_grid(steps: int, n: int = 16, first: int = 10) -> list[int]:
    """About ``n`` steps from ``first`` to ``steps``, evenly spaced in log(step) (always ends at ``steps``)."""
    if steps < 1 or n < 1:
        raise ConfigError(f"log_grid needs steps >= 1 and n >= 1, got {steps}, {n}")
    first = max(1, min(first, steps))
    grid = np.unique(np.round(np.geomspace(first, steps, n)).astype(int))
    return [int(g) for g in grid]


def write_records(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One JSON line per record, written atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, default=float) + "\n" for r in records))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records written by :func:`write_records`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; produce it with CopyingTracker or `paperkits llm copying-track`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------- checkpoint sweep


def find_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every saved model under ``folder``, by step.

    Understands a ``paperkits llm train`` run folder (``checkpoints/step_*``), a folder of such checkpoints,
    and Hugging Face ``Trainer`` output (``checkpoint-<step>``); the step is the number in the folder name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"checkpoint folder {folder} does not exist")
    if (folder / "checkpoints").is_dir():
        folder = folder / "checkpoints"
    found = []
    for child in folder.iterdir():
        match = re.fullmatch(r"(?:step_|checkpoint-|step-|step)(\d+)", child.name)
        if match and child.is_dir() and (child / "config.json").is_file():
            found.append((int(match.group(1)), child))
    if not found:
        raise DataError(f"no checkpoints in {folder}: expected sub-folders step_<N> (paperkits llm train with "
                        "train.checkpoint_every > 0 and train.keep_checkpoints=0) or checkpoint-<N> (HF Trainer), "
                        "each holding config.json and weights")
    return sorted(found)


def load_checkpoint_model(path: str | Path) -> Any:
    """A saved kit model (native layout) or any HF causal LM folder, in eval mode on CPU."""
    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    from llm_dynamics_kit.model import MODEL_TYPE, Transformer

    if config.get("model_type") == MODEL_TYPE:
        return Transformer.from_pretrained(path).eval()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), attn_implementation="eager").eval()


def checkpoint_tokens(path: Path) -> int | None:
    """Tokens seen at a checkpoint (kit ``trainer_state.pt`` or HF ``trainer_state.json``), if recorded."""
    if (path / "trainer_state.json").is_file():
        state = json.loads((path / "trainer_state.json").read_text())
        return state.get("num_input_tokens_seen") or None
    if (path / "trainer_state.pt").is_file():
        import torch

        # our own trainer's file (optimizer tensors + RNG states): trusted, as in Trainer.load_checkpoint
        return int(torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)["tokens_seen"])
    return None


def training_loss_curve(folder: str | Path, ema: float = 0.95) -> dict[int, float]:
    """step -> EMA of the logged training loss, from a kit run's ``metrics.jsonl`` (or {} when absent)."""
    folder = Path(folder)
    path = folder / "metrics.jsonl" if (folder / "metrics.jsonl").is_file() else folder.parent / "metrics.jsonl"
    if not path.is_file():
        return {}
    out, value = {}, None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "lm_loss" in record:
            value = record["lm_loss"] if value is None else ema * value + (1 - ema) * record["lm_loss"]
            out[int(record["step"])] = value
    return out


def track_checkpoints(folder: str | Path, task: CopyTask, induction: dict[str, Any] | None = None,
                      out: str | Path | None = None, batch_size: int = 32,
                      icl_tokens: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Evaluate every checkpoint under ``folder`` on one fixed ``task``; optionally write ``out`` (JSONL)."""
    checkpoints = find_checkpoints(folder)
    losses = training_loss_curve(folder)
    records = []
    for step, path in progress(checkpoints, desc="checkpoints", unit="ckpt"):
        model = load_checkpoint_model(path)
        near = [s for s in losses if s <= step]
        record = {"step": step, "tokens": checkpoint_tokens(path),
                  "train_loss": losses[max(near)] if near else None, "path": str(path),
                  **evaluate_model(model, task, induction, batch_size, icl_tokens)}
        records.append(record)
        if out is not None:
            write_records(records, out)
    return records


# ----------------------------------------------------------------------------------------------- onsets


@dataclass
class Onsets:
    """Brief §8.4 quantities of one run (NaN when an event never happens)."""

    loss_step: float  # first eval where the EMA train loss made ``loss_frac`` of its total drop
    copy_step: float  # first eval where copy accuracy reached ``copy_frac`` of its maximum
    loss_tokens: float
    copy_tokens: float
    ratio: float  # copy_step / loss_step (paper: ≈ 3; "grokking-like" needs > 1.5)
    abruptness: float  # largest single-interval accuracy gain / maximum accuracy
    max_copy_acc: float
    final_copy_acc: float
    # the same onset on the per-token (teacher-forced) accuracy, the continuous companion of exact match: it
    # times the jump when whole 6-token suffixes are still rare (NaN below ``min_token_acc``; chance ≈ 1/|pool|)
    token_step: float
    token_tokens: float
    max_copy_token_acc: float
    layer_steps: list[float]  # per layer: first eval where max_h I(L, h) ≥ tau
    layer_rho: float  # Spearman ρ(layer, formation step) over layers that formed

    def as_row(self) -> dict[str, float]:
        row = {k: v for k, v in self.__dict__.items() if not isinstance(v, list)}
        row.update({f"induction_onset_layer{i}": v for i, v in enumerate(self.layer_steps)})
        return row


def _first(xs: Sequence[float], flags: Sequence[bool]) -> float:
    return next((float(x) for x, f in zip(xs, flags) if f), float("nan"))


def onsets(records: Sequence[dict[str, Any]], loss_frac: float = 0.9, copy_frac: float = 0.5, tau: float = 0.3,
           min_copy_acc: float = 0.05, min_token_acc: float = 0.05) -> Onsets:
    """Loss-saturation and copy-onset steps (thresholds are the brief's pre-registered ones, §8.4)."""
    if not records:
        raise DataError("no records to analyse")
    steps = [r["step"] for r in records]
    tokens = [r.get("tokens") or math.nan for r in records]
    acc = np.array([r["copy_acc"] for r in records], dtype=float)
    losses = [(s, t, r["train_loss"]) for s, t, r in zip(steps, tokens, records) if r.get("train_loss") is not None]
    loss_step = loss_tokens = math.nan
    if len(losses) >= 2:
        values = np.array([v for _, _, v in losses])
        target = values[0] - loss_frac * (values[0] - values.min())
        hit = next(i for i, v in enumerate(values) if v <= target)
        loss_step, loss_tokens = float(losses[hit][0]), float(losses[hit][1])
    best = float(acc.max())
    copy_step = copy_tokens = math.nan
    if best >= min_copy_acc:  # below this there is no copying to time
        flags = acc >= copy_frac * best
        copy_step, copy_tokens = _first(steps, flags), _first(tokens, flags)
    token_acc = np.array([r.get("copy_token_acc", math.nan) for r in records], dtype=float)
    best_token = float(np.nanmax(token_acc)) if np.isfinite(token_acc).any() else math.nan
    token_step = token_tokens = math.nan
    if best_token >= min_token_acc:
        flags = token_acc >= copy_frac * best_token
        token_step, token_tokens = _first(steps, flags), _first(tokens, flags)
    gains = np.diff(acc) if len(acc) > 1 else np.zeros(1)
    abrupt = float(gains.max() / best) if best > 0 else math.nan
    layer_steps: list[float] = []
    # the robust score (each head's minimum over the probe geometries) when recorded, else the paper's single one
    key = "induction_min_layer_max" if records[0].get("induction_min_layer_max") is not None else "induction_layer_max"
    if records[0].get(key) is not None:
        per_layer = np.array([r[key] for r in records])  # (evals, L)
        layer_steps = [_first(steps, per_layer[:, layer] >= tau) for layer in range(per_layer.shape[1])]
    formed = [(i, s) for i, s in enumerate(layer_steps) if math.isfinite(s)]
    rho = math.nan
    if len(formed) >= 2 and len({s for _, s in formed}) > 1:
        from scipy.stats import spearmanr

        rho = float(spearmanr([i for i, _ in formed], [s for _, s in formed]).statistic)
    return Onsets(loss_step=loss_step, copy_step=copy_step, loss_tokens=loss_tokens, copy_tokens=copy_tokens,
                  ratio=copy_step / loss_step if loss_step and math.isfinite(loss_step) else math.nan,
                  abruptness=abrupt, max_copy_acc=best, final_copy_acc=float(acc[-1]), token_step=token_step,
                  token_tokens=token_tokens, max_copy_token_acc=best_token, layer_steps=layer_steps,
                  layer_rho=rho)
