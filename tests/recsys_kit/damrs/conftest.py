"""A tiny synthetic DA-MRS dataset folder (benchmark files + two modalities) shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_kit.damrs.data import chronological_split, write_manifest, write_split


def tiny_frame(n_users: int = 30, n_items: int = 40, per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    """Users who prefer one of two item clusters, with timestamps, as string tokens."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = u % 2
        pool = np.arange(n_items)[np.arange(n_items) % 2 == cluster]
        items = rng.choice(pool, size=per_user, replace=False)
        for t, i in enumerate(items):
            rows.append((str(u + 1), str(i + 1), 1.0, float(1000 * u + t)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """``<tmp>/data/tiny/`` with splits and two modalities (a cluster-aligned one and a noisy one)."""
    frame = chronological_split(tiny_frame())
    folder = write_split(frame, tmp_path / "data", "tiny")
    rng = np.random.default_rng(1)
    n_items = 40
    tokens = [str(i + 1) for i in range(n_items)]
    cluster = np.array([[1.0, 0.0] if i % 2 == 0 else [0.0, 1.0] for i in range(n_items)])
    np.save(folder / "a.npy", (cluster + 0.3 * rng.normal(size=(n_items, 2))).astype(np.float32))
    np.save(folder / "b.npy", rng.normal(size=(n_items, 8)).astype(np.float32))
    (folder / "tokens.txt").write_text("\n".join(tokens) + "\n")
    write_manifest(folder, [{"name": "a", "file": "a.npy", "tokens": "tokens.txt"},
                            {"name": "b", "file": "b.npy", "tokens": "tokens.txt"}])
    return folder
