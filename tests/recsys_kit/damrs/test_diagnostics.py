import pandas as pd
import pytest
import torch

from recsys_kit.damrs.diagnostics import injected_pair_scores
from recsys_kit.damrs.train import DAMRSConfig, TrainConfig, train_damrs
from shared.errors import ConfigError


def test_injected_pair_scores_on_a_backbone_without_item_views(tiny_dataset, tmp_path):
    """The plain backbone has no item views (no w⁺): score its own predictions instead of crashing."""
    cfg = TrainConfig(model=DAMRSConfig.plain_backbone("lightgcn", embedding_size=8), epochs=1,
                      train_batch_size=128, seed=0)
    result = train_damrs(tiny_dataset, cfg, tmp_path / "run")
    train = pd.read_csv(tiny_dataset / "tiny.train.inter", sep="\t", dtype=str)
    injected = train.iloc[:10, :2].set_axis(["user_id", "item_id"], axis=1)
    out = injected_pair_scores(result, injected)
    assert 0.0 <= out["score_auc"] <= 1.0 and out["n_injected_found"] == 10
    assert "w_pos_auc" not in out  # no denoising weight exists on this model
    with pytest.raises(ConfigError, match="no item views"):
        result.model.positive_weights(torch.tensor([1]), torch.tensor([1]))
