"""The one invariant every sampler shares: a returned negative is never a training positive of its user."""

import pytest
import torch

from recsys_kit.negsampling import PositiveIndex, get_sampler, sampler_names
from recsys_kit.negsampling.knowledge import KnowledgeGraph

KG_PAIRS = (torch.arange(1, 80), torch.arange(1, 80) % 6)


def _bind(name, ctx):
    if name == "predefined":
        ctx.known_negatives = PositiveIndex(torch.randint(1, 50, (300,)), torch.randint(1, 80, (300,)), 50, 80)
    if name in ("kg_neighbour", "kgpolicy"):
        ctx.kg = KnowledgeGraph.from_pairs(KG_PAIRS[0].numpy(), KG_PAIRS[1].numpy(), 80, 6)
    ctx.max_epochs = 4
    return get_sampler(name, seed=0).bind(ctx)


@pytest.mark.parametrize("name", sampler_names())
def test_sampler_never_returns_training_positives(name, toy_context, score_model):
    sampler = _bind(name, toy_context)
    if hasattr(sampler, "build_gates"):
        sampler.build_gates(score_model)
    for step in range(12):
        gen = torch.Generator().manual_seed(100 + step)
        users = torch.randint(1, 50, (64,), generator=gen)
        pos = torch.randint(1, 80, (64,), generator=gen)
        sampler.on_epoch_start(score_model, step % 4)
        out = sampler.sample(score_model, users, pos)
        items = out.items
        users_b = users.reshape(-1, *([1] * (items.dim() - 1))).expand_as(items)
        assert items.shape[0] == 64
        assert (items >= 1).all() and (items < 80).all()
        assert not toy_context.positives.contains(users_b, items).any(), name
        if out.weights is not None:
            torch.testing.assert_close(out.weights.sum(-1), torch.ones(64))
