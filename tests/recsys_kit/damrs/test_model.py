import dataclasses

import pytest
import torch

from recsys_kit.damrs.data import read_manifest
from recsys_kit.damrs.model import DAMRS
from recsys_kit.damrs.train import DAMRSConfig, TrainConfig, recbole_settings, train_damrs
from recsys_kit.recbole_compat import recbole_config
from shared.errors import ConfigError


def _build(folder, tmp_path, **model_overrides):
    from recbole.data import create_dataset, data_preparation

    cfg = TrainConfig(model=DAMRSConfig(embedding_size=8, **model_overrides), train_batch_size=64, seed=0)
    settings = recbole_settings(cfg, tmp_path / "ckpt")
    entries = read_manifest(folder)
    settings["modality_files"] = [e["file"] for e in entries]
    settings["modality_token_files"] = [e["tokens"] for e in entries]
    config = recbole_config(DAMRS, dataset=folder.name, data_path=folder.parent, config_dict=settings)
    train, _, _ = data_preparation(config, create_dataset(config))
    return DAMRS(config, train.dataset), train


@pytest.mark.parametrize("backbone", ["lightgcn", "mf", "vbpr"])
def test_shapes_finite_losses_and_gradients(tiny_dataset, tmp_path, backbone):
    model, train = _build(tiny_dataset, tmp_path, backbone=backbone, ai_num_pos=3, knn_k=4)
    assert model.view_names == ["a", "b", "behaviour"]
    batch = next(iter(train))
    parts = model.calculate_loss(batch)
    assert set(model.last_losses) == ({"bpr", "au", "ai"} | ({"reg"} if backbone != "lightgcn" else set()))
    loss = sum(parts)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.item_embedding.weight.grad.abs().sum() > 0
    assert model.item_embedding.weight.grad[0].abs().sum() == 0  # PAD never receives gradient
    model.eval()
    scores = model.full_sort_predict(batch)
    n_users = torch.unique(batch[model.USER_ID]).numel()
    assert scores.numel() == batch[model.USER_ID].numel() * model.n_items and n_users > 0
    pair = model.predict(batch)
    manual = model.full_sort_predict(batch).view(-1, model.n_items)
    rows = torch.arange(batch[model.USER_ID].numel())
    torch.testing.assert_close(pair, manual[rows, batch[model.ITEM_ID]], rtol=1e-4, atol=1e-5)


def test_consistency_changes_the_content_graphs(tiny_dataset, tmp_path):
    diig, _ = _build(tiny_dataset, tmp_path, knn_k=5)
    iig, _ = _build(tiny_dataset, tmp_path, knn_k=5, use_consistency=False)
    assert diig.graph_stats["mask_removed_fraction"] > 0
    assert {"mean_cosine_a", "mean_cosine_b", "edges_behaviour"} <= set(diig.graph_stats)
    assert any(not torch.equal(a.indices, b.indices) for a, b in zip(diig.graphs[:2], iig.graphs[:2]))


def test_plain_backbone_has_no_views_and_components_need_views(tiny_dataset, tmp_path):
    plain, train = _build(tiny_dataset, tmp_path, use_content_graphs=False, use_iib=False, use_dbpr=False,
                          kl_weight=0.0, neighbor_weight=0.0)
    assert plain.graphs == []
    plain.calculate_loss(next(iter(train)))
    assert set(plain.last_losses) == {"bpr"}
    with pytest.raises(ConfigError, match="need item views"):
        _build(tiny_dataset, tmp_path, use_content_graphs=False, use_iib=False)


def test_one_epoch_smoke_run_saves_config(tiny_dataset, tmp_path):
    cfg = TrainConfig(model=DAMRSConfig(embedding_size=8, ai_num_pos=3), epochs=1, train_batch_size=128, seed=0)
    result = train_damrs(tiny_dataset, cfg, tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert 0.0 <= result.test["recall@20"] <= 1.0 and result.epochs_run == 1
    with pytest.raises(ConfigError, match="unknown modality"):
        train_damrs(tiny_dataset, dataclasses.replace(cfg, modalities=["audio"]), tmp_path / "run2")
