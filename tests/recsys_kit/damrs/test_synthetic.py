import json

import numpy as np
import pandas as pd
import pytest

from recsys_kit.damrs.claims import evaluate
from recsys_kit.damrs.controls import run_control_arm
from recsys_kit.damrs.data import read_manifest, read_split
from recsys_kit.damrs.synthetic import planted_dataset
from shared.errors import ConfigError


def _cosine(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_true_features_carry_the_clusters_and_plant_wrong_rows(tmp_path):
    folder = planted_dataset(tmp_path, "p", n_users=60, n_items=80, n_clusters=4, train_per_user=8,
                             wrong_edge_share=0.25, add_ratio=0.2, feature_users=300, seed=0)
    frame = read_split(folder)
    assert set(frame["split"]) == {"train", "valid", "test"}
    injected = pd.read_csv(folder / "injected.tsv", sep="\t", dtype=str)
    train = frame[frame["split"] == "train"]
    assert len(injected) == round(0.2 * (len(train) - len(injected)))
    assert set(zip(injected["user_id"], injected["item_id"])) <= set(zip(train["user_id"], train["item_id"]))
    clusters = np.arange(80) % 4
    same = clusters[:, None] == clusters[None, :]
    for entry in read_manifest(folder):
        feats = np.load(entry["file"])
        wrong = pd.read_csv(folder / f"wrong_{entry['name']}.tsv", sep="\t")
        assert len(wrong) == 20 and (wrong["row"] != wrong["source_row"]).all()
        untouched = ~wrong["source_row"].isin(wrong["row"])  # a source may itself have been overwritten
        np.testing.assert_array_equal(feats[wrong["row"][untouched]], feats[wrong["source_row"][untouched]])
        sim = _cosine(feats)
        clean = np.setdiff1d(np.arange(80), wrong["row"])
        block = sim[np.ix_(clean, clean)]
        same_c = same[np.ix_(clean, clean)]
        assert block[same_c].mean() > block[~same_c].mean() + 0.3  # true item similarity
    # the two modalities plant their wrong rows independently
    rows = [set(pd.read_csv(folder / f"wrong_{m}.tsv", sep="\t")["row"]) for m in ("text", "image")]
    assert rows[0] != rows[1]


def test_random_features_carry_nothing_and_bad_settings_are_refused(tmp_path):
    folder = planted_dataset(tmp_path, "n", n_users=40, n_items=60, n_clusters=3, train_per_user=6,
                             features="random", add_ratio=0.0, seed=1)
    assert not (folder / "injected.tsv").exists()
    sim = _cosine(np.load(read_manifest(folder)[0]["file"]))
    clusters = np.arange(60) % 3
    same = clusters[:, None] == clusters[None, :]
    assert abs(sim[same].mean() - sim[~same].mean()) < 0.1
    with pytest.raises(ConfigError, match="features must be"):
        planted_dataset(tmp_path, "x", features="images")
    with pytest.raises(ConfigError, match="train_per_user"):
        planted_dataset(tmp_path, "y", train_per_user=1)


SMALL = {"n_users": 150, "n_items": 400, "n_clusters": 8}


def test_small_positive_control_in_the_suite(tmp_path):
    """Sparse planted data, one seed: content DA-MRS far above LightGCN, and w⁺ finds the injected pairs."""
    rows = [run_control_arm(tmp_path / "data", "positive", "sparse", m, 0, 30, tmp_path / "runs", **SMALL)
            for m in ("LightGCN", "DA-MRS")]
    base, ours = rows
    assert ours["test_recall@20"] > base["test_recall@20"] + 0.05, (ours["test_recall@20"], base["test_recall@20"])
    assert ours["w_pos_auc"] > 0.6 and "w_pos_auc" not in base and base["score_auc"] > 0


def test_planted_controls_are_scored():
    rows = []
    for seed, gain, auc in [(0, 0.10, 0.85), (1, 0.12, 0.86), (2, 0.11, 0.84)]:
        common = {"density": "sparse", "train_per_user": 5, "seed": seed}
        rows += [{**common, "control": "positive", "dataset": "control-positive-sparse", "method": m,
                  "test_recall@20": v, **({"w_pos_auc": auc} if m == "DA-MRS" else {})}
                 for m, v in (("LightGCN", 0.1), ("raw-graph", 0.1 + gain / 2), ("DA-MRS", 0.1 + gain))]
        rows += [{**common, "control": "negative", "dataset": "control-negative-sparse", "method": m,
                  "test_recall@20": v} for m, v in (("LightGCN", 0.2), ("DA-MRS", 0.2 + (seed - 1) * 0.01))]
        rows += [{**common, "control": "selfloop", "dataset": "control-selfloop-sparse", "method": m,
                  "test_recall@20": 0.1, "w_pos_auc": v}
                 for m, v in (("DA-MRS", 0.85 + seed * 0.01), ("DA-MRS-noself", 0.5 + (seed - 1) * 0.01))]
    _claims, controls = evaluate({"rows": rows, "profile": "default", "config": {}})
    by_id = {c["id"]: c for c in controls}
    assert not any(i.startswith("damrs-wpos-control") for i in by_id)  # the ml-100k w⁺ control skips these rows
    assert by_id["damrs-planted-positive-sparse"]["passed"]
    assert by_id["damrs-planted-negative-sparse"]["passed"]
    assert by_id["damrs-planted-selfloop-sparse"]["passed"]
    assert "mirrors the collaborative score" in by_id["damrs-planted-selfloop-sparse"]["observed"]
    json.dumps(controls)
