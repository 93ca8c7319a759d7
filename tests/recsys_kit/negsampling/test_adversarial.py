import torch

from recsys_kit.negsampling import get_sampler


def test_irgan_generator_learns_to_sample_high_reward_items(toy_context):
    """REINFORCE against a fixed discriminator: the generator's expected reward rises, its surrogate loss falls."""
    sampler = get_sampler("irgan", dim=8, lr=0.05, seed=0).bind(toy_context)
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(50, 80, generator=gen) * 0.1
    rewards[:, 60:] += 1.0  # items 60..79 fool the discriminator
    users = torch.arange(1, 50)
    before = sampler.expected_reward(users, rewards[users])
    for _ in range(150):
        batch = torch.randint(1, 50, (64,), generator=gen)
        items = sampler.sample(None, batch, batch).items
        sampler.generator_step(batch, items, rewards[batch, items])
    after = sampler.expected_reward(users, rewards[users])
    assert after > before + 0.3, (before, after)
    # still never proposes a training positive
    items = sampler.sample(None, users, users).items
    assert not toy_context.positives.contains(users, items).any()


def test_inverse_cdf_draw_matches_probabilities_and_skips_zero_mass():
    from scipy.stats import chisquare

    from recsys_kit.negsampling.adversarial import _draw_categorical

    probs = torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3, 0.0]).expand(100_000, -1).contiguous()
    counts = torch.bincount(_draw_categorical(probs, torch.Generator().manual_seed(0)), minlength=6)
    assert counts[[0, 2, 5]].sum() == 0  # masked items (positives, [PAD]) are never drawn
    assert chisquare(counts[[1, 3, 4]].numpy(), [10_000, 60_000, 30_000]).pvalue > 1e-3
    # trailing zero-mass items (where a draw rounding past the total would land) are never returned
    edge = torch.tensor([[0.25, 0.75, 0.0, 0.0]]).expand(10_000, -1).contiguous()
    assert _draw_categorical(edge, torch.Generator().manual_seed(1)).max() <= 1
