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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit.damrs.data import chronological_split, write_manifest, write_split
from recsys_kit.damrs.noise import add_interactions
from recsys_kit.damrs.prepare import INJECTED_FILE
from shared.errors import ConfigError
from shared.results import atomic_write_text

FEATURE_KINDS = ("true", "random")


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
