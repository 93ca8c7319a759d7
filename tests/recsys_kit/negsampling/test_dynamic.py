import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from recsys_kit.negsampling import backbone, get_sampler
from shared.errors import ConfigError


def _scores(model, users, items):
    return backbone.score_candidates(model, users, items)


def test_dns_picks_the_candidate_argmax(toy_context, score_model):
    sampler = get_sampler("dns", n_candidates=8, seed=0).bind(toy_context)
    users, pos = torch.randint(1, 50, (100,)), torch.randint(1, 80, (100,))
    state = sampler.generator.get_state()
    cand = sampler.candidates(users)
    sampler.generator.set_state(state)
    chosen = sampler.sample(score_model, users, pos).items
    expected = cand.gather(1, _scores(score_model, users, cand).argmax(1, keepdim=True))[:, 0]
    assert torch.equal(chosen, expected)


def test_dns_mn_bounds_dns_and_uniform():
    scores = torch.randn(20_000, 6, generator=torch.Generator().manual_seed(0))
    one = get_sampler("dns_mn", n_candidates=6, top_n=1, seed=0)
    assert torch.equal(one.choose(scores, None), scores.argmax(1))
    full = get_sampler("dns_mn", n_candidates=6, top_n=6, seed=0)
    picks = full.choose(scores, None)
    assert chisquare(np.bincount(picks.numpy(), minlength=6)).pvalue > 1e-3  # N = M: uniform over candidates
    mid = get_sampler("dns_mn", n_candidates=6, top_n=3, seed=0).choose(scores, None)
    rank = (scores > scores.gather(1, mid.unsqueeze(1))).sum(1)
    assert rank.max() <= 2  # always among the top 3


def test_curriculum_pool_shrinks_from_m_to_one(toy_context):
    toy_context.max_epochs = 10
    sampler = get_sampler("cns", n_candidates=8).bind(toy_context)
    sizes = []
    for epoch in range(10):
        sampler.on_epoch_start(None, epoch)
        sizes.append(sampler.pool_size())
    assert sizes[0] == 8 and sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)
    scores = torch.arange(8.0).repeat(4, 1)  # later candidates score higher
    sampler.on_epoch_start(None, 5)
    assert (sampler.choose(scores, None) == sampler.pool_size() - 1).all()


def test_ahns_equals_dns_below_target_and_tracks_target_otherwise():
    sampler = get_sampler("ahns", n_candidates=5, alpha=1.0, beta=0.1, p=-2.0)
    pos = torch.tensor([0.0, 0.0])  # target = 0.1 / (0 + 1) = 0.1
    low = torch.tensor([[-3.0, -1.0, -2.0, 0.05, -0.5], [-1.0, -0.2, -0.3, -0.4, -2.0]])
    assert torch.equal(sampler.choose(low, pos), low.argmax(1))
    spread = torch.tensor([[0.09, 2.0, -1.0, 0.5, 0.3], [3.0, 0.12, 0.2, -0.1, 1.0]])
    assert sampler.choose(spread, pos).tolist() == [0, 1]
    high_pos = torch.tensor([3.0, 3.0])  # target 0.1/16: a better-scored positive gets an easier negative
    assert sampler.target(high_pos)[0] < sampler.target(pos)[0]
    with pytest.raises(ConfigError):
        get_sampler("ahns", p=0.5)


def test_mixgcf_output_lies_on_the_mixing_segments():
    sampler = get_sampler("mixgcf", n_candidates=4, seed=0)
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(3, 5, generator=gen)
    pos = torch.randn(3, 3, 5, generator=gen, requires_grad=True)  # [B, L+1, d]
    cand = torch.randn(3, 4, 3, 5, generator=gen)  # [B, M, L+1, d]
    weights = torch.rand(3, 1, 3, 1, generator=gen)
    neg, index = sampler.mix(user, pos, cand, weights)
    for b in range(3):
        per_layer = [weights[b, 0, layer, 0] * pos[b, layer] + (1 - weights[b, 0, layer, 0]) * cand[b, index[b, layer], layer]
                     for layer in range(3)]
        torch.testing.assert_close(neg[b], torch.stack(per_layer).mean(0))
        for layer in range(3):  # hop mixing: the chosen candidate maximises <pool(e_u), mixed> at that layer
            mixed = weights[b, 0, layer, 0] * pos[b, layer] + (1 - weights[b, 0, layer, 0]) * cand[b, :, layer]
            assert index[b, layer] == (mixed @ user[b]).argmax()
    neg.sum().backward()
    assert pos.grad is not None and pos.grad.abs().sum() > 0  # the positive receives gradient through the mix
    pure, _ = sampler.mix(user, pos.detach(), cand, torch.ones(3, 1, 3, 1))
    torch.testing.assert_close(pure, pos.detach().mean(1))  # a = 1: the positive itself


def test_srns_memory_updates_and_history(toy_context, score_model):
    sampler = get_sampler("srns", n_candidates=4, s2_ratio=2, history=3, seed=0).bind(toy_context)
    before = sampler.memory.clone()
    users = torch.arange(1, 50)
    for epoch in range(4):
        sampler.on_epoch_start(score_model, epoch)
    assert not torch.isnan(sampler.score_history).any()  # 4 epochs filled a 3-deep ring buffer
    torch.testing.assert_close(sampler.score_history[:, :, -1], _scores(score_model, torch.arange(50), sampler.memory))
    sampler.sample(score_model, users, torch.randint(1, 80, (49,)))
    assert not torch.equal(before[users], sampler.memory[users])  # refreshed with fresh uniform items
    assert not toy_context.positives.contains(users.unsqueeze(1), sampler.memory[users]).any()
    # an item new to the memory starts a fresh score history (NaN); a kept item keeps its own history
    for user in users.tolist():
        for slot, item in enumerate(sampler.memory[user].tolist()):
            history = sampler.score_history[user, slot]
            old = (before[user] == item).nonzero()
            if len(old):
                assert not torch.isnan(history).any()
                assert history[-1] == pytest.approx(float(_scores(score_model, torch.tensor([user]), torch.tensor([[item]]))))
            else:
                assert torch.isnan(history).all()
    assert sampler.variance(users).shape == (49, 4)


def test_dens_gate_loss_trains_gates_and_selection_is_per_layer(tiny_recbole):
    config, train, _, _, model = tiny_recbole("LightGCN")
    from recsys_kit.negsampling.hook import build_context

    sampler = get_sampler("dens", n_candidates=6, gamma=0.3, warmup=2, seed=0).bind(build_context(train.dataset))
    sampler.build_gates(model)
    assert len(sampler.gates.w_i) == model.n_layers + 1
    batch = next(iter(train))
    loss = sampler.training_loss(model, batch)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in sampler.gates.w_i.parameters())
    assert model.user_embedding.weight.grad.abs().sum() > 0
    assert torch.isfinite(loss)
