import torch

from recsys_kit.negsampling import get_sampler
from recsys_kit.negsampling.reweighting import importance_weights


def test_importance_weights_are_self_normalised_and_log_q_corrected():
    scores = torch.randn(32, 10)
    log_q = torch.log(torch.rand(32, 10) + 0.01)
    weights = importance_weights(scores, log_q)
    torch.testing.assert_close(weights.sum(-1), torch.ones(32))
    assert (weights >= 0).all()
    # a frequently proposed item (large q) is down-weighted relative to a rare one with the same score
    same = torch.zeros(1, 2)
    w = importance_weights(same, torch.log(torch.tensor([[0.5, 0.05]])))
    assert w[0, 0] < w[0, 1]
    torch.testing.assert_close(importance_weights(scores, torch.zeros_like(scores)), torch.softmax(scores, -1))


def test_pris_weights_follow_scores(toy_context, score_model):
    sampler = get_sampler("pris", n_samples=6, proposal="uniform", seed=0).bind(toy_context)
    users = torch.randint(1, 50, (40,))
    out = sampler.sample(score_model, users, users)
    from recsys_kit.negsampling import backbone

    scores = backbone.score_candidates(score_model, users, out.items)
    torch.testing.assert_close(out.weights, torch.softmax(scores, -1))


def test_tce_truncates_the_largest_losses_on_a_schedule(toy_context):
    sampler = get_sampler("tce", max_drop=0.2, gradual_epochs=4).bind(toy_context)
    losses = torch.arange(10.0)
    sampler.on_epoch_start(None, 0)
    assert torch.equal(sampler.truncation_weights(losses), torch.ones(10))
    sampler.on_epoch_start(None, 4)
    weights = sampler.truncation_weights(losses)
    assert weights[-2:].eq(0).all() and weights[:-2].gt(0).all()
    assert weights.sum() == 10  # renormalised over kept pairs
    sampler.on_epoch_start(None, 2)
    assert sampler.drop_rate() == 0.1
