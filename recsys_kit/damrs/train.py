"""Train and evaluate DA-MRS (or its plain backbone) with RecBole's own Trainer and full-ranking evaluator."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from recsys_kit.damrs.data import read_manifest
from recsys_kit.damrs.model import DAMRS
from recsys_kit.recbole_compat import recbole_config
from shared.config import save_config, to_dict
from shared.errors import ConfigError, DataError, TrainingDivergedError
from shared.progress import progress

# Negatives convention, identical for every arm (backbones, ablations, DA-MRS): one uniform negative per positive
# from the items NOT in the user's *training* interactions — RecBole's convention (its train-phase sampler knows
# only the training split). A held-out (valid/test) item of the user can therefore be drawn as a negative, as
# in RecBole and MMRec; excluding them would leak the held-out split into training.
NEGATIVES: dict[str, Any] = {"distribution": "uniform", "sample_num": 1}


@dataclasses.dataclass
class DAMRSConfig:
    """DA-MRS model switches and hyper-parameters (defaults = the official code, brief §8.3)."""

    backbone: str = "lightgcn"
    embedding_size: int = 64
    n_ui_layers: int = 2
    n_mm_layers: int = 1
    knn_k: int = 10
    use_content_graphs: bool = True
    use_consistency: bool = True
    use_iib: bool = True
    iib_topk: int = 2
    iib_min_co: int = 2
    use_dbpr: bool = True
    dbpr_exponents: list[float] = dataclasses.field(default_factory=lambda: [1.0, 2.0, 1.0])
    kl_weight: float = 1.0
    neighbor_weight: float = 1e-3
    ai_num_pos: int = 10
    ai_temperature: float = 0.2
    ai_max_items: int | None = None
    reg_weight: float = 0.1
    tie_break: bool = True
    include_self: bool = True

    def __post_init__(self) -> None:
        if self.backbone not in ("lightgcn", "mf", "vbpr"):
            raise ValueError(f"backbone must be lightgcn, mf or vbpr, got {self.backbone!r}")
        if len(self.dbpr_exponents) != 3:
            raise ValueError("dbpr_exponents must be [alpha, beta, gamma]")

    @classmethod
    def plain_backbone(cls, backbone: str = "lightgcn", **overrides: Any) -> DAMRSConfig:
        """The backbone alone (no item views, plain BPR): the baseline under the identical training loop."""
        return cls(backbone=backbone, use_content_graphs=False, use_iib=False, use_dbpr=False, kl_weight=0.0,
                   neighbor_weight=0.0, **overrides)


@dataclasses.dataclass
class TrainConfig:
    """One training run: model, optimisation budget, evaluation (official: Adam 1e-3, batch 4096, patience 25)."""

    model: DAMRSConfig = dataclasses.field(default_factory=DAMRSConfig)
    modalities: list[str] | None = None  # subset of the manifest's modality names; None = all
    epochs: int = 500
    learning_rate: float = 1e-3
    train_batch_size: int = 4096
    stopping_step: int = 25
    valid_metric: str = "Recall@20"
    topk: list[int] = dataclasses.field(default_factory=lambda: [10, 20])
    seed: int = 999
    eval_batch_size: int = 2_000_000  # all users of ml-100k in one full-sort batch


@dataclasses.dataclass
class TrainResult:
    """Best-validation and test metrics plus the trained model and RecBole objects for diagnostics."""

    valid: dict[str, float]
    test: dict[str, float]
    best_epoch: int
    epochs_run: int
    model: DAMRS
    train_data: Any
    graph_stats: dict[str, float]


class _NullWriter:
    """Stands in for RecBole's TensorBoard writer (it writes under ./log_tensorboard from any working dir)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _quiet_trainer(config: Any, model: Any) -> Any:
    """RecBole's Trainer with its TensorBoard side output switched off."""
    from recbole.trainer import Trainer

    trainer = Trainer(config, model)
    trainer.tensorboard.close()
    trainer.tensorboard = _NullWriter()
    return trainer


def recbole_settings(cfg: TrainConfig, checkpoint_dir: Path) -> dict[str, Any]:
    """The RecBole config dict of a run (benchmark-file split, full ranking, our model keys)."""
    settings = {
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
        "train_neg_sample_args": dict(NEGATIVES),
        "epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "train_batch_size": cfg.train_batch_size,
        "eval_batch_size": cfg.eval_batch_size,
        "stopping_step": cfg.stopping_step,
        "valid_metric": cfg.valid_metric,
        "metrics": ["Recall", "NDCG"],
        "topk": list(cfg.topk),
        "seed": cfg.seed,
        "weight_decay": 0.0,
        "checkpoint_dir": str(checkpoint_dir),
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
    }
    settings.update(to_dict(cfg.model))
    return settings


def train_damrs(dataset_dir: str | Path, cfg: TrainConfig, out: str | Path, verbose: bool = False) -> TrainResult:
    """Train on a DA-MRS dataset folder (benchmark files + ``modalities.json``); early-stop on validation."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    dataset_dir = Path(dataset_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    settings = recbole_settings(cfg, out / "checkpoints")
    needs_features = cfg.model.use_content_graphs or cfg.model.backbone == "vbpr"
    if needs_features:
        entries = read_manifest(dataset_dir)
        if cfg.modalities is not None:
            names = [e["name"] for e in entries]
            unknown = sorted(set(cfg.modalities) - set(names))
            if unknown:
                raise ConfigError(f"unknown modality {unknown}; {dataset_dir} provides {names}")
            entries = [e for e in entries if e["name"] in cfg.modalities]
        settings["modality_files"] = [e["file"] for e in entries]
        tokens = [e["tokens"] for e in entries]
        settings["modality_token_files"] = tokens if all(tokens) else None
    config = recbole_config(DAMRS, dataset=dataset_dir.name, data_path=dataset_dir.parent, config_dict=settings)
    logging.getLogger().setLevel(logging.ERROR)
    init_seed(cfg.seed, True)
    try:
        dataset = create_dataset(config)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise DataError(f"RecBole could not load {dataset_dir}: {err}") from err
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(cfg.seed, True)
    model = DAMRS(config, train_data.dataset)
    trainer = _quiet_trainer(config, model)
    bar = progress(total=cfg.epochs, desc=f"DA-MRS[{cfg.model.backbone}]", unit="epoch")

    def on_epoch(epoch: int, valid_score: float) -> None:
        bar.update(1)
        bar.set_postfix(valid=f"{valid_score:.4f}", **{k: f"{v:.3f}" for k, v in model.last_losses.items()})

    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=verbose, callback_fn=on_epoch)
    except ValueError as err:
        if "nan" in str(err).lower():
            raise TrainingDivergedError(f"training loss became NaN ({err}); lower the learning rate") from err
        raise
    finally:
        bar.close()
    valid = trainer.evaluate(valid_data, load_best_model=True, show_progress=False)
    test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    best_epoch = _best_epoch(trainer)
    return TrainResult(valid=dict(valid), test=dict(test), best_epoch=best_epoch, epochs_run=len(trainer.train_loss_dict),
                       model=model, train_data=train_data, graph_stats=dict(model.graph_stats))


def _best_epoch(trainer: Any) -> int:
    """Epoch (1-based) of the best validation score, read back from the checkpoint RecBole wrote."""
    import torch

    try:
        state = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
        return int(state.get("epoch", -2)) + 1
    except (OSError, RuntimeError):
        return -1
