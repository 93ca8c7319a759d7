import pytest
import torch

from llm_dynamics_kit.moe.losses import load_balance_loss, p_penalty_loss, router_entropy_loss
from llm_dynamics_kit.moe.routing import select_top_k


def _routing(t=64, n=8, k=2, seed=0):
    logits = torch.randn(t, n, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    probs = logits.softmax(-1)
    return logits, probs, select_top_k(probs.detach(), k)


def test_equal_sizes_give_p_penalty_equal_to_load_balance_over_n():
    _, probs, mask = _routing()
    lb = load_balance_loss(probs, mask)
    pp = p_penalty_loss(probs, mask, [128] * 8, normalization="sum")
    assert torch.allclose(pp, lb / 8)


def test_load_balance_known_value_for_uniform_routing():
    probs = torch.full((10, 4), 0.25)
    mask = torch.zeros(10, 4, dtype=torch.bool)
    mask[:, :2] = True  # f = (1, 1, 0, 0)
    assert load_balance_loss(probs, mask).item() == pytest.approx(4 * (0.25 + 0.25))


def test_p_penalty_gradient_lowers_the_large_frequently_used_expert():
    # every token prefers expert 3, the largest: descent must lower its logit and raise the others
    logits = torch.tensor([[0.0, 0.0, 0.0, 2.0]]).repeat(32, 1).requires_grad_()
    probs = logits.softmax(-1)
    mask = select_top_k(probs.detach(), 2)
    p_penalty_loss(probs, mask, [16, 32, 48, 160]).backward()
    grad = logits.grad.mean(0)
    assert grad[3] > 0  # gradient descent decreases the big expert's logit
    assert torch.all(grad[:3] < 0)
    # raw sizes give the same direction, only scaled
    logits.grad = None
    p_penalty_loss(logits.softmax(-1), mask, [16, 32, 48, 160], normalization="none").backward()
    assert logits.grad.mean(0)[3] > 0


def test_gate_weighted_variant_has_zero_gradient_for_top1_renormalised():
    logits, probs, _ = _routing(k=1)
    mask = select_top_k(probs.detach(), 1)
    gates = probs * mask
    gates = gates / gates.sum(-1, keepdim=True)
    loss = p_penalty_loss(probs, mask, [8 * (i + 1) for i in range(8)], variant="gate_weighted", gates=gates)
    loss.backward()
    assert torch.allclose(logits.grad, torch.zeros_like(logits.grad), atol=1e-7)


def test_entropy_loss_is_log_n_for_uniform_and_zero_for_one_hot():
    assert router_entropy_loss(torch.full((5, 8), 1 / 8)).item() == pytest.approx(torch.log(torch.tensor(8.0)).item())
    assert router_entropy_loss(torch.eye(4)).item() == pytest.approx(0.0, abs=1e-6)
    assert router_entropy_loss(torch.full((5, 8), 1 / 8), scale_by_n=True).item() == pytest.approx(
        8 * torch.log(torch.tensor(8.0)).item())
