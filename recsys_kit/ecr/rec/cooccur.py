"""The global emotion-aware co-occurrence matrix P(e_i | e_j) (brief §2.2 "Global", ``co_appear.py``).

From the *training* conversations only: for every ordered pair of mentions (e_j earlier, e_i later, e_i ≠ e_j)
whose emotion-label lists share at least one label, count c(j→i); rows are normalised to probabilities.
Stored sparse (CSR) instead of the code's dense |E|-length vector per local entity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recsys_kit.ecr.rec.samples import EntityMention


def cooccurrence_matrix(conversations: Sequence[Sequence[EntityMention]], n_entities: int) -> sp.csr_matrix:
    """Row-normalised (n_entities, n_entities) CSR matrix with ``P[j, i] = c(j→i) / Σ_i' c(j→i')``."""
    rows, cols = [], []
    for mentions in conversations:
        if len(mentions) < 2:
            continue
        entities = np.array([m.entity for m in mentions], dtype=np.int64)
        masks = np.array([sum(1 << label for label in m.labels) for m in mentions], dtype=np.int64)
        share = (masks[:, None] & masks[None, :]) != 0  # (n, n) emotion overlap
        earlier = np.triu(np.ones_like(share), k=1)  # j < i: j earlier than i
        j, i = np.nonzero(share & earlier & (entities[:, None] != entities[None, :]))
        rows.append(entities[j])
        cols.append(entities[i])
    if not rows:
        return sp.csr_matrix((n_entities, n_entities), dtype=np.float32)
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sp.coo_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n_entities, n_entities)).tocsr()
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ counts)
