import numpy as np
import pytest

from llm_dynamics_kit.ssd.clustering import (
    adjusted_rand_index,
    balanced_assign,
    balanced_kmeans,
    matched_agreement,
    normalise_rows,
    objective,
    partition_similarity,
    random_partition,
    recluster,
)
from shared.errors import ConfigError


def planted(n_experts=8, m=16, d=24, noise=0.05, seed=0):
    """Rows drawn around n_experts directions, m rows each (shuffled); returns rows and the true labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_experts, d))
    labels = rng.permutation(np.repeat(np.arange(n_experts), m))
    rows = centers[labels] + noise * rng.normal(size=(n_experts * m, d))
    return rows, labels


@pytest.mark.parametrize("backend", ["lap", "greedy"])
def test_balanced_kmeans_sizes_and_recovery(backend):
    rows, truth = planted()
    result = balanced_kmeans(rows, 8, backend=backend, seed=1)
    assert np.bincount(result.labels, minlength=8).tolist() == [16] * 8
    if backend == "lap":  # exact assignment recovers the planted partition
        assert adjusted_rand_index(result.labels, truth) == pytest.approx(1.0)
    else:
        assert adjusted_rand_index(result.labels, truth) > 0.8


@pytest.mark.parametrize("backend", ["lap", "greedy"])
def test_objective_beats_random_partition_on_unstructured_weights(backend):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(128, 16))
    result = balanced_kmeans(w, 8, backend=backend)
    assert np.bincount(result.labels).tolist() == [16] * 8
    x = normalise_rows(w)
    random_objs = [objective(x, random_partition(128, 8, seed=s), 8) for s in range(20)]
    assert result.objective < min(random_objs)
    assert result.objective == pytest.approx(objective(x, result.labels, 8))


def test_lap_is_optimal_against_greedy():
    rng = np.random.default_rng(0)
    cost = rng.random((24, 4))
    exact = balanced_assign(cost, 6, "lap")
    greedy = balanced_assign(cost, 6, "greedy")
    total = lambda labels: cost[np.arange(24), labels].sum()  # noqa: E731
    assert np.bincount(exact).tolist() == [6] * 4 and np.bincount(greedy).tolist() == [6] * 4
    assert total(exact) <= total(greedy) + 1e-12


def test_warm_start_and_recluster_keep_the_better_objective():
    rows, truth = planted(seed=2)
    warm = balanced_kmeans(rows, 8, init_labels=truth, backend="lap")
    assert adjusted_rand_index(warm.labels, truth) == pytest.approx(1.0)
    best = recluster(rows, 8, previous=truth, backend="lap")
    assert best.objective <= warm.objective + 1e-9
    rng = np.random.default_rng(5)
    flat = rng.normal(size=(64, 8))  # no structure: fresh and warm starts land on different partitions
    previous = random_partition(64, 8, seed=1)
    warm_only = recluster(flat, 8, previous=previous, restart_margin=1.0)
    assert warm_only.objective == pytest.approx(balanced_kmeans(flat, 8, init_labels=previous).objective)
    assert recluster(flat, 8, previous=previous).objective <= warm_only.objective + 1e-9


def test_ari_and_matching_are_permutation_invariant():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=200)
    relabelled = np.array([3, 0, 4, 1, 2])[a]
    assert adjusted_rand_index(a, relabelled) == pytest.approx(1.0)
    assert matched_agreement(a, relabelled) == pytest.approx(1.0)
    assert abs(adjusted_rand_index(a, rng.integers(0, 5, size=200))) < 0.1
    try:
        from sklearn.metrics import adjusted_rand_score
    except ImportError:
        return
    b = rng.integers(0, 4, size=200)
    assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b))
    assert partition_similarity(a, b, "ari") == pytest.approx(adjusted_rand_score(a, b))


def test_bad_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="multiple of n_experts"):
        balanced_kmeans(np.ones((10, 3)), 3)
    with pytest.raises(ConfigError, match="backend"):
        balanced_kmeans(np.random.default_rng(0).normal(size=(8, 3)), 2, backend="faiss")
    with pytest.raises(ConfigError, match="similarity"):
        partition_similarity(np.zeros(4), np.zeros(4), "nmi")
