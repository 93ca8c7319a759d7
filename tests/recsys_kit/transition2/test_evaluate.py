"""Per-domain evaluation: ranks, metrics and the paired test on known answers."""

from __future__ import annotations

import numpy as np
import torch

from recsys_kit.transition2.evaluate import Evaluation, paired_test, ranks_within_domain


def test_ranks_ignore_masked_items_and_count_ties_against_the_target():
    scores = torch.tensor([[-1e9, 0.5, 0.9, -1e9, 0.5, 0.1],
                           [-1e9, 3.0, -1e9, 2.0, -1e9, 1.0]])
    ranks = ranks_within_domain(scores, torch.tensor([1, 5]))
    assert ranks.tolist() == [2, 2]  # row 0: 0.9 ahead and one tie; row 1: two allowed items ahead


def test_metrics_known_answers():
    evaluation = Evaluation(users=np.arange(4), domains=np.array(["A", "A", "B", "B"]),
                            full_rank=np.array([0, 1, 9, 10]), sampled_rank=np.array([0, 0, 0, 0]))
    m = evaluation.metrics
    assert m["A_full_hr@10"] == 1.0 and m["B_full_hr@10"] == 0.5
    np.testing.assert_allclose(m["A_full_ndcg@10"], (1 + 1 / np.log2(3)) / 2)
    np.testing.assert_allclose(m["B_full_mrr@10"], (1 / 10) / 2)
    assert m["sampled_ndcg@10"] == 1.0


def test_paired_test_detects_a_consistent_gain():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = paired_test(base + 0.05 + 0.01 * rng.standard_normal(300), base)
    assert better["wilcoxon_p"] < 1e-6 and better["ci_low"] > 0
    same = paired_test(base, base)
    assert same["wilcoxon_p"] == 1.0 and same["mean_diff"] == 0.0


def test_mrr_is_over_the_whole_ranking_and_cutoffs_5_and_10_are_reported():
    evaluation = Evaluation(users=np.arange(4), domains=np.array(["A", "A", "B", "B"]),
                            full_rank=np.array([0, 4, 19, 99]), sampled_rank=np.array([0, 0, 0, 0]))
    m = evaluation.metrics
    np.testing.assert_allclose(m["B_full_mrr"], (1 / 20 + 1 / 100) / 2)  # ranks beyond 10 still count
    np.testing.assert_allclose(m["A_full_mrr"], (1 + 1 / 5) / 2)
    assert m["B_full_mrr@10"] == 0.0 and m["full_mrr"] > m["full_mrr@10"]
    assert m["A_full_hr@5"] == 1.0 and m["B_full_hr@5"] == 0.0
    np.testing.assert_allclose(m["A_full_ndcg@5"], (1 + 1 / np.log2(6)) / 2)
    assert {f"{d}_{p}_{x}" for d in "AB" for p in ("full", "sampled")
            for x in ("ndcg@5", "ndcg@10", "hr@5", "hr@10", "mrr")} <= set(m)
