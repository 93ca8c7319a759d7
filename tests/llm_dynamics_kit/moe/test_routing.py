import torch

from llm_dynamics_kit.moe.routing import TopKRouter, TopPRouter, select_top_k, select_top_p


def test_top_p_selects_the_minimal_prefix_reaching_p():
    # unsorted on purpose: sorted order is expert 2 (0.5), 0 (0.3), 3 (0.15), 1 (0.05)
    probs = torch.tensor([[0.3, 0.05, 0.5, 0.15]])
    assert select_top_p(probs, 0.6).tolist() == [[True, False, True, False]]
    assert select_top_p(probs, 0.5).tolist() == [[False, False, True, False]]  # 0.5 already reaches p
    assert select_top_p(probs, 0.81).tolist() == [[True, False, True, True]]
    assert select_top_p(probs, 1.0).sum() == 4


def test_top_p_always_keeps_one_expert_and_respects_the_cap_and_ties():
    assert select_top_p(torch.tensor([[0.9, 0.1]]), 0.01).tolist() == [[True, False]]
    ties = torch.full((1, 4), 0.25)
    assert select_top_p(ties, 0.6).tolist() == [[True, True, True, False]]  # stable order among ties
    assert select_top_p(ties, 1.0, max_experts=2).sum() == 2


def test_top_k_mask_and_renormalised_gates():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    assert select_top_k(probs, 2).tolist() == [[False, True, True], [True, False, True]]
    router = TopKRouter(d_model=4, n_experts=3, k=2)
    out = router(torch.randn(10, 4))
    assert torch.allclose(out.gates.sum(-1), torch.ones(10))
    assert torch.all((out.gates > 0) == out.mask)
    assert torch.allclose(out.probs.sum(-1), torch.ones(10))


def test_top_p_without_renormalisation_keeps_raw_probabilities():
    router = TopPRouter(d_model=4, n_experts=5, p=0.6, renormalize=False)
    out = router(torch.randn(7, 4))
    assert torch.allclose(out.gates, out.probs * out.mask)
    assert torch.all(out.gates.sum(-1) >= 0.6 - 1e-6)
