"""Training: a short run beats popularity; checkpoints resume; the sampled protocol is seeded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys_kit.transition2.train import evaluate_popularity, train_arm
from shared.errors import ConfigError


def test_short_training_beats_popularity(prepared, small_config, tmp_path):
    cfg = dataclasses.replace(small_config, arm="t2_v1", epochs=2, patience=5, learning_rate=3e-3)
    checkpoint = tmp_path / "ckpt.pt"
    result = train_arm(prepared, cfg, checkpoint=checkpoint)
    popularity = evaluate_popularity(prepared).metrics["full_ndcg@10"]
    assert result.test.metrics["full_ndcg@10"] > popularity
    assert np.isfinite(result.loss_curve).all() and result.loss_curve[-1] < result.loss_curve[0]
    assert set(result.edge_weights) == {"++", "+-", "-+", "--"}
    # a finished checkpoint resumes without training again and gives the same test metrics
    again = train_arm(prepared, cfg, checkpoint=checkpoint)
    assert again.epochs_run == 2 and again.test.metrics == result.test.metrics
    with pytest.raises(ConfigError, match="other settings"):
        train_arm(prepared, dataclasses.replace(cfg, learning_rate=1e-2), checkpoint=checkpoint)


def test_recbole_trainer_runs_the_model(prepared, tmp_path, monkeypatch):
    """A RecBole user can hand Transition2 and T2Dataset to RecBole's own data_preparation and Trainer."""
    monkeypatch.chdir(tmp_path)  # RecBole's trainer writes log_tensorboard/ into the working directory
    import warnings

    from recbole.data import data_preparation
    from recbole.utils import get_trainer

    from recsys_kit.transition2.data import T2Dataset
    from recsys_kit.transition2.model import Transition2
    from recsys_kit.transition2.train import arm_config

    config = arm_config(prepared.config, "t2_v2", {"epochs": 1, "inner_size": 32, "checkpoint_dir": str(tmp_path)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        train, valid, test = data_preparation(config, T2Dataset(config))
    model = Transition2(config, train._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, saved=True, show_progress=False)
    metrics = trainer.evaluate(test, load_best_model=True, show_progress=False)
    assert 0.0 <= metrics["ndcg@10"] <= 1.0 and metrics["recall@10"] > 0


def test_nan_loss_raises_and_keeps_the_checkpoint(prepared, small_config, tmp_path, monkeypatch):
    import torch

    from recsys_kit.transition2.model import Transition2
    from shared.errors import TrainingDivergedError

    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"keep")
    monkeypatch.setattr(Transition2, "calculate_loss", lambda self, batch: torch.tensor(float("nan")))
    cfg = dataclasses.replace(small_config, arm="t2_v1", epochs=1)
    with pytest.raises(TrainingDivergedError, match="loss became nan"):
        train_arm(prepared, cfg, checkpoint=tmp_path / "fresh.pt")
    assert checkpoint.read_bytes() == b"keep" and not (tmp_path / "fresh.pt").exists()


def test_early_stopping_reports_epochs_reached_and_the_best_epoch(prepared, small_config, monkeypatch):
    """Validation NDCG@10 peaks at epoch 2: with patience 2 training stops after epoch 4 and reports epoch 2."""
    import recsys_kit.transition2.train as train_module

    real = train_module.evaluate_model
    scripted = iter([0.10, 0.20, 0.15, 0.18, 0.30, 0.40])

    class _Valid:
        def __init__(self, value):
            self.metrics = {"full_ndcg@10": value}

    def fake(model, prepared_, split="test", **kw):
        return _Valid(next(scripted)) if split == "valid" else real(model, prepared_, split, **kw)

    monkeypatch.setattr(train_module, "evaluate_model", fake)
    cfg = dataclasses.replace(small_config, arm="sasrec_mixed", epochs=50, patience=2, max_batches_per_epoch=1)
    result = train_arm(prepared, cfg)
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (4, 2, True)
    assert result.valid_ndcg == 0.20
