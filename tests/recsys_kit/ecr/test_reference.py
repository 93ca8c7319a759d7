"""Issue 23: context-free reference scorers, so that an AUC can be read against popularity and copying."""

import numpy as np
import pytest

from recsys_kit.ecr.pipeline import simulated_data
from recsys_kit.ecr.rec.reference import popularity_spearman, reference_metrics, reference_scores
from recsys_kit.ecr.rec.samples import EntityMention, RecSample
from shared.errors import ConfigError


def _sample(target, feedback, context=()):
    return RecSample("c", ["User: hi"], [EntityMention(e, [], []) for e in context], target, feedback)


def test_popularity_scorer_by_hand():
    # training targets: item 7 three times, item 8 once; the disliked test item is the popular one
    train = [_sample(7, "like")] * 3 + [_sample(8, "like")]
    test = [_sample(8, "like"), _sample(9, "like"), _sample(7, "dislike")]
    gold, ranks = reference_scores("popularity", train, test, [7, 8, 9])
    assert gold.tolist() == [1, 0, 3] and ranks.tolist() == [1, 2, 0]
    metrics, inst = reference_metrics("popularity", train, test, [7, 8, 9])
    assert metrics["AUC"] == 0.0  # popular = disliked: below chance without any defect in the labels
    assert metrics["R@1"] == pytest.approx(1 / 3) and len(inst["ranks"]) == 3


def test_in_context_scorer_by_hand():
    # entity 99 is no item (a genre, say): it is never a candidate
    test = [_sample(5, "like", context=[5, 5, 6]), _sample(6, "dislike", context=[5, 99]), _sample(4, "like")]
    gold, ranks = reference_scores("in-context", [], test, [4, 5, 6])
    assert gold.tolist() == [2, 0, 0] and ranks.tolist() == [0, 1, 0]
    assert reference_metrics("in-context", [], test, [4, 5, 6])[0]["AUC"] == 0.75
    with pytest.raises(ConfigError, match="unknown reference"):
        reference_scores("oracle", [], test, [4, 5, 6])


def test_popularity_spearman():
    train = [_sample(1, "like")] * 3 + [_sample(2, "like")] * 2 + [_sample(3, "like")]
    test = [_sample(1, "like"), _sample(2, "like"), _sample(3, "like")]
    assert popularity_spearman(train, test, [0.5, 0.3, 0.1]) == pytest.approx(1.0)
    assert popularity_spearman(train, test, [0.1, 0.3, 0.5]) == pytest.approx(-1.0)
    assert np.isnan(popularity_spearman(train, test, [0.2, 0.2, 0.2]))


def test_simulated_split_fractions():
    data = simulated_data(40, seed=0, kg_min_degree=10**9, fractions=(0.1, 0.4))
    assert [len(data.splits[k]) for k in ("train", "valid", "test")] == [20, 4, 16]
    with pytest.raises(ConfigError, match="fractions"):
        simulated_data(40, seed=0, fractions=(0.5, 0.5))
