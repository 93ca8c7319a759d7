import numpy as np
import pytest
import torch

from llm_dynamics_kit.ssd.hf_moefy import MoEfiedGPT2MLP, densify_hf, hf_labels, moefy_hf, set_hf_experts
from llm_dynamics_kit.ssd.moefied import MoEficationError


def tiny_gpt2(activation="relu"):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, n_inner=128,
                        activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize("activation", ["relu", "gelu_new"])
def test_hf_gpt2_moefy_k_equals_e_and_exact_round_trip(activation):
    model = tiny_gpt2(activation)
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(ids).logits
    params = {k: v.clone() for k, v in model.state_dict().items()}
    clusterings = moefy_hf(model, n_experts=8, top_k=8, n_iter=20)
    assert isinstance(model.transformer.h[0].mlp, MoEfiedGPT2MLP)
    assert all(np.bincount(c.labels).tolist() == [16] * 8 for c in clusterings)
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, before, atol=1e-5)  # neuron permutation + all experts = dense
        set_hf_experts(model, top_k=2)
        sparse = model(ids).logits
        set_hf_experts(model, selector="oracle")
        oracle = model(ids).logits
    assert not torch.allclose(sparse, before, atol=1e-3)
    # the oracle keeps the most activation mass, so it is closer to the dense output than the router (on average)
    assert (oracle - before).abs().mean() <= (sparse - before).abs().mean() + 1e-6
    labels = hf_labels(model)
    assert [np.bincount(lab).tolist() for lab in labels] == [[16] * 8] * 2
    densify_hf(model)
    after = model.state_dict()
    assert set(after) == set(params) and all(torch.equal(after[k], v) for k, v in params.items())


def test_relu_gpt2_oracle_equals_masked_dense():
    model = tiny_gpt2("relu")
    mlp = model.transformer.h[0].mlp
    x = torch.randn(5, 32)
    with torch.no_grad():
        h = torch.relu(mlp.c_fc(x))
        moefy_hf(model, n_experts=8, top_k=3)
        set_hf_experts(model, selector="oracle")
        wrapper = model.transformer.h[0].mlp
        perm = wrapper.perm
        hp = h[:, perm].view(5, 8, 16)
        keep = torch.zeros(5, 8).scatter(-1, hp.sum(-1).topk(3, -1).indices, 1.0)
        expected = mlp.c_proj((hp * keep[..., None]).view(5, 128))
        assert torch.allclose(wrapper(x), expected, atol=1e-5)


def test_gated_or_wrong_activation_models_raise_naming_the_module():
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(MoEficationError, match="not a GPT-2-class model"):
        moefy_hf(llama, 8, 2)
    with pytest.raises(MoEficationError, match=r"transformer\.h\.0\.mlp uses activation 'silu'"):
        moefy_hf(tiny_gpt2("silu"), 8, 2)
    with pytest.raises(MoEficationError, match="divisible"):
        moefy_hf(tiny_gpt2(), 7, 2)
