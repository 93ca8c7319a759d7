"""Shared fixtures: a small ML100K-T2 subsample prepared once for the whole transition2 test folder."""

from __future__ import annotations

import pytest
import torch

from recsys_kit.transition2.data import BuildConfig
from recsys_kit.transition2.train import TrainConfig, prepare


@pytest.fixture(scope="session")
def small_config(tmp_path_factory) -> TrainConfig:
    """ML100K-T2 restricted to 150 seeded users, short sequences, a small model."""
    data_dir = tmp_path_factory.mktemp("t2data")
    return TrainConfig(build=BuildConfig(max_users=150, name="T2-small"), data_dir=str(data_dir), max_seq_length=12,
                       hidden_size=16, model={"inner_size": 32})


@pytest.fixture(scope="session")
def prepared(small_config):
    """The prepared (RecBole config + LS splits) small dataset."""
    torch.set_num_threads(1)
    return prepare(small_config)
