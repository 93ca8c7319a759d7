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
