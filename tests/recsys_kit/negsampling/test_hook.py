"""The hook: RecBole's own Config/create_dataset/data_preparation/Trainer and BPR/LightGCN, one extra line."""

import pytest
import torch

from recsys_kit.negsampling import NegSamplingTrainer, get_sampler
from recsys_kit.negsampling.experiment import ExperimentConfig, run_experiment
from recsys_kit.negsampling.hook import PositiveTrainDataLoader, build_context
from shared.errors import ConfigError, TrainingDivergedError

# one sampler per family (+ the custom-loss dynamic samplers on LightGCN)
# (model, sampler, params, required NDCG@10 gain). The tiny KG's "genre" equals the taste cluster, so KG
# neighbours are mostly *false* negatives there: it must still learn, but by a smaller margin.
FAMILY_RUNS = [
    ("BPR", "uniform", {}, 0.05),
    ("BPR", "dns", {"n_candidates": 8}, 0.05),
    ("LightGCN", "mixgcf", {"n_candidates": 8}, 0.05),
    ("BPR", "irgan", {"dim": 8}, 0.05),
    ("BPR", "pris", {"n_samples": 8}, 0.05),
    ("BPR", "kg_neighbour", {}, 0.01),
    ("BPR", "kgpolicy", {"edge_threshold": 8, "num_random": 8, "num_sample": 8, "dim": 16}, 0.01),
]


def _ndcg(trainer, data, load_best):
    return trainer.evaluate(data, load_best_model=load_best, show_progress=False)["ndcg@10"]


@pytest.mark.parametrize("model_name,sampler_name,params,margin", FAMILY_RUNS, ids=[r[1] for r in FAMILY_RUNS])
def test_short_training_beats_the_untrained_model(model_name, sampler_name, params, margin, tiny_recbole, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole's Trainer writes ./log_tensorboard
    config, train, valid, test, model = tiny_recbole(model_name, epochs=8, eval_step=8, learning_rate=0.01)
    sampler = get_sampler(sampler_name, seed=0, **params)
    context = build_context(train.dataset, heldout_datasets=(valid.dataset, test.dataset),
                            with_kg=sampler.family == "knowledge")
    trainer = NegSamplingTrainer(config, model, sampler, context)
    untrained = _ndcg(trainer, test, load_best=False)
    trainer.fit(train, valid, saved=True, show_progress=False, verbose=False)
    trained = _ndcg(trainer, test, load_best=True)  # RecBole reloads its own checkpoint
    assert trained > untrained + margin, (untrained, trained)
    assert len(trainer.epoch_wall_s) == 8 and len(trainer.false_negative_rate) == 8
    assert all(0.0 <= r <= 1.0 for r in trainer.false_negative_rate)


def test_default_loss_is_recboles_own_calculate_loss(tiny_recbole, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, train, valid, _, model = tiny_recbole("BPR", epochs=1)
    seen = []
    original = type(model).calculate_loss

    def spy(self, interaction):
        seen.append(interaction["neg_item_id"].clone())
        return original(self, interaction)

    monkeypatch.setattr(type(model), "calculate_loss", spy)
    trainer = NegSamplingTrainer(config, model, get_sampler("uniform", seed=0))
    trainer.fit(train, valid, saved=False, show_progress=False, verbose=False)
    assert len(seen) == len(train)  # one RecBole loss call per batch, with our negatives attached
    assert isinstance(trainer.sampler.ctx, object) and trainer.sampler.ctx is not None
    pos_only = PositiveTrainDataLoader(config, train.dataset, train._sampler, shuffle=False)
    assert "neg_item_id" not in next(iter(pos_only)).columns  # RecBole's own negatives are not drawn


def test_predefined_in_low_rating_setting_uses_known_negatives(tiny_dataset, tmp_path):
    cfg = ExperimentConfig(model="BPR", sampler="predefined", dataset="tiny", data_path=str(tiny_dataset),
                           setting="low_ratings_negative", epochs=6, eval_step=6, embedding_size=16,
                           train_batch_size=256, learning_rate=0.01)
    result = run_experiment(cfg, work_dir=tmp_path / "run")
    assert 0.0 < result["test_ndcg@10"] <= 1.0
    assert result["fallback_share"] < 0.5  # most negatives were the users' own low ratings
    with pytest.raises(ConfigError, match="low_ratings_negative"):
        run_experiment(ExperimentConfig(sampler="predefined", dataset="tiny", data_path=str(tiny_dataset)))


def test_nan_loss_raises_training_diverged(tiny_recbole, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, train, valid, _, model = tiny_recbole("BPR", epochs=1)
    with torch.no_grad():
        model.user_embedding.weight.fill_(float("nan"))
    trainer = NegSamplingTrainer(config, model, get_sampler("uniform", seed=0))
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        trainer.fit(train, valid, saved=False, show_progress=False, verbose=False)
