"""Environment (scenario) inference when corpora carry no environment labels (brief §2.3).

Strategies (the estimator's ``environment_strategy``):
- ``"auto"`` — ``"given"`` when ``fit`` receives environments, else ``"kmeans"`` (so environments passed to
  ``fit`` are never silently replaced by inferred ones);
- ``"kmeans"`` — option A: k-means on a representation, refreshed every epoch;
- ``"kmeans_within_class"`` — [recon] k-means run separately inside each class, clusters paired across classes
  by centroid similarity, so every environment holds both classes (plain k-means on source-biased corpora such
  as Chakraborty's gives label-pure clusters, brief §8.3);
- ``"learned"`` — option B, trained inside the network (see ``model.py``);
- ``"given"`` — option C, metadata passed to ``fit(..., environments=...)``;
- ``"eiil"`` — EIIL (Creager et al. 2021): the two-way split that maximises the IRMv1 penalty of a reference
  ERM classifier.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import ConfigError

STRATEGIES = ("auto", "kmeans", "kmeans_within_class", "learned", "given", "eiil")


def one_hot(labels: np.ndarray, n_environments: int) -> np.ndarray:
    """Integer labels (n,) -> (n, E) float32 one-hot."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((len(labels), n_environments), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def encode_environments(values) -> tuple[np.ndarray, np.ndarray]:
    """Arbitrary environment values (strings, ints) -> (codes 0..E-1, the distinct values)."""
    values = np.asarray(values)
    uniq, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), uniq


def kmeans_environments(Z: np.ndarray, n_environments: int, seed: int = 0) -> np.ndarray:
    """Plain k-means cluster ids of the rows of Z (n, d)."""
    from sklearn.cluster import KMeans

    k = max(1, min(n_environments, len(Z)))
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(Z).astype(np.int64)


def _pair_clusters(sim: np.ndarray) -> list[int]:
    """The permutation p maximising Σ_i sim[i, p(i)] (exhaustive for k ≤ 7, greedy beyond)."""
    k = sim.shape[0]
    if k <= 7:
        best = max(itertools.permutations(range(k)), key=lambda p: sum(sim[i, p[i]] for i in range(k)))
        return list(best)
    pairs, used_r, used_c = [None] * k, set(), set()
    for flat in np.argsort(-sim, axis=None):
        i, j = divmod(int(flat), k)
        if i not in used_r and j not in used_c:
            pairs[i] = j
            used_r.add(i)
            used_c.add(j)
    return pairs


def within_class_kmeans(Z: np.ndarray, y: np.ndarray, n_environments: int, seed: int = 0) -> np.ndarray:
    """k-means inside each class, clusters of class c paired to those of class 0 by centroid cosine similarity.

    Returns environment ids (n,) in 0..k-1; environment e holds cluster e of class 0 and its most similar
    cluster of every other class.
    """
    Z, y = np.asarray(Z, dtype=np.float64), np.asarray(y)
    classes = np.unique(y)
    k = max(1, min(n_environments, *[int((y == c).sum()) for c in classes]))
    env = np.zeros(len(y), dtype=np.int64)
    centroids = {}
    for c in classes:
        rows = np.flatnonzero(y == c)
        ids = kmeans_environments(Z[rows], k, seed)
        centroids[c] = np.stack([Z[rows[ids == j]].mean(axis=0) if (ids == j).any() else np.zeros(Z.shape[1])
                                 for j in range(k)])
        env[rows] = ids
    ref = centroids[classes[0]]
    ref_n = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    for c in classes[1:]:
        cen = centroids[c] / np.maximum(np.linalg.norm(centroids[c], axis=1, keepdims=True), 1e-12)
        pairing = _pair_clusters(ref_n @ cen.T)  # reference cluster i <- class-c cluster pairing[i]
        inverse = np.empty(k, dtype=np.int64)
        inverse[pairing] = np.arange(k)
        rows = np.flatnonzero(y == c)
        env[rows] = inverse[env[rows]]
    return env


def eiil_environments(logits: np.ndarray, y: np.ndarray, n_steps: int = 300, lr: float = 0.05,
                      seed: int = 0) -> np.ndarray:
    """EIIL: soft two-way split q_i maximising the IRMv1 penalty of fixed reference logits; returns 0/1 ids."""
    gen = torch.Generator().manual_seed(seed)
    logits_t = torch.as_tensor(logits, dtype=torch.float32).view(-1)
    y_t = torch.as_tensor(y, dtype=torch.float32).view(-1)
    q_logit = (torch.randn(len(y_t), generator=gen) * 0.01).requires_grad_(True)
    opt = torch.optim.Adam([q_logit], lr=lr)
    scale = torch.ones((), requires_grad=True)
    for _ in range(n_steps):
        losses = F.binary_cross_entropy_with_logits(logits_t * scale, y_t, reduction="none")
        q = torch.sigmoid(q_logit)
        penalty = 0.0
        for w in (q, 1.0 - q):
            # EIIL's reference code averages over ALL rows ((w·ℓ).mean()), not over the environment's mass: dividing
            # by Σw lets a handful of misclassified rows form a tiny environment with a huge gradient (collapse)
            risk = (w * losses).mean()
            (grad,) = torch.autograd.grad(risk, scale, create_graph=True)
            penalty = penalty + grad.pow(2)
        opt.zero_grad()
        (-penalty).backward()
        opt.step()
    env = (torch.sigmoid(q_logit) > 0.5).long().numpy()
    if env.min() == env.max():  # degenerate split: fall back to "correct vs wrong" of the reference model
        env = ((logits_t > 0).float() != y_t).long().numpy()
    return env.astype(np.int64)


def check_strategy(strategy: str) -> str:
    """Validate a strategy name."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"environment_strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    return strategy
