"""One training run: a RecBole model + a sampler under the fixed protocol of the benchmark (brief §8.3/§10.3).

Protocol: RecBole atomic dataset (default the ml-100k that RecBole ships), per-user random 80/10/10 split,
full ranking with history masked, early stopping on valid NDCG@20 (evaluated every ``eval_step`` epochs,
``stopping_step`` non-improving evaluations), the best-validation checkpoint evaluated on test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from recsys_kit.recbole_compat import recbole_config
from shared.config import save_config
from shared.errors import ConfigError

SETTINGS = {
    "all_positive": "RecBole's default: every rating is a positive",
    "low_ratings_negative": "ratings <= 2 removed from the positives and kept as known negatives",
}
NATIVE_UNIFORM = "recbole_uniform"  # RecBole's own Trainer and sampler: the reference for sampling overhead


@dataclasses.dataclass
class ExperimentConfig:
    """Everything one run depends on (saved beside the run; overridable with ``--set key=value``)."""

    model: str = "BPR"
    sampler: str = "uniform"
    sampler_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "ml-100k"
    data_path: str | None = None  # folder containing <dataset>/<dataset>.inter; None: RecBole's bundled copy
    setting: str = "all_positive"
    negative_max_rating: float = 2.0
    seed: int = 2020
    epochs: int = 100
    eval_step: int = 5
    stopping_step: int = 3
    learning_rate: float = 5e-3
    train_batch_size: int = 2048
    embedding_size: int = 64
    n_layers: int = 2
    reg_weight: float = 1e-4
    topk: list[int] = dataclasses.field(default_factory=lambda: [10, 20])
    valid_metric: str = "NDCG@20"
    track_false_negatives: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {self.setting!r}")
        if self.model not in ("BPR", "LightGCN"):
            raise ValueError(f"model must be BPR or LightGCN (RecBole's own), got {self.model!r}")


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """RecBole's Trainer writes ./log_tensorboard: keep it out of the user's folder."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def recbole_dict(cfg: ExperimentConfig, checkpoint_dir: Path) -> dict[str, Any]:
    """The RecBole ``config_dict`` of the protocol."""
    out: dict[str, Any] = {
        "seed": cfg.seed, "epochs": cfg.epochs, "eval_step": cfg.eval_step, "stopping_step": cfg.stopping_step,
        "learning_rate": cfg.learning_rate, "train_batch_size": cfg.train_batch_size, "eval_batch_size": 4096,
        "embedding_size": cfg.embedding_size, "n_layers": cfg.n_layers, "reg_weight": cfg.reg_weight,
        "checkpoint_dir": str(checkpoint_dir), "worker": 0, "use_gpu": torch.cuda.is_available(),
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
                                  "candidate_num": 0},
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"], "topk": list(cfg.topk), "valid_metric": cfg.valid_metric,
    }
    if cfg.setting == "low_ratings_negative":
        out["val_interval"] = {"rating": f"({cfg.negative_max_rating},inf)"}
        out["load_col"] = {"inter": ["user_id", "item_id", "rating"]}  # ratings are needed to split off negatives
    return out


def run_experiment(cfg: ExperimentConfig, work_dir: str | Path | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` with ``cfg.sampler`` and return valid/test metrics, epochs and per-epoch cost."""
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import BPR, LightGCN
    from recbole.utils import init_seed

    from recsys_kit.negsampling.base import get_sampler
    from recsys_kit.negsampling.hook import NegSamplingTrainer, build_context

    torch.set_num_threads(cfg.threads)
    if cfg.sampler == "predefined" and cfg.setting != "low_ratings_negative":
        raise ConfigError("the predefined sampler needs setting='low_ratings_negative' (known negatives = low ratings)")
    with contextlib.ExitStack() as stack:
        work = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        save_config(cfg, work / "negsampling_config.yaml")  # the exact settings, beside the run
        model_cls = {"BPR": BPR, "LightGCN": LightGCN}[cfg.model]
        config = recbole_config(model_cls, dataset=cfg.dataset, data_path=cfg.data_path,
                                config_dict=recbole_dict(cfg, work / "checkpoints"))
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = model_cls(config, train.dataset).to(config["device"])
        with _working_dir(work):
            if cfg.sampler == NATIVE_UNIFORM:
                trainer = _TimedTrainer(config, model)
            else:
                sampler = get_sampler(cfg.sampler, seed=cfg.seed, **cfg.sampler_params)
                context = build_context(
                    train.dataset,
                    heldout_datasets=(valid.dataset, test.dataset) if cfg.track_false_negatives else (),
                    negative_max_rating=cfg.negative_max_rating if cfg.setting == "low_ratings_negative" else None,
                    with_kg=sampler.family == "knowledge", max_epochs=cfg.epochs)
                trainer = NegSamplingTrainer(config, model, sampler, context)
            _absolute_tensorboard(trainer, work)
        start = time.perf_counter()
        curve: list[tuple[int, float]] = []
        best_valid, valid_result = trainer.fit(train, valid, saved=True, show_progress=False, verbose=False,
                                               callback_fn=lambda epoch, score: curve.append((epoch + 1, float(score))))
        fit_s = time.perf_counter() - start
        test_result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    epochs_run = len(trainer.epoch_wall_s)
    out: dict[str, Any] = {
        "valid_ndcg@20": float(valid_result.get("ndcg@20", best_valid)),
        **{f"test_{k}": float(v) for k, v in test_result.items()},
        "epochs_run": epochs_run,
        "best_epoch": max(curve, key=lambda point: point[1])[0] if curve else epochs_run,
        "train_s_per_epoch": sum(trainer.epoch_wall_s) / max(epochs_run, 1),
        "train_cpu_s_per_epoch": sum(trainer.epoch_cpu_s) / max(epochs_run, 1),
        "fit_wall_s": fit_s,
    }
    out["valid_curve"] = curve
    if cfg.sampler != NATIVE_UNIFORM and hasattr(trainer.sampler, "fallback_share"):
        out["fallback_share"] = float(trainer.sampler.fallback_share)  # last batch's share of uniform fallbacks
    rates = getattr(trainer, "false_negative_rate", [])
    if rates:
        out["false_negative_rate"] = sum(rates) / len(rates)
    return out


def _absolute_tensorboard(trainer: Any, work: Path) -> None:
    """RecBole's SummaryWriter keeps a *relative* path and writes lazily: re-open it at an absolute one."""
    from torch.utils.tensorboard import SummaryWriter

    trainer.tensorboard.close()
    trainer.tensorboard = SummaryWriter(log_dir=str(work.resolve() / "log_tensorboard"))


class _TimedTrainer:
    """RecBole's own Trainer (its built-in uniform sampler), timing each training epoch like ours."""

    def __new__(cls, config: Any, model: torch.nn.Module):
        from recbole.trainer import Trainer

        class Timed(Trainer):
            def __init__(self, config, model):
                super().__init__(config, model)
                self.epoch_wall_s: list[float] = []
                self.epoch_cpu_s: list[float] = []

            def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
                wall, cpu = time.perf_counter(), time.process_time()
                loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
                self.epoch_wall_s.append(time.perf_counter() - wall)
                self.epoch_cpu_s.append(time.process_time() - cpu)
                return loss

        return Timed(config, model)
