import json

import numpy as np
import pandas as pd
import pytest

from recsys_kit.damrs.claims import evaluate
from recsys_kit.damrs.controls import run_control_arm
from recsys_kit.damrs.data import read_manifest, read_split
from recsys_kit.damrs.synthetic import TRUTH_FILE, planted_ceilings, planted_dataset
from shared.errors import ConfigError, DataError


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


def test_ceilings_say_what_any_model_could_reach(tmp_path):
    """Bayes ranker's Recall@20 and the injected-pair AUC ceilings, checked against hand computations."""
    folder = planted_dataset(tmp_path, "c", n_users=40, n_items=40, n_clusters=4, train_per_user=4, affinity=1.0,
                             wrong_edge_share=0.0, add_ratio=0.25, feature_users=400, seed=0)
    truth = json.loads((folder / TRUTH_FILE).read_text())
    frame = read_split(folder)
    injected = pd.read_csv(folder / "injected.tsv", sep="\t", dtype=str)
    pairs = set(zip(injected["user_id"], injected["item_id"]))
    genuine = [(u, i) for u, i in zip(frame["user_id"], frame["item_id"]) if (u, i) not in pairs]
    # affinity 1: every genuine interaction is in the user's cluster (the truth file matches the generator)
    assert all(truth["item_cluster"][i] == truth["user_cluster"][u] for u, i in genuine)
    ceilings = planted_ceilings(folder)
    # 10 items per cluster, < 20 of them unseen: the oracle's top 20 holds every own-cluster test item
    assert ceilings["oracle_recall@20"] == pytest.approx(1.0)
    in_cluster = np.mean([truth["item_cluster"][i] == truth["user_cluster"][u] for u, i in pairs])
    assert ceilings["oracle_auc"] == pytest.approx(1 - in_cluster / 2)  # genuine all in-cluster; ties count half
    assert ceilings["content_auc"] > ceilings["oracle_auc"] - 0.1  # clean true features recover the clusters
    assert 0.0 <= ceilings["feature_auc"] <= 1.0 and 0.0 <= ceilings["collab_auc"] <= 1.0
    clean = planted_dataset(tmp_path, "n", n_users=40, n_items=40, n_clusters=4, train_per_user=4, add_ratio=0.0,
                            feature_users=400, seed=0)
    assert set(planted_ceilings(clean)) == {"oracle_recall@20"}  # nothing injected: no AUC ceilings
    (clean / TRUTH_FILE).unlink()
    with pytest.raises(DataError, match="truth.json"):
        planted_ceilings(clean)


def test_wrong_feature_edges_lower_the_content_ceiling_not_the_oracle(tmp_path):
    common = {"n_users": 200, "n_items": 200, "n_clusters": 10, "train_per_user": 5, "add_ratio": 0.2,
              "feature_users": 500, "seed": 3}
    clean = planted_ceilings(planted_dataset(tmp_path, "a", wrong_edge_share=0.0, **common))
    noisy = planted_ceilings(planted_dataset(tmp_path, "b", wrong_edge_share=0.6, **common))
    assert noisy["oracle_auc"] == pytest.approx(clean["oracle_auc"])  # same interactions, same truth
    assert noisy["content_auc"] < clean["content_auc"] - 0.05
    assert noisy["feature_auc"] < clean["feature_auc"] - 0.05


SMALL = {"n_users": 150, "n_items": 400, "n_clusters": 8}


def test_small_positive_control_in_the_suite(tmp_path):
    """Sparse planted data, one seed: content DA-MRS far above LightGCN, and w⁺ finds the injected pairs."""
    rows = [run_control_arm(tmp_path / "data", "positive", "sparse", m, 0, 30, tmp_path / "runs", **SMALL)
            for m in ("LightGCN", "DA-MRS")]
    base, ours = rows
    assert ours["test_recall@20"] > base["test_recall@20"] + 0.05, (ours["test_recall@20"], base["test_recall@20"])
    assert ours["w_pos_auc"] > 0.6 and "w_pos_auc" not in base and base["score_auc"] > 0
    assert ours["view_auc"] > 0.6 and "view_auc" not in base  # what the learned views know, before the w⁺ formula
    for row in rows:  # every control row says what any model could reach on its data
        assert 0.0 < row["ceiling_oracle_recall@20"] <= 1.0
        assert row["ceiling_oracle_auc"] >= row["ceiling_content_auc"] - 0.05


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
    assert "Ceilings" not in by_id["damrs-planted-positive-sparse"]["observed"]  # rows without ceiling_* fields
    json.dumps(controls)


def test_planted_controls_name_a_backbone_at_the_bayes_ceiling_and_a_selfloop_that_does_not_matter():
    """Dense data where LightGCN already ranks like the oracle: the control says no arm can beat it."""
    rows = []
    for seed, jitter in zip((0, 1, 2), (0.004, -0.003, 0.0)):
        common = {"density": "dense", "train_per_user": 20, "seed": seed, "ceiling_oracle_recall@20": 0.517 + jitter,
                  "ceiling_content_auc": 0.80, "ceiling_collab_auc": 0.78, "ceiling_oracle_auc": 0.89}
        rows += [{**common, "control": "positive", "dataset": "control-positive-dense", "method": m,
                  "test_recall@20": v + jitter, **({"w_pos_auc": 0.85 + jitter} if m != "LightGCN" else {})}
                 for m, v in (("LightGCN", 0.52), ("raw-graph", 0.505), ("DA-MRS", 0.51))]
        rows += [{**common, "control": "selfloop", "dataset": "control-selfloop-dense", "method": m,
                  "test_recall@20": 0.5, "w_pos_auc": v + jitter}
                 for m, v in (("DA-MRS", 0.83), ("DA-MRS-noself", 0.79))]
    _claims, controls = evaluate({"rows": rows, "profile": "default", "config": {}})
    by_id = {c["id"]: c for c in controls}
    positive = by_id["damrs-planted-positive-dense"]
    assert not positive["passed"] and positive["backbone_at_ceiling"]
    assert "LightGCN is at the ceiling" in positive["observed"] and "0.8 bar is at or above" in positive["observed"]
    selfloop = by_id["damrs-planted-selfloop-dense"]
    assert not selfloop["passed"] and "with and without the self-loop" in selfloop["observed"]
    assert "AUC 0.780" in selfloop["observed"]
