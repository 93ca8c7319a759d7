"""Item–item graphs of DA-MRS (brief §2.1): consistency-masked kNN content graphs and the behaviour graph.

Graphs are returned as neighbour lists — ``(indices, weights)`` of shape ``(N, k)`` with weight 0 on padding
slots — so propagation is a gather (``Σ_k w_ik · E[idx_ik]``) whose backward is a cheap ``index_add``, and so
building never holds more than one ``(chunk, N)`` block of similarities per modality: a 25k-item catalogue
with three modalities stays at a few hundred MB.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from shared.errors import DataError


@dataclasses.dataclass
class NeighbourGraph:
    """A directed item graph as padded neighbour lists; row ``i`` lists the items ``i`` aggregates from."""

    indices: torch.Tensor  # (N, k) long; padding slots point at 0 with weight 0
    weights: torch.Tensor  # (N, k) float; D^-1/2 A D^-1/2 with A binary

    @property
    def n_edges(self) -> int:
        """Number of real (non-padding) edges."""
        return int((self.weights > 0).sum())

    def propagate(self, embeddings: torch.Tensor, layers: int = 1) -> torch.Tensor:
        """``Â^layers · E`` for ``E`` of shape (N, d)."""
        out = embeddings
        for _ in range(layers):
            gathered = out[self.indices]  # (N, k, d)
            out = (gathered * self.weights.unsqueeze(-1)).sum(dim=1)  # (N, d)
        return out

    def to_dense(self) -> torch.Tensor:
        """The (N, N) normalised adjacency (tests and small catalogues only)."""
        n = self.indices.shape[0]
        dense = torch.zeros(n, n, dtype=self.weights.dtype)
        dense.scatter_add_(1, self.indices, self.weights)
        return dense

    def neighbour_sets(self) -> list[set[int]]:
        """Each row's neighbours as a Python set (diagnostics)."""
        idx, w = self.indices.numpy(), self.weights.numpy()
        return [set(idx[i][w[i] > 0].tolist()) for i in range(idx.shape[0])]


def _normalise_binary(indices: torch.Tensor, valid: torch.Tensor) -> NeighbourGraph:
    """Binary adjacency → ``D^-1/2 A D^-1/2`` with D the row degree (+1e-7), as in the official code."""
    degree = valid.sum(dim=1).float() + 1e-7  # (N,)
    inv_sqrt = degree.pow(-0.5)
    weights = inv_sqrt.unsqueeze(1) * inv_sqrt[indices] * valid.float()
    indices = torch.where(valid, indices, torch.zeros_like(indices))
    return NeighbourGraph(indices=indices, weights=weights)


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features.float(), p=2, dim=1, eps=1e-12)


def global_mean_cosine(unit: torch.Tensor, active: torch.Tensor) -> float:
    """Mean of the full cosine matrix over active items, in closed form: ‖Σ x_i‖² / n² (no N×N matrix)."""
    rows = unit[active]
    n = rows.shape[0]
    total = rows.sum(dim=0)
    return float(total.dot(total) / (n * n))


def knn_content_graphs(features: list[torch.Tensor], k: int = 10, consistency: bool = True,
                       active: torch.Tensor | None = None, chunk_size: int = 1024,
                       tie_break: bool = True, include_self: bool = True) -> tuple[list[NeighbourGraph], dict[str, float]]:
    """One kNN graph per modality; with ``consistency`` an edge survives only if above-mean in every modality.

    ``features[m]`` is (N, d_m) in internal item order; rows where ``active`` is False (RecBole's PAD item
    0) get no edges and are excluded from the global means. Each row keeps its top ``min(k, c_i)``
    surviving items (the item itself included: its cosine is the row maximum), binary, then normalised.
    Returns the graphs and diagnostics (mean similarities, fraction of kNN edges the mask removed).
    ``tie_break`` adds 1e-4 × the other modalities' mean similarity before top-k, so exact ties (identical
    genre sets) are resolved by content instead of by memory order (our choice; the official code leaves
    ties to ``torch.topk``). ``include_self=False`` drops the item from its own list (not official: with it,
    every view carries the item's own ID embedding, so the denoising weight partly mirrors the collaborative
    score even when the content is random — the switch lets that be measured).
    """
    if not features:
        raise DataError("DA-MRS needs at least one content modality (got none)")
    n = features[0].shape[0]
    if any(f.shape[0] != n for f in features):
        raise DataError(f"all modalities must have one row per item; got row counts {[f.shape[0] for f in features]}")
    active = torch.ones(n, dtype=torch.bool) if active is None else active.bool()
    units = [_unit_rows(f) * active.unsqueeze(1) for f in features]
    means = [global_mean_cosine(u, active) for u in units]
    k = min(k, int(active.sum()))
    picked = [torch.zeros(n, k, dtype=torch.long) for _ in units]
    valid = [torch.zeros(n, k, dtype=torch.bool) for _ in units]
    removed, raw_edges = 0, 0
    n_mod = len(units)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims = [u[start:stop] @ u.T for u in units]  # each (chunk, N)
        col_ok = active.unsqueeze(0).expand(stop - start, n)
        if not include_self:
            col_ok = col_ok.clone()
            col_ok[torch.arange(stop - start), torch.arange(start, stop)] = False
        bad = ~col_ok
        if consistency:
            for sim, mean in zip(sims, means):
                bad = bad | (sim < mean)
        for m, sim in enumerate(sims):
            score = sim
            if tie_break and n_mod > 1:
                others = sum(s for j, s in enumerate(sims) if j != m) / (n_mod - 1)
                score = sim + 1e-4 * others
            if consistency:
                # fraction of each modality's own kNN edges that the consistency mask deletes (diagnostic)
                raw = torch.topk(score.masked_fill(~col_ok, float("-inf")), k, dim=1).indices
                raw_bad = bad.gather(1, raw)
                row_active = active[start:stop].unsqueeze(1)
                removed += int((raw_bad & row_active).sum())
                raw_edges += int(row_active.sum()) * k
            masked = score.masked_fill(bad, float("-inf"))
            top = torch.topk(masked, k, dim=1)
            ok = torch.isfinite(top.values) & active[start:stop].unsqueeze(1)
            picked[m][start:stop] = top.indices
            valid[m][start:stop] = ok
    graphs = [_normalise_binary(p, v) for p, v in zip(picked, valid)]
    stats = {f"mean_cosine_{m}": mean for m, mean in enumerate(means)}
    stats["mask_removed_fraction"] = removed / raw_edges if raw_edges else 0.0
    stats["mean_neighbours"] = float(np.mean([int(v.sum()) for v in valid]) / max(int(active.sum()), 1))
    return graphs, stats


def behaviour_graph(interactions: sp.spmatrix, n_items: int, topk: int = 2, min_co_users: int = 2,
                    active: torch.Tensor | None = None, chunk_size: int = 2048,
                    include_self: bool = True) -> NeighbourGraph:
    """Item–item co-interaction graph ("IIB", brief §2.1 step 5), from the TRAIN user×item matrix.

    C_ij = users who interacted with both i and j (i ≠ j); keep C_ij ≥ ``min_co_users``; per row the top
    ``topk`` by count (ties → lower item index); plus a self-loop; binary, normalised like the content graphs.
    """
    binary = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    binary.sum_duplicates()
    binary.data[:] = 1.0
    items_by_user = binary.T.tocsr()  # (N, U)
    active = torch.ones(n_items, dtype=torch.bool) if active is None else active.bool()
    indices = torch.zeros(n_items, topk + 1, dtype=torch.long)
    valid = torch.zeros(n_items, topk + 1, dtype=torch.bool)
    for start in range(0, n_items, chunk_size):
        stop = min(start + chunk_size, n_items)
        co = torch.from_numpy((items_by_user[start:stop] @ binary).toarray())  # (chunk, N) co-user counts
        rows = torch.arange(start, stop)
        co[rows - start, rows] = 0.0
        co[co < min_co_users] = 0.0
        co[:, ~active] = 0.0
        # stable tie-break towards lower index: subtract a tiny index-proportional amount
        score = co - torch.arange(n_items, dtype=co.dtype).unsqueeze(0) * 1e-7
        top = torch.topk(score, topk, dim=1)
        ok = co.gather(1, top.indices) > 0
        indices[start:stop, 0] = rows
        valid[start:stop, 0] = include_self  # the official self-loop (include_self=False drops it)
        indices[start:stop, 1:] = top.indices
        valid[start:stop, 1:] = ok
    valid &= active.unsqueeze(1)
    return _normalise_binary(indices, valid)
