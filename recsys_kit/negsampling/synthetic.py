"""Planted near-duplicate items: a dataset where hard negatives matter (positive control) or cannot (negative).

Items come in ``n_clusters`` clusters, each split into two *twin groups* of ``items_per_side`` items. Every user
belongs to one cluster and one side. With ``planted=True`` a user's interactions come from the own side with
probability ``own_share`` and from the twin group otherwise, so the twin group is a near duplicate of the own
group (the same users interact with both) but ranks below it for that user. Uniform negatives come almost
always from other clusters (probability ``1 - 1/n_clusters``), which separates clusters but hardly ever the
twins; a hard-negative sampler picks the twin items (the highest-scored non-positives) and learns the side.
With ``planted=False`` the side carries nothing (each interaction picks either group at random): there is
nothing for hard negatives to find, so their gain over uniform must vanish.

Written as RecBole atomic files ``<root>/<name>/<name>.inter`` (user_id, item_id, rating, timestamp), so any
RecBole model and any sampler of the zoo run on it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.errors import ConfigError
from shared.results import atomic_write_text


def near_duplicate_dataset(root: str | Path, name: str, *, planted: bool = True, n_clusters: int = 20,
                           items_per_side: int = 25, users_per_group: int = 10, per_user: int = 15,
                           own_share: float = 0.75, seed: int = 0) -> Path:
    """Write the dataset folder (cached when present) and return it."""
    if not 0.5 <= own_share <= 1.0:
        raise ConfigError(f"own_share must be in [0.5, 1] (the own side is the preferred one), got {own_share}")
    if per_user > 2 * items_per_side or per_user < 3:
        raise ConfigError(f"per_user must be in [3, 2 * items_per_side = {2 * items_per_side}], got {per_user}")
    folder = Path(root) / name
    path = folder / f"{name}.inter"
    if path.is_file():
        return folder
    rng = np.random.default_rng(seed)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    user = 0
    for cluster in range(n_clusters):
        for side in (0, 1):
            groups = [cluster * 2 * items_per_side + s * items_per_side + np.arange(items_per_side)
                      for s in (0, 1)]
            for _ in range(users_per_group):
                user += 1
                share = own_share if planted else 0.5
                n_own = min(int(rng.binomial(per_user, share)), items_per_side)
                n_twin = min(per_user - n_own, items_per_side)
                items = np.concatenate([rng.choice(groups[side], n_own, replace=False),
                                        rng.choice(groups[1 - side], n_twin, replace=False)])
                for t, item in enumerate(rng.permutation(items)):
                    lines.append(f"{user}\t{item + 1}\t1\t{t}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return folder
