import pytest
import torch

from llm_dynamics_kit.model import DenseFFN, FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.moe.layer import MoEFFN
from llm_dynamics_kit.moe.routing import TopKRouter
from shared.errors import ConfigError


def test_moe_with_one_expert_equals_the_dense_ffn():
    torch.manual_seed(0)
    dense = DenseFFN(16, 24)
    moe = MoEFFN(16, [24], TopKRouter(16, 1, k=1))
    moe.experts.experts[0].load_state_dict(dense.state_dict())
    x = torch.randn(3, 5, 16)
    assert torch.allclose(moe(x), dense(x), atol=1e-6)


@pytest.mark.parametrize("router", ["topk", "topp"])
def test_sort_and_split_dispatch_matches_a_naive_per_token_sum(router):
    torch.manual_seed(1)
    config = ModelConfig(d_model=16, n_heads=2, ffn=FFNConfig(kind="moe", hidden=96, n_experts=4, top_k=2,
                                                              router=router, top_p=0.6,
                                                              size_strategy="arithmetic", multiple_of=4))
    moe = MoEFFN.from_config(config)
    x = torch.randn(2, 7, 16)
    y = moe(x).reshape(-1, 16)
    r = moe.last_routing
    flat = x.reshape(-1, 16)
    naive = sum(r.gates[:, i:i + 1] * e(flat) for i, e in enumerate(moe.experts.experts))
    assert torch.allclose(y, naive, atol=1e-5)
    assert moe.stats["experts_per_token"] == float(r.mask.float().sum(-1).mean())
    if router == "topk":
        assert moe.stats["experts_per_token"] == 2.0
    expected_width = float((r.mask.float() * torch.tensor(moe.sizes, dtype=torch.float32)).sum(-1).mean())
    assert abs(moe.activated_hidden() - expected_width) < 1e-4


def test_moe_model_aux_losses_are_summed_over_layers_with_coefficients():
    config = ModelConfig(vocab_size=64, d_model=16, n_layers=3, n_heads=2, max_seq_len=16,
                         ffn=FFNConfig(kind="moe", hidden=64, n_experts=4, size_strategy="arithmetic",
                                       multiple_of=4, p_penalty_coef=0.1, load_balance_coef=0.0))
    model = Transformer(config)
    idx = torch.randint(0, 64, (2, 16))
    out = model(idx, idx)
    per_layer = [f.aux_losses["p_penalty"] for f in model.ffns]
    assert torch.allclose(out.aux_losses["p_penalty"], sum(per_layer))
    assert torch.allclose(out.aux_loss, 0.1 * sum(per_layer))  # load balance logged but coefficient 0
    assert torch.allclose(out.loss, out.lm_loss + out.aux_loss)
    out.loss.backward()
    assert model.blocks[0].ffn.router.weight.grad.abs().sum() > 0


def _reference_sort_and_split(experts, x, mask, gates):
    """The dispatch before issue 25, verbatim: one GEMM pair per expert in a Python loop."""
    token_idx, expert_idx = mask.nonzero(as_tuple=True)
    order = torch.argsort(expert_idx, stable=True)
    token_idx, expert_idx = token_idx[order], expert_idx[order]
    counts = torch.bincount(expert_idx, minlength=len(experts.experts)).tolist()
    routed = x[token_idx]
    outputs = []
    for expert, chunk in zip(experts.experts, routed.split(counts)):
        if chunk.shape[0]:
            outputs.append(expert.w_out(expert.hidden_activations(chunk)))
    y = torch.cat(outputs) if outputs else routed.new_zeros(0, x.shape[-1])
    weight = gates[token_idx, expert_idx].unsqueeze(-1).to(y.dtype)
    return torch.zeros_like(x).index_add_(0, token_idx, y * weight)


@pytest.mark.parametrize("strategy,router,activation", [("homogeneous", "topk", "swiglu"),
                                                        ("hybrid", "topp", "swiglu"),
                                                        ("homogeneous", "topp", "relu"),
                                                        ("arithmetic", "topk", "gelu")])
def test_grouped_dispatch_equals_the_reference_loop_with_identical_routing_and_gradients(strategy, router,
                                                                                         activation):
    # issue 25: equal-size experts run as grouped GEMMs (no loop over a size group's experts). Routing is the
    # router's, bit-identical; outputs and every gradient match the old per-expert loop kept above.
    from llm_dynamics_kit.moe.routing import select_top_k

    torch.manual_seed(3)
    config = ModelConfig(d_model=16, n_heads=2, ffn=FFNConfig(kind="moe", hidden=256, n_experts=8, top_k=2,
                                                              router=router, size_strategy=strategy,
                                                              activation=activation, multiple_of=8))
    moe = MoEFFN.from_config(config)
    moe.experts.dispatch = "grouped"
    x = torch.randn(4, 40, 16, requires_grad=True)
    y = moe(x)
    assert moe.experts.last_dispatch == "grouped"
    routing = moe.router(x.reshape(-1, 16))
    assert torch.equal(routing.mask, moe.last_routing.mask) and torch.equal(routing.gates.detach(),
                                                                              moe.last_routing.gates)
    if router == "topk":
        assert torch.equal(routing.mask, select_top_k(routing.probs, 2))
    ref = _reference_sort_and_split(moe.experts, x.reshape(-1, 16), routing.mask, routing.gates).view_as(y)
    assert torch.allclose(y, ref, atol=1e-6, rtol=1e-5)
    grad = torch.randn_like(y)
    ours = torch.autograd.grad(y, [x, *moe.parameters()], grad, allow_unused=True)
    theirs = torch.autograd.grad(ref, [x, *moe.parameters()], grad, allow_unused=True)
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert len(moe.experts.groups) == len(set(moe.sizes)) == {"homogeneous": 1, "hybrid": 3}.get(strategy, 5)


def test_dispatch_auto_uses_the_loop_for_a_few_tokens_and_rejects_unaligned_grouped_shapes():
    moe = MoEFFN(12, [24, 24, 24, 24], TopKRouter(12, 4, k=2))
    moe(torch.randn(1, 1, 12))
    assert moe.experts.last_dispatch == "loop"  # decode: only the two experts in use are read
    moe(torch.randn(1, 64, 12))
    assert moe.experts.last_dispatch == "grouped"
    odd = MoEFFN(10, [24, 24], TopKRouter(10, 2, k=1), dispatch="grouped")
    with pytest.raises(ConfigError, match="multiples of 4"):
        odd(torch.randn(1, 64, 10))
    odd.experts.dispatch = "auto"
    odd(torch.randn(1, 64, 10))
    assert odd.experts.last_dispatch == "loop"
    with pytest.raises(ConfigError, match="dispatch must be one of"):
        MoEFFN(12, [24], TopKRouter(12, 1, k=1), dispatch="fast")
