import numpy as np
import scipy.sparse as sp
import torch

from recsys_kit.damrs.graphs import behaviour_graph, global_mean_cosine, knn_content_graphs


def _cos(x):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return u @ u.T


def _toy():
    rng = np.random.default_rng(3)
    return [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)]


def test_consistency_mask_matches_brute_force_on_five_items():
    feats = _toy()
    sims = [_cos(f) for f in feats]
    bad = np.zeros((5, 5), dtype=bool)
    for s in sims:
        bad |= s < s.mean()
    graphs, stats = knn_content_graphs([torch.from_numpy(f) for f in feats], k=3, consistency=True,
                                       tie_break=False)
    for m, graph in enumerate(graphs):
        got = graph.neighbour_sets()
        for i in range(5):
            allowed = [j for j in range(5) if not bad[i, j]]
            expected = set(sorted(allowed, key=lambda j: -sims[m][i, j])[:3])
            assert got[i] == expected
            assert i in got[i]  # the item itself always survives (cosine 1 is above any mean)
            # no surviving edge is below-mean in any modality
            assert not any(bad[i, j] for j in got[i])
    assert 0.0 <= stats["mask_removed_fraction"] <= 1.0


def test_without_consistency_it_is_plain_knn_and_normalised():
    feats = _toy()
    graphs, _ = knn_content_graphs([torch.from_numpy(f) for f in feats], k=2, consistency=False, tie_break=False)
    sims = _cos(feats[0])
    assert [s for s in graphs[0].neighbour_sets()] == [set(np.argsort(-sims[i])[:2].tolist()) for i in range(5)]
    dense = graphs[0].to_dense().numpy()
    adjacency = (dense > 0).astype(float)
    degree = adjacency.sum(1)
    expected = adjacency / np.sqrt(degree)[:, None] / np.sqrt(degree)[None, :]
    np.testing.assert_allclose(dense, expected, rtol=1e-5)


def test_pad_item_is_isolated_and_excluded_from_means():
    rng = np.random.default_rng(0)
    feats = [torch.from_numpy(rng.normal(size=(8, 4)).astype(np.float32)) for _ in range(2)]
    feats[0][0] = 100.0  # a PAD row with garbage must not matter
    active = torch.ones(8, dtype=torch.bool)
    active[0] = False
    graphs, _ = knn_content_graphs(feats, k=3, active=active)
    for graph in graphs:
        dense = graph.to_dense()
        assert dense[0].abs().sum() == 0 and dense[:, 0].abs().sum() == 0
        out = graph.propagate(torch.randn(8, 5))
        assert torch.all(out[0] == 0)
    unit = torch.nn.functional.normalize(feats[1], dim=1)
    brute = (unit[1:] @ unit[1:].T).mean()
    assert abs(global_mean_cosine(unit, active) - float(brute)) < 1e-6


def test_chunked_build_equals_single_block():
    rng = np.random.default_rng(5)
    feats = [torch.from_numpy(rng.normal(size=(23, 6)).astype(np.float32)) for _ in range(3)]
    full, _ = knn_content_graphs(feats, k=4, chunk_size=1024)
    chunked, _ = knn_content_graphs(feats, k=4, chunk_size=5)
    for a, b in zip(full, chunked):
        torch.testing.assert_close(a.to_dense(), b.to_dense())


def test_behaviour_graph_counts_co_users_top2_and_self_loop():
    # users x items; item 1 shares 3 users with item 2, 2 users with item 3, 1 user with item 4
    rows = [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1), (3, 4)]
    r, c = zip(*rows)
    matrix = sp.coo_matrix((np.ones(len(rows)), (r, c)), shape=(4, 5))
    active = torch.tensor([False, True, True, True, True])
    graph = behaviour_graph(matrix, 5, topk=2, min_co_users=2, active=active)
    sets = graph.neighbour_sets()
    assert sets[0] == set()
    assert sets[1] == {1, 2, 3}
    assert sets[4] == {4}  # only one co-user with item 1: below the threshold, self-loop only
