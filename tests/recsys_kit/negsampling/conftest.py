"""Fixtures: a toy sampling context and a tiny clustered RecBole atomic dataset (with ratings, .kg, .link)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys_kit.negsampling import context_from_arrays


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors on a shared 2-core machine: one thread avoids OpenMP spin contention (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


N_CLUSTERS, USERS_PER_CLUSTER, ITEMS_PER_CLUSTER = 4, 25, 30


@pytest.fixture
def toy_context():
    """50 users x 80 items (id 0 = [PAD]), ~15 random positives per user, Zipf-like item counts."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(1, 50):
        chosen = rng.choice(np.arange(1, 80), size=rng.integers(5, 25), replace=False,
                            p=None)
        users += [user] * len(chosen)
        items += list(chosen)
    return context_from_arrays(np.array(users), np.array(items), 50, 80)


class ScoreTable(torch.nn.Module):
    """A RecBole-like MF whose embeddings are fixed by the test (scores known exactly)."""

    USER_ID, ITEM_ID, NEG_ITEM_ID = "user_id", "item_id", "neg_item_id"

    def __init__(self, user_e: torch.Tensor, item_e: torch.Tensor) -> None:
        super().__init__()
        self.user_embedding = torch.nn.Embedding.from_pretrained(user_e, freeze=False)
        self.item_embedding = torch.nn.Embedding.from_pretrained(item_e, freeze=False)


@pytest.fixture
def score_model(toy_context):
    """MF with random embeddings sized for ``toy_context``."""
    gen = torch.Generator().manual_seed(1)
    return ScoreTable(torch.randn(50, 8, generator=gen), torch.randn(80, 8, generator=gen))


def write_tiny_dataset(root: Path, name: str = "tiny", seed: int = 0) -> Path:
    """4 taste clusters: users rate ~60% of their cluster's items 4-5 and a few other items 1-2; KG genre facts."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    t = 0
    for cluster in range(N_CLUSTERS):
        cluster_items = np.arange(cluster * ITEMS_PER_CLUSTER, (cluster + 1) * ITEMS_PER_CLUSTER)
        others = np.setdiff1d(np.arange(N_CLUSTERS * ITEMS_PER_CLUSTER), cluster_items)
        for u in range(USERS_PER_CLUSTER):
            user = f"u{cluster}_{u}"
            for item in rng.choice(cluster_items, size=18, replace=False):
                t += 1
                lines.append(f"{user}\ti{item}\t{rng.integers(4, 6)}\t{t}")
            for item in rng.choice(others, size=3, replace=False):
                t += 1
                lines.append(f"{user}\ti{item}\t{rng.integers(1, 3)}\t{t}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    n_items = N_CLUSTERS * ITEMS_PER_CLUSTER
    link = ["item_id:token\tentity_id:token"] + [f"i{i}\te{i}" for i in range(n_items)]
    (folder / f"{name}.link").write_text("\n".join(link) + "\n")
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    kg += [f"e{i}\tgenre\tg{i // ITEMS_PER_CLUSTER}" for i in range(n_items)]
    kg += [f"e{i}\tdirector\td{i % 7}" for i in range(0, n_items, 3)]
    (folder / f"{name}.kg").write_text("\n".join(kg) + "\n")
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """Folder containing ``tiny/tiny.inter`` (+ .kg, .link)."""
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture
def tiny_recbole(tiny_dataset, tmp_path):
    """Factory: (config, train, valid, test, model) for RecBole's own BPR or LightGCN on the tiny dataset."""

    def build(model_name: str = "BPR", **overrides):
        from recbole.data import create_dataset, data_preparation
        from recbole.model.general_recommender import BPR, LightGCN
        from recbole.utils import init_seed

        from recsys_kit.negsampling.experiment import ExperimentConfig, recbole_dict
        from recsys_kit.recbole_compat import recbole_config

        cfg = ExperimentConfig(model=model_name, dataset="tiny", data_path=str(tiny_dataset), embedding_size=16,
                               n_layers=1, train_batch_size=256, **overrides)
        model_cls = {"BPR": BPR, "LightGCN": LightGCN}[model_name]
        config = recbole_config(model_cls, dataset="tiny", data_path=tiny_dataset,
                                config_dict=recbole_dict(cfg, tmp_path / "ckpt"))
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        return config, train, valid, test, model_cls(config, train.dataset)

    return build
