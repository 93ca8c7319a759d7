import numpy as np
import pytest
import torch

from recsys_kit.negsampling import context_from_arrays, get_sampler, sampler_names
from recsys_kit.negsampling.mcns import two_hop_table
from shared.errors import ConfigError
from tests.recsys_kit.negsampling.conftest import ScoreTable


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(1, 12):
        chosen = rng.choice(np.arange(1, 16), size=4, replace=False)
        users += [user] * 4
        items += list(chosen)
    ctx = context_from_arrays(np.array(users), np.array(items), 12, 16)
    gen = torch.Generator().manual_seed(3)
    model = ScoreTable(torch.randn(12, 4, generator=gen), torch.randn(16, 4, generator=gen))
    return ctx, model


def test_two_hop_table_rows_are_distributions():
    ctx, _ = _setup()
    table = two_hop_table(ctx)
    torch.testing.assert_close(table[1:].sum(1), torch.ones(15), rtol=1e-5, atol=1e-5)
    assert float(table[:, 0].abs().sum()) == 0.0


@pytest.mark.parametrize("share", [0.0, 0.7])
def test_chain_targets_exp_alpha_score_over_non_positives(share):
    """Long run of one user's chain: visit frequencies match p_n(j|u) ∝ exp(alpha s(u,j)) on non-positives."""
    ctx, model = _setup()
    sampler = get_sampler("mcns", alpha=0.8, neighbour_share=share, n_steps=1, burn_in=20, seed=0).bind(ctx)
    user = torch.tensor([1])
    user_e, item_e = model.user_embedding.weight.detach(), model.item_embedding.weight.detach()
    target = torch.exp(0.8 * (item_e @ user_e[1]))
    target[0] = 0.0
    target[ctx.positives.contains(torch.full((16,), 1), torch.arange(16))] = 0.0
    target = target / target.sum()
    counts = torch.zeros(16)
    for _ in range(6000):
        counts[sampler.sample(model, user, torch.tensor([1])).items] += 1
    assert counts[target == 0].sum() == 0  # never a positive or [PAD]
    assert 0.5 * float((counts / counts.sum() - target).abs().sum()) < 0.06  # total variation


def test_mcns_is_registered_and_validates():
    assert "mcns" in sampler_names()
    with pytest.raises(ConfigError, match="0 < alpha < 1"):
        get_sampler("mcns", alpha=1.5)
