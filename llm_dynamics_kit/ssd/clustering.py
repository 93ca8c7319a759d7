"""Balanced k-means over FFN neurons (SSD brief §2.4) and partition similarity (§2.3).

Neurons are the rows of ``W_in`` (D, d), L2-normalised: neurons whose input weights point the same way fire on
the same inputs, so they share an expert. Every expert gets exactly ``m = D / E`` neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.errors import ConfigError

BACKENDS = ("auto", "lap", "greedy")


@dataclass
class Clustering:
    """A balanced partition of D neurons into E experts of m neurons each."""

    labels: np.ndarray  # (D,) expert id of every neuron
    centroids: np.ndarray  # (E, d) mean of the normalised rows of each expert
    objective: float  # Σ_i ||x_i − c_label(i)||² on normalised rows
    iterations: int

    @property
    def n_experts(self) -> int:
        return int(self.centroids.shape[0])

    def permutation(self) -> np.ndarray:
        """Neuron order that makes experts contiguous (expert 0's neurons first, each in ascending index)."""
        return np.argsort(self.labels, kind="stable")


def normalise_rows(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """Row-L2-normalised float64 copy of ``weight`` (D, d); zero rows stay zero."""
    x = weight.detach().cpu().double().numpy() if torch.is_tensor(weight) else np.asarray(weight, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _check(n_neurons: int, n_experts: int) -> int:
    if n_experts < 1 or n_neurons % n_experts:
        raise ConfigError(f"cannot split {n_neurons} neurons into {n_experts} equal experts: the FFN width must be a "
                          "multiple of n_experts (choose n_experts dividing the hidden size)")
    return n_neurons // n_experts


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(D, E) squared Euclidean distances."""
    d2 = (x * x).sum(1, keepdims=True) - 2 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def balanced_assign(cost: np.ndarray, capacity: int, backend: str = "auto") -> np.ndarray:
    """Labels minimising Σ cost[i, label_i] with exactly ``capacity`` neurons per expert.

    ``lap``: exact, Jonker–Volgenant (scipy) on the (D, D) matrix that repeats each expert's column
    ``capacity`` times (brief §2.4 implementation note). ``greedy``: sort all (neuron, expert) costs and fill
    experts until full — the approximate pass of the brief's pilot, O(D·E log). ``auto``: lap up to D = 1536.
    """
    n, n_experts = cost.shape
    if backend not in BACKENDS:
        raise ConfigError(f"balanced k-means backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "lap" if n <= 1536 else "greedy"
    if backend == "lap":
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError:  # scipy is optional for the llm extra
            backend = "greedy"
        else:
            expanded = np.repeat(cost, capacity, axis=1)  # (D, E·m): slot j belongs to expert j // m
            rows, cols = linear_sum_assignment(expanded)
            labels = np.empty(n, dtype=np.int64)
            labels[rows] = cols // capacity
            return labels
    order = np.argsort(cost, axis=None, kind="stable")
    labels = np.full(n, -1, dtype=np.int64)
    fill = np.zeros(n_experts, dtype=np.int64)
    remaining = n
    for flat in order:
        i, e = divmod(int(flat), n_experts)
        if labels[i] < 0 and fill[e] < capacity:
            labels[i] = e
            fill[e] += 1
            remaining -= 1
            if remaining == 0:
                break
    return labels


def _centroids(x: np.ndarray, labels: np.ndarray, n_experts: int) -> np.ndarray:
    sums = np.zeros((n_experts, x.shape[1]))
    np.add.at(sums, labels, x)
    counts = np.bincount(labels, minlength=n_experts)[:, None]
    return sums / np.maximum(counts, 1)


def objective(x: np.ndarray, labels: np.ndarray, n_experts: int) -> float:
    """k-means objective Σ_i ||x_i − c_label(i)||² with centroids = cluster means."""
    c = _centroids(x, labels, n_experts)
    return float(((x - c[labels]) ** 2).sum())


def _init_plus_plus(x: np.ndarray, n_experts: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding; :func:`balanced_kmeans` then refines it with unbalanced Lloyd steps."""
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, n_experts):
        d2 = squared_distances(x, np.array(centers)).min(1)
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
        centers.append(x[rng.choice(len(x), p=probs)])
    return np.array(centers)


def balanced_kmeans(weight: torch.Tensor | np.ndarray, n_experts: int, init_labels: np.ndarray | None = None,
                    n_iter: int = 100, backend: str = "auto", seed: int = 0, init_kmeans_iters: int = 25) -> Clustering:
    """Balanced k-means of the normalised rows of ``weight`` (D, d) into ``n_experts`` clusters of D/E rows.

    ``init_labels`` warm-starts from a previous partition (centroids = its cluster means, brief §2.4 step 2b);
    otherwise k-means++. Each round: balanced E-step, mean M-step; the best objective's labels are kept and the
    loop stops early when labels stop changing (the official code always runs ``niter = 100`` rounds).
    """
    x = normalise_rows(weight)
    capacity = _check(len(x), n_experts)
    rng = np.random.default_rng(seed)
    if init_labels is not None:
        init_labels = np.asarray(init_labels, dtype=np.int64)
        if init_labels.shape != (len(x),) or init_labels.min() < 0 or init_labels.max() >= n_experts:
            raise ConfigError(f"init_labels must be {len(x)} expert ids in 0..{n_experts - 1}")
        centroids = _centroids(x, init_labels, n_experts)
    else:
        centroids = _init_plus_plus(x, n_experts, rng)
        # unbalanced k-means refinement first, as faiss does (brief §2.4 step 2). A warm start is not refined:
        # the brief refines it too, but then unchanged weights would not reproduce their own partition and the
        # stability signal would read < 1 for a model that did not move.
        for _ in range(init_kmeans_iters):
            nearest = squared_distances(x, centroids).argmin(1)
            occupied = np.bincount(nearest, minlength=n_experts) > 0  # an emptied cluster keeps its old centre
            centroids = np.where(occupied[:, None], _centroids(x, nearest, n_experts), centroids)
    best_labels, best_obj, labels, rounds = None, np.inf, None, 0
    for _ in range(max(n_iter, 1)):
        rounds += 1
        # S = -cdist(X, C) (brief §2.4 step 3): plain distances; squared ones give a different balanced optimum
        new = balanced_assign(np.sqrt(squared_distances(x, centroids)), capacity, backend)
        centroids = _centroids(x, new, n_experts)
        obj = float(((x - centroids[new]) ** 2).sum())
        if obj < best_obj:
            best_obj, best_labels = obj, new
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
    return Clustering(best_labels, _centroids(x, best_labels, n_experts), best_obj, rounds)


def recluster(weight: torch.Tensor | np.ndarray, n_experts: int, previous: np.ndarray | None = None,
              n_iter: int = 100, backend: str = "auto", seed: int = 0, restart_margin: float = 0.0) -> Clustering:
    """``cal_structure`` of the official code: warm-started and fresh clusterings, keep the lower objective.

    ``restart_margin`` m: the fresh clustering replaces the warm-started one only when its objective is lower
    by more than a fraction m (0 = the official rule). Near initialisation the objective is flat, so a fresh
    start often wins by < 1% with an unrelated partition and the ARI signal drops to ≈0; m ≥ 1 keeps warm.
    """
    if previous is None:
        return balanced_kmeans(weight, n_experts, None, n_iter, backend, seed)
    warm = balanced_kmeans(weight, n_experts, previous, n_iter, backend, seed)
    if restart_margin >= 1.0:
        return warm
    fresh = balanced_kmeans(weight, n_experts, None, n_iter, backend, seed)
    return fresh if fresh.objective < warm.objective * (1.0 - restart_margin) else warm


def random_partition(n_neurons: int, n_experts: int, seed: int = 0) -> np.ndarray:
    """Random equal-size partition (the random-split ablation, ``split_ckpt_random`` of the official code)."""
    capacity = _check(n_neurons, n_experts)
    labels = np.repeat(np.arange(n_experts), capacity)
    return np.random.default_rng(seed).permutation(labels)


def clustering_from_labels(weight: torch.Tensor | np.ndarray, labels: np.ndarray) -> Clustering:
    """A :class:`Clustering` for given labels (centroids and objective computed on ``weight``)."""
    x = normalise_rows(weight)
    n_experts = int(labels.max()) + 1
    _check(len(x), n_experts)
    return Clustering(np.asarray(labels), _centroids(x, labels, n_experts), objective(x, labels, n_experts), 0)


# ------------------------------------------------------------------------------ partition similarity (§2.3)


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a_ids, a_inv = np.unique(a, return_inverse=True)
    b_ids, b_inv = np.unique(b, return_inverse=True)
    table = np.zeros((len(a_ids), len(b_ids)), dtype=np.int64)
    np.add.at(table, (a_inv, b_inv), 1)
    return table


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (permutation-invariant; 1 = same partition, ≈0 = chance)."""
    table = _contingency(np.asarray(a), np.asarray(b))

    def pairs(v: np.ndarray) -> float:
        return float((v * (v - 1) / 2).sum())

    n = table.sum()
    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    total = n * (n - 1) / 2
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def matched_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of neurons whose expert agrees after optimally matching expert ids (Hungarian on the contingency)."""
    table = _contingency(np.asarray(a), np.asarray(b))
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return float(table.max(1).sum() / table.sum())
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum())


def partition_similarity(a: np.ndarray, b: np.ndarray, metric: str = "ari") -> float:
    """Similarity of two expert partitions: ``ari`` (default) or ``matched`` agreement."""
    if metric == "ari":
        return adjusted_rand_index(a, b)
    if metric == "matched":
        return matched_agreement(a, b)
    raise ConfigError(f"similarity metric must be 'ari' or 'matched', got {metric!r}")
