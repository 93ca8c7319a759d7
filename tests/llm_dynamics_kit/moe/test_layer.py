import pytest
import torch

from llm_dynamics_kit.model import DenseFFN, FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.moe.layer import MoEFFN
from llm_dynamics_kit.moe.routing import TopKRouter


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
