import pytest
import torch

from llm_dynamics_kit.model import (
    FFNConfig,
    ModelConfig,
    Transformer,
    activated_params,
    flops_per_token,
    register_ffn,
)
from shared.errors import ConfigError


def test_activated_parameter_counts_match_the_hmoe_paper():
    # brief §3.1: MoE-0.4B top-2 ≈ 162.4M activated (paper 163M); Dense-0.2B ≈ 176.6M (paper 176M)
    moe = ModelConfig(vocab_size=32000, d_model=768, n_layers=12, n_heads=12,
                      ffn=FFNConfig(kind="moe", hidden=12288, n_experts=8, top_k=2))
    dense = ModelConfig(vocab_size=32000, d_model=768, n_layers=12, n_heads=12, ffn=FFNConfig(hidden=3584))
    router = 12 * 8 * 768
    norms = 12 * 2 * 768 + 768
    assert activated_params(moe) - router - norms == 49_152_000 + 12 * (4 * 768**2 + 3 * 768 * 3072)
    assert round(activated_params(moe) / 1e6, 1) == 162.5
    assert round(activated_params(dense) / 1e6) == 177


def test_built_model_counts_agree_with_the_analytic_formula(tiny_model_config):
    model = Transformer(tiny_model_config)
    assert model.num_params() == activated_params(tiny_model_config) == model.activated_params()
    # Kaplan: 6·(params without the embedding lookup and norms) + 6·L·T·d
    c = tiny_model_config
    matmul = model.num_params() - c.vocab_size * c.d_model - (2 * c.n_layers + 1) * c.d_model
    assert flops_per_token(c, seq_len=32) == 6 * matmul + 6 * c.n_layers * 32 * c.d_model


def test_capture_exposes_causal_attention_probabilities_and_ffn_activations(tiny_model_config):
    model = Transformer(tiny_model_config).eval()
    idx = torch.randint(0, 320, (2, 10))
    plain = model(idx).logits
    with model.capture(attention=True, ffn=True) as cap:
        logits = model(idx).logits
    assert torch.allclose(plain, logits, atol=1e-5)  # the explicit path equals the SDPA path
    attn = cap.attention[1]
    assert attn.shape == (2, 2, 10, 10)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 2, 10), atol=1e-5)
    assert torch.all(attn.triu(1) == 0)  # causal
    assert cap.ffn[0].shape == (2, 10, 64)
    assert not model.blocks[0].attn.need_weights  # hooks removed afterwards


def test_head_weights_reconstruct_the_attention_projections(tiny_model_config):
    model = Transformer(tiny_model_config)
    w = model.head_weights(0)
    assert w["W_V"].shape == (2, 16, 32) and w["W_O"].shape == (2, 32, 16)
    x = torch.randn(5, 32)
    attn = model.blocks[0].attn
    per_head = sum((x @ w["W_V"][h].T) @ w["W_O"][h].T for h in range(2))
    assert torch.allclose(per_head, attn.o_proj(attn.v_proj(x)), atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    config = ModelConfig(vocab_size=64, d_model=16, n_layers=2, n_heads=2, max_seq_len=16,
                         ffn=FFNConfig(kind="moe", hidden=64, n_experts=4, size_strategy="hybrid", multiple_of=4))
    model = Transformer(config)
    model.save_pretrained(tmp_path / "m")
    loaded = Transformer.from_pretrained(tmp_path / "m")
    idx = torch.randint(0, 64, (2, 16))
    assert torch.equal(model(idx).logits, loaded(idx).logits)
    assert loaded.blocks[0].ffn.sizes == [8, 8, 16, 32]


def test_registered_ffn_kind_and_bad_inputs(tiny_model_config):
    from llm_dynamics_kit.model import DenseFFN

    @register_ffn("test_relu")
    def build(config):
        return DenseFFN(config.d_model, 8, "relu")

    tiny_model_config.ffn.kind = "test_relu"
    model = Transformer(tiny_model_config)
    assert model.blocks[0].ffn.matrices_per_unit == 2
    tiny_model_config.ffn.kind = "missing"
    with pytest.raises(ConfigError, match="unknown ffn.kind"):
        Transformer(tiny_model_config)
    with pytest.raises(ValueError):
        ModelConfig(d_model=30, n_heads=4)
    tiny_model_config.ffn.kind = "dense"
    with pytest.raises(ConfigError, match="max_seq_len"):
        Transformer(tiny_model_config)(torch.zeros(1, 33, dtype=torch.long))


def test_the_substrate_imports_no_ffn_plugin_and_finds_them_through_entry_points():
    # issue 25: model.py used to import moe/layer.py and ssd/moefied.py (an import circle through train.py).
    # In a fresh interpreter, building the model module and a dense model imports neither; a "moe" or
    # "moefied" kind is then found through the paperkits.llm_ffn entry points (a saved MoE model loads).
    import subprocess
    import sys

    code = (
        "import sys, llm_dynamics_kit.model as m\n"
        "m.Transformer(m.ModelConfig(vocab_size=16, d_model=8, n_layers=1, n_heads=2, max_seq_len=8))\n"
        "plugins = [n for n in sys.modules if n.startswith(('llm_dynamics_kit.moe', 'llm_dynamics_kit.ssd',"
        " 'llm_dynamics_kit.train'))]\n"
        "assert not plugins, plugins\n"
        "for kind in ('moe', 'moefied'):\n"
        "    f = m.FFNConfig(kind=kind, hidden=32, n_experts=4, activation='relu')\n"
        "    m.Transformer(m.ModelConfig(vocab_size=16, d_model=8, n_layers=1, n_heads=2, max_seq_len=8, ffn=f))\n"
        "assert 'llm_dynamics_kit.moe.layer' in sys.modules and 'llm_dynamics_kit.ssd.moefied' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    # and no import of a paper package anywhere in the substrate's source, lazy ones included
    import ast
    from pathlib import Path

    import llm_dynamics_kit

    root = Path(llm_dynamics_kit.__file__).parent
    for name in ("model.py", "hf.py", "data.py", "train.py"):
        tree = ast.parse((root / name).read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        papers = [m for m in imported if m.startswith(("llm_dynamics_kit.moe", "llm_dynamics_kit.ssd",
                                                       "llm_dynamics_kit.hmoe", "llm_dynamics_kit.copying"))]
        assert not papers, (name, papers)
