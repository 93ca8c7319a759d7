"""Context-free reference scorers for reading an AUC (issue 23): what AUC does a scorer get that reads no emotion,
no text and no model?

* ``popularity``: an item's score is how often it is a recommendation target in the *training* samples. On real
  ReDial disliked suggestions are more popular than liked ones (recommenders suggest well-known films, which
  seekers have often seen and sometimes disliked), so this scorer sits *below* 0.5; a recommender that has learnt
  little beyond the target marginal (p(gold) tracks popularity) inherits that AUC.
* ``in-context``: the score is how often the gold item was already mentioned in the context (liked movies are
  more often repeated in ReDial than disliked ones).

Both give p(gold)-like scores and 0-based ranks among the items, so the same metrics apply to them as to a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from recsys_kit.ecr.rec.metrics import rank_metrics
from recsys_kit.ecr.rec.samples import RecSample, require_samples
from shared.errors import ConfigError, DataError

REFERENCES = ("popularity", "in-context")


def reference_scores(name: str, train: Sequence[RecSample], test: Sequence[RecSample],
                     item_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(score of each test sample's gold item (n,), 0-based rank of the gold among ``item_ids`` (n,)).

    Ranks count the items with a strictly higher score (ties favour the gold, as in the model's evaluation)."""
    require_samples(test, "evaluation")
    items = np.asarray(item_ids, dtype=np.int64)
    if name == "popularity":
        require_samples(train, "training")
        counts = Counter(s.target for s in train)
        table = np.array([counts.get(int(e), 0) for e in items], dtype=float)  # same ranking for every sample
        gold = np.array([counts.get(s.target, 0) for s in test], dtype=float)
        ranks = (table[None, :] > gold[:, None]).sum(axis=1)
    elif name == "in-context":
        gold = np.array([sum(m.entity == s.target for m in s.mentions) for s in test], dtype=float)
        # only the context's own mentions score above 0: the gold's rank is the number of context items
        # (non-item entities such as genres are not candidates) mentioned more often than it
        candidates = set(items.tolist())
        ranks = np.array([sum(c > g for e, c in Counter(m.entity for m in s.mentions).items() if e in candidates)
                          for s, g in zip(test, gold)])
    else:
        raise ConfigError(f"unknown reference scorer {name!r}; choose from {REFERENCES}")
    return gold, ranks


def reference_metrics(name: str, train: Sequence[RecSample], test: Sequence[RecSample],
                      item_ids: Sequence[int], batch_size: int = 32) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The model metrics (AUC, RT@n, R@n, …) of a reference scorer, plus per-instance values for bootstraps."""
    gold, ranks = reference_scores(name, train, test, item_ids)
    feedback = [s.feedback for s in test]
    metrics = rank_metrics(ranks, gold, feedback, batch_size=batch_size)
    return metrics, {"ranks": ranks, "gold_prob": gold, "feedback": np.array(feedback)}


def popularity_spearman(train: Sequence[RecSample], test: Sequence[RecSample], gold_prob: Sequence[float]) -> float:
    """Spearman correlation of a model's p(gold) with the gold's training popularity (near 1: the model ranks
    by the target marginal and reads little from the context). NaN when either side is constant."""
    from scipy.stats import spearmanr

    counts = Counter(s.target for s in train)
    popularity = np.array([counts.get(s.target, 0) for s in test], dtype=float)
    prob = np.asarray(gold_prob, dtype=float)
    if len(prob) != len(popularity):
        raise DataError(f"{len(prob)} probabilities for {len(popularity)} test samples")
    if len(prob) < 2 or np.ptp(popularity) == 0 or np.ptp(prob) == 0:
        return float("nan")
    return float(spearmanr(prob, popularity)[0])
