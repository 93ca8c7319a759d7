import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from recsys_kit.negsampling import PositiveIndex, context_from_arrays, get_sampler
from recsys_kit.negsampling.static import alias_table, draw_alias
from shared.errors import ConfigError, DataError


def test_alias_table_encodes_the_distribution_exactly():
    probs = np.random.default_rng(0).dirichlet(np.ones(37) * 0.3)
    accept, alias = alias_table(probs)
    n = len(probs)
    rebuilt = accept.numpy() / n
    np.add.at(rebuilt, alias.numpy(), (1 - accept.numpy()) / n)
    np.testing.assert_allclose(rebuilt, probs, atol=1e-12)
    draws = draw_alias(accept, alias, (200_000,), torch.Generator().manual_seed(0))
    counts = np.bincount(draws.numpy(), minlength=n)
    assert chisquare(counts, probs * counts.sum()).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.0, 0.75, 1.0])
def test_popularity_frequencies_match_f_pow_alpha(alpha):
    rng = np.random.default_rng(1)
    counts = rng.zipf(1.6, 40).clip(max=200)  # item popularity
    items = np.repeat(np.arange(1, 41), counts[:40])
    users = rng.integers(2, 30, len(items))
    # user 1 has a few positives; its negatives follow f^alpha renormalised over its non-positives
    users = np.r_[users, [1, 1, 1]]
    items = np.r_[items, [1, 2, 3]]
    ctx = context_from_arrays(users, items, 30, 41)
    sampler = get_sampler("popularity", alpha=alpha, seed=0).bind(ctx)
    draws = sampler.draw(torch.ones(60_000, dtype=torch.long), 1)[:, 0].numpy()
    f = ctx.item_counts.numpy().astype(float)
    expected = np.where(f > 0, f ** alpha, 0.0)
    expected[[0, 1, 2, 3]] = 0.0  # [PAD] and user 1's positives
    expected /= expected.sum()
    observed = np.bincount(draws, minlength=41)
    keep = expected > 0
    assert observed[~keep].sum() == 0
    assert chisquare(observed[keep], expected[keep] * observed.sum()).pvalue > 1e-3


def test_popularity_alpha_must_be_non_negative():
    with pytest.raises(ConfigError):
        get_sampler("popularity", alpha=-1)


def test_predefined_uses_known_negatives_and_falls_back_uniformly(toy_context):
    known_users = torch.tensor([1, 1, 2])
    known_items = []
    for user in (1, 2):  # pick items that are not positives of that user
        free = [i for i in range(1, 80) if not toy_context.positives.contains(torch.tensor(user), torch.tensor(i))]
        known_items.append(free[:2] if user == 1 else free[:1])
    toy_context.known_negatives = PositiveIndex(known_users, torch.tensor(sum(known_items, [])), 50, 80)
    sampler = get_sampler("predefined", seed=0).bind(toy_context)
    out = sampler.sample(None, torch.tensor([1] * 200 + [2] * 50 + [3] * 50), torch.zeros(300, dtype=torch.long))
    assert set(out.items[:200].tolist()) == set(known_items[0])
    assert set(out.items[200:250].tolist()) == set(known_items[1])
    assert len(set(out.items[250:].tolist())) > 5  # user 3 has none: uniform fallback
    assert sampler.fallback_share == pytest.approx(50 / 300)


def test_predefined_without_known_negatives_is_a_data_error(toy_context):
    with pytest.raises(DataError, match="known negatives"):
        get_sampler("predefined").bind(toy_context)


def test_predefined_known_share_mixes_in_uniform_negatives(toy_context):
    free = [i for i in range(1, 80) if not toy_context.positives.contains(torch.tensor(1), torch.tensor(i))]
    toy_context.known_negatives = PositiveIndex(torch.tensor([1]), torch.tensor([free[0]]), 50, 80)
    sampler = get_sampler("predefined", known_share=0.5, seed=0).bind(toy_context)
    out = sampler.sample(None, torch.ones(4000, dtype=torch.long), torch.zeros(4000, dtype=torch.long))
    share_known = float((out.items == free[0]).float().mean())
    assert 0.45 < share_known < 0.56  # half known (+ the uniform draws that happen to hit it)
    with pytest.raises(ConfigError):
        get_sampler("predefined", known_share=1.5)
