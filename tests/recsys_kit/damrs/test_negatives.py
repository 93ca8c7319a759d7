"""The negatives convention: uniform over items not in the user's *training* interactions, the same for every arm."""

import torch

from recsys_kit.damrs.bench import PROFILES, arm_config
from recsys_kit.damrs.model import DAMRS
from recsys_kit.damrs.train import NEGATIVES, TrainConfig, recbole_settings
from recsys_kit.recbole_compat import recbole_config


def test_every_arm_uses_the_same_negatives(tmp_path):
    arms = {m for profile in PROFILES.values() for methods in profile["plan"].values() for m in methods}
    settings = [recbole_settings(TrainConfig(model=arm_config(m)), tmp_path)["train_neg_sample_args"] for m in arms]
    assert all(s == NEGATIVES for s in settings) and NEGATIVES["distribution"] == "uniform"


def test_negatives_avoid_training_items_only(tiny_dataset, tmp_path):
    from recbole.data import create_dataset, data_preparation

    settings = recbole_settings(TrainConfig(train_batch_size=64, seed=0), tmp_path)
    settings["use_content_graphs"] = False
    config = recbole_config(DAMRS, dataset=tiny_dataset.name, data_path=tiny_dataset.parent, config_dict=settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    field = train.dataset
    train_pairs = set(zip(field.inter_feat["user_id"].tolist(), field.inter_feat["item_id"].tolist()))
    held = set()
    for part in (valid, test):
        held |= set(zip(part.dataset.inter_feat["user_id"].tolist(), part.dataset.inter_feat["item_id"].tolist()))
    drawn = []
    for _ in range(20):
        for batch in train:
            drawn += list(zip(batch["user_id"].tolist(), batch["neg_item_id"].tolist()))
    assert not set(drawn) & train_pairs
    assert set(drawn) & held  # held-out items are not excluded (RecBole's convention, documented)
    assert all(i > 0 for _, i in drawn) and isinstance(batch["neg_item_id"], torch.Tensor)
