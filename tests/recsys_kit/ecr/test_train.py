import dataclasses

import numpy as np
import pytest
import torch

from recsys_kit.ecr.pipeline import arm_config, default_train_config
from recsys_kit.ecr.rec.model import RecModelConfig
from recsys_kit.ecr.rec.train import fit_recommender, load_recommender
from shared.errors import ConfigError, TrainingDivergedError

SMALL = RecModelConfig(dim=32, entity_dim=16, emotion_dim=8, n_layers=1)


def test_train_evaluate_save_load(tiny_prepared, tmp_path):
    p = tiny_prepared
    config = dataclasses.replace(arm_config("ECR", default_train_config(epochs=2, pretrain_epochs=1)), model=dataclasses.replace(
        SMALL, use_emotion=True, use_global=True))
    trained = fit_recommender(p.data.kg, p.samples["train"], p.samples["valid"], config, p.cooccurrence,
                              pretrain=p.pretrain, out=tmp_path / "run")
    stages = [h["stage"] for h in trained.history]
    assert stages.count("pre-train") == 1 and stages.count("recommend") == 2
    assert trained.history[-1]["train_loss"] < trained.history[1]["train_loss"] + 1.0
    metrics, inst = trained.evaluate(p.samples["test"])
    assert 0 <= metrics["R@1"] <= metrics["R@10"] <= metrics["R@50"] <= 1
    assert len(inst["ranks"]) == len(p.samples["test"])
    back = load_recommender(tmp_path / "run", p.data.kg, p.cooccurrence)
    a, _ = trained.scores(p.samples["test"][:4])
    b, _ = back.scores(p.samples["test"][:4])
    assert np.allclose(a, b, atol=1e-5)


def test_divergence_is_reported(tiny_prepared, monkeypatch):
    p = tiny_prepared
    import recsys_kit.ecr.rec.train as train_module

    monkeypatch.setattr(train_module, "weighted_cross_entropy", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    config = arm_config("UniCRS", default_train_config(epochs=1, model=SMALL))
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        fit_recommender(p.data.kg, p.samples["train"][:8], [], config)


def test_unknown_arm():
    with pytest.raises(ConfigError, match="unknown arm"):
        arm_config("KBRD", default_train_config())
