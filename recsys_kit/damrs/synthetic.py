"""Planted-signal datasets for DA-MRS's positive and negative controls (usable to test any multimodal model).

``planted_dataset`` writes a DA-MRS dataset folder (benchmark split files, ``modalities.json``, and
``injected.tsv`` when interaction noise is added) where the truth is known:

- Users prefer one of ``n_clusters`` item clusters: each interaction comes from the user's cluster with
  probability ``affinity``, else from a uniform item. ``train_per_user`` sets the density.
- ``features="true"``: two content modalities that carry the true item similarity, each built from its own
  *held-out* population of ``feature_users`` users drawn from the same process (never the users of the
  split): an item's feature is its profile over those users, reduced by truncated SVD to ``dim``. Then, per
  modality independently, ``wrong_edge_share`` of the items get another random item's feature row: planted
  wrong feature edges that only one modality asserts (the cross-modal consistency mask can remove them).
- ``features="random"``: Gaussian features, unrelated to the clusters (the negative control).
- ``add_ratio``: random (user, item) pairs injected into training only (recorded, so the denoising weight
  can be scored on exactly those pairs).
- ``truth.json`` records every user's and item's cluster, so :func:`planted_ceilings` can say how much any
  model could reach on the folder: the Bayes ranker's test Recall@K, and how well injected pairs can be told
  from genuine ones by the generator's truth, by the content features alone, or by the interactions alone.
  A positive control only tests a method where the backbone is below these ceilings.

Designing a control from the ceilings (before training the method under test): every AUC ceiling is bounded by
``oracle_auc`` ≈ (1 + affinity − 1/n_clusters)/2 (ties count half), because a genuine interaction drawn from a
uniform item looks exactly like an injected one (0.88–0.89 at affinity 0.8: no content ceiling reaches 0.9);
``wrong_edge_share`` lowers ``content_auc`` below it; the density and ``add_ratio`` set how far a backbone
trained on the interactions stays below ``oracle_recall@k``. The benchmark's choices and their numbers are in
:mod:`recsys_kit.damrs.controls`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit.damrs.data import chronological_split, read_manifest, read_split, write_manifest, write_split
from recsys_kit.damrs.noise import add_interactions
from recsys_kit.damrs.prepare import INJECTED_FILE, read_injected
from shared.errors import ConfigError, DataError
from shared.results import atomic_write_text

FEATURE_KINDS = ("true", "random")
TRUTH_FILE = "truth.json"


def _interactions(rng: np.random.Generator, n_users: int, n_items: int, n_clusters: int, per_user: int,
                  affinity: float) -> list[np.ndarray]:
    """Per user, ``per_user`` distinct items: from the user's cluster with probability ``affinity``."""
    clusters = np.arange(n_items) % n_clusters
    members = [np.flatnonzero(clusters == c) for c in range(n_clusters)]
    out = []
    for user in range(n_users):
        own = members[user % n_clusters]
        n_own = min(int(rng.binomial(per_user, affinity)), len(own))
        chosen = set(rng.choice(own, size=n_own, replace=False).tolist())
        while len(chosen) < per_user:
            chosen.add(int(rng.integers(0, n_items)))
        out.append(rng.permutation(np.array(sorted(chosen))))
    return out


def _profile_features(rng: np.random.Generator, n_items: int, n_clusters: int, feature_users: int,
                      feature_per_user: int, affinity: float, dim: int) -> np.ndarray:
    """Item features = truncated SVD of the item × held-out-user interaction matrix."""
    matrix = np.zeros((n_items, feature_users), dtype=np.float32)
    for user, items in enumerate(_interactions(rng, feature_users, n_items, n_clusters, feature_per_user,
                                               affinity)):
        matrix[items, user] = 1.0
    left, values, _ = np.linalg.svd(matrix - matrix.mean(axis=1, keepdims=True), full_matrices=False)
    return (left[:, :dim] * values[:dim]).astype(np.float32)


def planted_dataset(root: str | Path, name: str, *, n_users: int = 300, n_items: int = 200, n_clusters: int = 10,
                    train_per_user: int = 10, affinity: float = 0.8, features: str = "true",
                    wrong_edge_share: float = 0.2, add_ratio: float = 0.2, feature_users: int = 1000,
                    feature_per_user: int = 20, dim: int = 32, seed: int = 0) -> Path:
    """Write ``<root>/<name>/`` (see the module docstring) and return it; cached when already complete."""
    if features not in FEATURE_KINDS:
        raise ConfigError(f"features must be one of {FEATURE_KINDS}, got {features!r}")
    if not 0.0 <= wrong_edge_share <= 1.0 or not 0.0 < affinity <= 1.0:
        raise ConfigError("wrong_edge_share must be in [0, 1] and affinity in (0, 1]")
    per_user = int(round(train_per_user / 0.8))  # the chronological 80/10/10 split leaves ~train_per_user
    if per_user < 3 or per_user >= n_items:
        raise ConfigError(f"train_per_user={train_per_user} needs 3 <= {per_user} total items per user < n_items")
    folder = Path(root) / name
    if (folder / "modalities.json").is_file():
        return folder
    rng = np.random.default_rng(seed)
    rows = [(str(u + 1), str(i + 1), 1.0, float(t)) for u, items in
            enumerate(_interactions(rng, n_users, n_items, n_clusters, per_user, affinity))
            for t, i in enumerate(items)]
    frame = chronological_split(pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]))
    if add_ratio > 0:
        noise = add_interactions(frame, add_ratio, seed + 1)
        frame = noise.frame
        write_split(frame, root, name)
        atomic_write_text(folder / INJECTED_FILE, noise.injected.to_csv(sep="\t", index=False))
    else:
        write_split(frame, root, name)
    tokens = [str(i + 1) for i in range(n_items)]
    atomic_write_text(folder / "tokens.txt", "\n".join(tokens) + "\n")
    truth = {"n_clusters": n_clusters, "item_cluster": {t: i % n_clusters for i, t in enumerate(tokens)},
             "user_cluster": {str(u + 1): u % n_clusters for u in range(n_users)}}  # as in _interactions
    atomic_write_text(folder / TRUTH_FILE, json.dumps(truth) + "\n")
    entries = []
    for modality in ("text", "image"):
        if features == "true":
            feats = _profile_features(rng, n_items, n_clusters, feature_users, feature_per_user, affinity, dim)
            wrong = rng.choice(n_items, size=int(round(wrong_edge_share * n_items)), replace=False)
            sources = (wrong + rng.integers(1, n_items, size=len(wrong))) % n_items
            feats[wrong] = feats[sources].copy()
            atomic_write_text(folder / f"wrong_{modality}.tsv",
                              pd.DataFrame({"row": wrong, "source_row": sources}).to_csv(sep="\t", index=False))
        else:
            feats = rng.normal(size=(n_items, dim)).astype(np.float32)
        np.save(folder / f"{modality}.npy", feats)
        entries.append({"name": modality, "file": f"{modality}.npy", "tokens": "tokens.txt"})
    write_manifest(folder, entries)
    return folder


def _auc(injected: np.ndarray, suspicion: np.ndarray) -> float:
    """AUC of ``suspicion`` for ranking injected pairs above genuine ones (ties count half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(injected, suspicion))


def planted_ceilings(folder: str | Path, k: int = 20) -> dict[str, float]:
    """What any model could reach on a :func:`planted_dataset` folder (no training; seconds).

    - ``oracle_recall@k``: expected test Recall@k of the Bayes ranker, which knows every cluster and ranks the
      user's own-cluster items first (ties in random order), training and validation items masked as RecBole
      masks them for the test split. A backbone at this value leaves no gain for any method to show.
    With injected pairs, AUCs for ranking them above the genuine training pairs (the w⁺ control's measure):
    - ``oracle_auc``: "the item is in the user's cluster" (the generator's truth; the upper bound).
    - ``content_auc``: each modality's feature mapped to the nearest cluster centroid (centroids of the
      folder's own features under the true clusters), the user's cluster read from the votes of their other
      training items, score = share of the item's votes for it — about the best a content-only denoiser can do
      (slightly optimistic: the centroids are fit on the same rows, so random features read ~0.52-0.57).
    - ``feature_auc``: leave-one-out mean cosine of the item's features to the user's other training items,
      averaged over modalities (a content estimator that uses nothing but the model's inputs).
    - ``collab_auc``: leave-one-out item–item cosine on the training interactions, the pair itself removed
      (the collaborative evidence alone).
    """
    folder = Path(folder)
    if not (folder / TRUTH_FILE).is_file():
        raise DataError(f"{folder / TRUTH_FILE} does not exist: ceilings need a folder written by planted_dataset "
                        "(folders cached by an older version lack it; delete the folder to rebuild it)")
    truth = json.loads((folder / TRUTH_FILE).read_text())
    n_clusters = int(truth["n_clusters"])
    item_tokens, user_tokens = list(truth["item_cluster"]), list(truth["user_cluster"])
    item_index = {t: i for i, t in enumerate(item_tokens)}
    user_index = {t: u for u, t in enumerate(user_tokens)}
    item_cl = np.array([truth["item_cluster"][t] for t in item_tokens])
    user_cl = np.array([truth["user_cluster"][t] for t in user_tokens])
    n_users, n_items = len(user_tokens), len(item_tokens)
    frame = read_split(folder)
    idx = {split: (frame.loc[frame["split"] == split, "user_id"].map(user_index).to_numpy(),
                   frame.loc[frame["split"] == split, "item_id"].map(item_index).to_numpy())
           for split in ("train", "valid", "test")}
    seen = np.zeros((n_users, n_items), dtype=bool)
    for split in ("train", "valid"):
        seen[idx[split]] = True
    own = user_cl[:, None] == item_cl[None, :]
    n_own = (own & ~seen).sum(1)
    n_other = (~own & ~seen).sum(1)
    tu, ti = idx["test"]
    hit = np.where(own[tu, ti], np.minimum(1.0, k / np.maximum(n_own[tu], 1)),
                   np.maximum(0, k - n_own[tu]) / np.maximum(n_other[tu], 1))
    per_user = pd.Series(hit).groupby(tu).mean()
    out = {f"oracle_recall@{k}": float(per_user.mean())}
    if not (folder / INJECTED_FILE).is_file():
        return out
    u, i = idx["train"]
    injected_keys = set(zip(*(read_injected(folder)[c].map(m).to_numpy()
                              for c, m in (("user_id", user_index), ("item_id", item_index)))))
    label = np.array([pair in injected_keys for pair in zip(u.tolist(), i.tolist())])
    if label.all() or not label.any():
        return out
    out["oracle_auc"] = _auc(label, -(item_cl[i] == user_cl[u]).astype(float))
    train = np.zeros((n_users, n_items))
    train[u, i] = 1.0
    n_u = train.sum(1)[u]
    feats = []
    for entry in read_manifest(folder):
        x = np.load(entry["file"]).astype(np.float64)
        feats.append(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    loo = [((train @ x)[u] * x[i]).sum(1) - 1.0 for x in feats]  # Σ_{j ∈ train(u), j ≠ i} cos(i, j)
    out["feature_auc"] = _auc(label, -np.mean(loo, 0) / np.maximum(n_u - 1, 1))
    votes = np.zeros((n_items, n_clusters))
    for x in feats:
        centroids = np.stack([x[item_cl == c].mean(0) for c in range(n_clusters)])
        votes[np.arange(n_items), (x @ centroids.T).argmax(1)] += 1.0
    user_votes = (train @ votes)[u] - votes[i]  # the user's other training items
    out["content_auc"] = _auc(label, -(user_votes * votes[i]).sum(1) / np.maximum(user_votes.sum(1), 1.0))
    co = train.T @ train  # co-user counts, pair (u, i) included
    inv = 1.0 / np.sqrt(np.maximum(np.diag(co) - 1.0, 1.0))  # degrees without user u
    np.fill_diagonal(co, 0.0)
    raw = (train @ (co * inv[:, None] * inv[None, :]))[u, i]  # Σ_{j ∈ train(u)} C_ij / norm
    out["collab_auc"] = _auc(label, -(raw - inv[i] * ((train @ inv)[u] - inv[i])))  # minus user u's own co-counts
    return out
