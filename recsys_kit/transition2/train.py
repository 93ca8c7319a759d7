"""Prepare a T2 dataset for RecBole, train one Transition² arm with early stopping, and evaluate it per domain."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys_kit.transition2.data import (
    DOMAIN_FIELD,
    BuildConfig,
    T2Dataset,
    build_t2_dataset,
    recbole_settings,
    source_fingerprint,
)
from recsys_kit.transition2.evaluate import Evaluation, evaluate_split, popularity_scorer
from recsys_kit.transition2.model import DEFAULTS_YAML, PRESETS, Transition2
from shared.config import to_dict
from shared.errors import ConfigError, TrainingDivergedError
from shared.paths import cache_dir
from shared.progress import progress
from shared.seeding import seed_everything


@dataclasses.dataclass
class TrainConfig:
    """One training run: data, architecture size, optimisation budget and evaluation protocol."""

    build: BuildConfig = dataclasses.field(default_factory=BuildConfig)
    data_dir: str = ""               # folder holding <build.name>/; "" = built into the paperkits cache
    arm: str = "t2_v2"               # a PRESETS name; `model` overrides apply on top
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_seq_length: int = 50         # encoder window W (the model's input_window)
    history_length: int = 0          # RecBole list length; 0 = max_seq_length. Longer lists let positive-only
                                     # arms fill W with positives (brief §10 "same budget" fairness)
    hidden_size: int = 64
    inner_size: int = 0              # FFN width; 0 = 4 × hidden_size (brief §3.3 "position-wise FFN (4d, GELU)").
                                     # A `model={"inner_size": ...}` override still wins (arm_config)
    epochs: int = 100                # the most epochs (brief §4: 100); training stops early before that
    patience: int = 5                # early stop on validation NDCG@10 (full in-domain ranking; brief §4: 5-10)
    max_batches_per_epoch: int = 0   # 0 = all; caps the budget identically for every arm
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    eval_batch_size: int = 512
    n_sampled: int = 999
    threads: int = 1                 # one thread per process is fastest on a shared 2-core machine (brief §9.9)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.arm not in PRESETS and self.arm != "custom":
            raise ValueError(f"arm {self.arm!r} is unknown; choose one of {list(PRESETS) + ['custom']}")
        if self.hidden_size < 1 or self.inner_size < 0:
            raise ValueError("hidden_size must be >= 1 and inner_size >= 0 (0 = 4 × hidden_size)")

    @property
    def ffn_size(self) -> int:
        """The Transformer feed-forward width: ``inner_size``, or 4 × ``hidden_size`` when it is 0."""
        return self.inner_size or 4 * self.hidden_size


@dataclasses.dataclass
class Prepared:
    """A RecBole config plus the train/validation/test splits of one T2 dataset."""

    config: Any
    dataset: T2Dataset
    train: Any
    valid: Any
    test: Any
    item_domain: np.ndarray
    domain_tokens: np.ndarray


@dataclasses.dataclass
class RunResult:
    """What one trained arm produced."""

    test: Evaluation
    valid_ndcg: float
    epochs_run: int
    train_seconds: float
    edge_weights: dict[str, float]
    loss_curve: list[float]
    model: Transition2 | None = None
    best_epoch: int = 0              # the epoch (1-based) whose validation NDCG@10 chose the reported model
    stopped_early: bool = False      # True: patience ran out before `epochs` (converged by the rule)


def build_key(build: BuildConfig) -> str:
    """A short hash of every :class:`BuildConfig` field *and* of the source files' contents
    (:func:`~recsys_kit.transition2.data.source_fingerprint`): changing a threshold or rewriting a source file
    changes the key, so a stale build is never served."""
    text = json.dumps({"build": dataclasses.asdict(build), "source": source_fingerprint(build)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _built_with(folder: Path, build: BuildConfig) -> bool | None:
    """Whether ``folder``'s atomic files were built from ``build`` and today's source files (None: no
    ``stats.json`` with build settings to tell, e.g. atomic files prepared by the user)."""
    stats = folder / "stats.json"
    if not stats.is_file():
        return None
    try:
        saved = json.loads(stats.read_text())
        recorded = saved.get("build")
    except (json.JSONDecodeError, AttributeError):
        return False
    if recorded is None:
        return None
    return (recorded == json.loads(json.dumps(dataclasses.asdict(build)))
            and saved.get("source") == source_fingerprint(build))


def ensure_built(cfg: TrainConfig) -> Path:
    """The folder holding ``<build.name>/``, (re)built unless it already holds data from exactly ``cfg.build``.

    The default cache keys each build by :func:`build_key`, so different thresholds/filters never share files. In
    an explicit ``data_dir`` a dataset whose ``stats.json`` records other build settings is rebuilt in place; atomic
    files without ``stats.json`` (prepared by the user) are used as they are.
    """
    data_dir = Path(cfg.data_dir) if cfg.data_dir else cache_dir("transition2", "data", build_key(cfg.build))
    folder = data_dir / cfg.build.name
    if not (folder / f"{cfg.build.name}.inter").is_file() or _built_with(folder, cfg.build) is False:
        build_t2_dataset(cfg.build, data_dir)
    return data_dir


def prepare(cfg: TrainConfig) -> Prepared:
    """Build the atomic files if needed (see :func:`ensure_built`), then the RecBole config, T2Dataset and splits."""
    from recsys_kit.recbole_compat import recbole_config

    data_dir = ensure_built(cfg)
    settings = recbole_settings(max(cfg.history_length, cfg.max_seq_length), input_window=cfg.max_seq_length,
                                hidden_size=cfg.hidden_size, inner_size=cfg.ffn_size, seed=cfg.seed,
                                train_batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
                                learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, device="cpu",
                                use_gpu=False)
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses the command line; ours is not for it
    try:
        config = recbole_config(Transition2, dataset=cfg.build.name, data_path=data_dir, config_dict=settings,
                                config_files=[str(DEFAULTS_YAML)])
    finally:
        sys.argv = argv
    with warnings.catch_warnings():  # RecBole 1.2.1 triggers pandas' chained-assignment FutureWarnings
        warnings.simplefilter("ignore", FutureWarning)
        dataset = T2Dataset(config)
        train, valid, test = dataset.build()
    return Prepared(config=config, dataset=dataset, train=train, valid=valid, test=test,
                    item_domain=dataset.item_domain_ids(), domain_tokens=np.asarray(dataset.field2id_token[DOMAIN_FIELD]))


def arm_config(base: Any, arm: str, overrides: dict[str, Any] | None = None) -> Any:
    """A copy of a RecBole config with an arm's switches (brief §10) and user overrides applied."""
    config = copy.copy(base)
    config.final_config_dict = dict(base.final_config_dict)
    settings = dict(PRESETS.get(arm, {}))
    settings.update(overrides or {})
    for key, value in settings.items():
        if key not in config.final_config_dict:
            raise ConfigError(f"unknown Transition2 setting {key!r}; see recsys_kit/transition2/transition2.yaml")
        config.final_config_dict[key] = value
    return config


def build_model(prepared: Prepared, arm: str, overrides: dict[str, Any] | None = None, seed: int = 0) -> Transition2:
    """A freshly initialised Transition² for ``arm`` (seeded)."""
    seed_everything(seed)
    return Transition2(arm_config(prepared.config, arm, overrides), prepared.train)


def _scorer(model: Transition2):
    def score(batch) -> torch.Tensor:
        return model.full_sort_predict(batch)
    return score


def evaluate_model(model: Transition2, prepared: Prepared, split: str = "test", n_sampled: int = 999,
                   seed: int = 0, batch_size: int = 512) -> Evaluation:
    """Per-domain evaluation of ``model`` on the validation or test split."""
    model.eval()
    data = prepared.test if split == "test" else prepared.valid
    return evaluate_split(_scorer(model), data, prepared.item_domain, prepared.domain_tokens, n_sampled=n_sampled,
                          seed=seed, batch_size=batch_size)


def evaluate_popularity(prepared: Prepared, n_sampled: int = 999, seed: int = 0) -> Evaluation:
    """The most-popular-in-domain baseline on the test split."""
    return evaluate_split(popularity_scorer(prepared.train, prepared.item_domain), prepared.test,
                          prepared.item_domain, prepared.domain_tokens, n_sampled=n_sampled, seed=seed)


def train_arm(prepared: Prepared, cfg: TrainConfig, checkpoint: Path | None = None, keep_model: bool = False,
              desc: str = "") -> RunResult:
    """Train one arm with Adam, grad clipping and early stopping on validation NDCG@10; evaluate on test.

    With ``checkpoint`` the run saves its state after every epoch and resumes from it when restarted.
    """
    torch.set_num_threads(cfg.threads)
    model = build_model(prepared, cfg.arm, cfg.model, cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    state = {"epoch": 0, "best": -1.0, "best_state": None, "bad": 0, "losses": [], "seconds": 0.0}
    signature = {k: v for k, v in to_dict(cfg).items() if k not in ("epochs", "patience", "threads")}
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)  # our own file, written below
        if saved.get("config") != signature:
            raise ConfigError(f"checkpoint {checkpoint} was written by a run with other settings; use another "
                              "--out folder or delete the checkpoint to start afresh")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        state = saved["state"]
    inter = prepared.train.inter_feat
    n_rows = len(inter)
    while state["epoch"] < cfg.epochs and state["bad"] < cfg.patience:
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n_rows, generator=generator)
        n_batches = math.ceil(n_rows / cfg.batch_size)
        if cfg.max_batches_per_epoch:
            n_batches = min(n_batches, cfg.max_batches_per_epoch)
        total = 0.0
        for b in progress(range(n_batches), desc=desc or f"{cfg.arm} epoch {state['epoch'] + 1}", unit="batch"):
            batch = inter[order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
            loss = model.calculate_loss(batch)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"{cfg.arm}: loss became {loss.item()} at epoch {state['epoch'] + 1}; "
                                            "lower learning_rate or the contrastive weights")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            total += loss.item()
        state["losses"].append(total / n_batches)
        ndcg = evaluate_model(model, prepared, "valid", n_sampled=1, seed=cfg.seed,
                              batch_size=cfg.eval_batch_size).metrics["full_ndcg@10"]
        if ndcg > state["best"]:
            state.update(best=ndcg, bad=0, best_state={k: v.clone() for k, v in model.state_dict().items()},
                         best_epoch=state["epoch"] + 1)
        else:
            state["bad"] += 1
        state["epoch"] += 1
        state["seconds"] += time.perf_counter() - start
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(), "state": state, "config": signature}, tmp)
            tmp.replace(checkpoint)
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    test = evaluate_model(model, prepared, "test", n_sampled=cfg.n_sampled, seed=cfg.seed,
                          batch_size=cfg.eval_batch_size)
    return RunResult(test=test, valid_ndcg=state["best"], epochs_run=state["epoch"], train_seconds=state["seconds"],
                     edge_weights=model.learned_edge_weights(), loss_curve=state["losses"],
                     model=model if keep_model else None, best_epoch=int(state.get("best_epoch", 0)),
                     stopped_early=state["bad"] >= cfg.patience)
