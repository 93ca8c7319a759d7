"""Seeded, recorded noise injection (brief §5 "noisy scenarios", §8.2): add / delete feedback, replace content.

Unlike the official scripts these are seeded and non-cumulative, touch only the training split, and return
what they injected so the denoiser can be scored on exactly those pairs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from shared.errors import ConfigError, DataError


@dataclasses.dataclass
class FeedbackNoise:
    """The split after noise plus the (user, item) pairs that were added or deleted."""

    frame: pd.DataFrame
    injected: pd.DataFrame  # columns user_id, item_id (added pairs, or deleted rows)
    kind: str
    ratio: float
    seed: int


def _check_ratio(ratio: float, upper: float) -> None:
    if not 0.0 <= ratio <= upper:
        raise ConfigError(f"noise ratio must be in [0, {upper}], got {ratio}")


def add_interactions(frame: pd.DataFrame, ratio: float, seed: int) -> FeedbackNoise:
    """Add ``ratio·|train|`` uniformly random (user, item) pairs unobserved in ANY split to the training split."""
    _check_ratio(ratio, 5.0)
    train = frame[frame["split"] == "train"]
    if train.empty:
        raise DataError("cannot inject noise: the training split is empty")
    users = np.array(sorted(frame["user_id"].unique()))
    items = np.array(sorted(frame["item_id"].unique()))
    seen = set(zip(frame["user_id"], frame["item_id"]))
    target = int(round(ratio * len(train)))
    capacity = len(users) * len(items) - len(seen)
    if target > capacity:
        raise ConfigError(f"cannot add {target} interactions: only {capacity} unobserved pairs exist")
    rng = np.random.default_rng(seed)
    added: list[tuple[str, str]] = []
    chosen: set[tuple[str, str]] = set()
    while len(added) < target:
        need = target - len(added)
        u = users[rng.integers(0, len(users), 2 * need + 16)]
        i = items[rng.integers(0, len(items), 2 * need + 16)]
        for pair in zip(u.tolist(), i.tolist()):
            if pair not in seen and pair not in chosen:
                chosen.add(pair)
                added.append(pair)
                if len(added) == target:
                    break
    injected = pd.DataFrame(added, columns=["user_id", "item_id"])
    # noisy rows get the median train timestamp and rating 0 so they are recognisable in the files
    extra = injected.assign(rating=0.0, timestamp=float(train["timestamp"].median()), split="train")
    noisy = pd.concat([frame, extra[frame.columns]], ignore_index=True)
    return FeedbackNoise(noisy, injected, "add", ratio, seed)


def delete_interactions(frame: pd.DataFrame, ratio: float, seed: int) -> FeedbackNoise:
    """Drop ``ratio·|train|`` random training rows (valid and test untouched)."""
    _check_ratio(ratio, 1.0)
    train_index = frame.index[frame["split"] == "train"].to_numpy()
    rng = np.random.default_rng(seed)
    drop = rng.choice(train_index, size=int(round(ratio * len(train_index))), replace=False)
    if len(drop) == len(train_index):
        raise ConfigError("deleting every training interaction leaves nothing to train on")
    deleted = frame.loc[np.sort(drop), ["user_id", "item_id"]].reset_index(drop=True)
    return FeedbackNoise(frame.drop(index=drop).reset_index(drop=True), deleted, "delete", ratio, seed)


@dataclasses.dataclass
class ContentNoise:
    """Features after replacement and, for each replaced row, the row whose feature it received."""

    features: np.ndarray
    replaced_rows: np.ndarray
    source_rows: np.ndarray
    ratio: float
    seed: int


def replace_modality_rows(features: np.ndarray, ratio: float, seed: int) -> ContentNoise:
    """Overwrite ``ratio·N`` random rows with the row of another random item (a fresh copy each call)."""
    _check_ratio(ratio, 1.0)
    n = features.shape[0]
    if n < 2:
        raise DataError("content noise needs at least two items")
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=int(round(ratio * n)), replace=False)
    sources = (rows + rng.integers(1, n, size=len(rows))) % n  # never the row itself
    noisy = np.array(features, copy=True)
    noisy[rows] = features[sources]
    return ContentNoise(noisy, np.sort(rows), sources[np.argsort(rows)], ratio, seed)
