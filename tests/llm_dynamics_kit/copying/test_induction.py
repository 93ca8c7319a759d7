import numpy as np
import pytest
import torch

from llm_dynamics_kit.copying.adapters import as_adapter
from llm_dynamics_kit.copying.induction import (
    eigen_positivity,
    induction_scores,
    ov_eigen_positivity,
    prefix_matching_score,
    repeated_random_tokens,
    transformer_lens_induction_scores,
)
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from shared.errors import ConfigError

from .planted import PlantedInductionModel


def test_prefix_matching_of_ideal_and_previous_token_patterns():
    s, t = 10, 20
    ideal = torch.zeros(1, 1, t, t)
    for i in range(1, s):
        ideal[0, 0, s + i - 1, i] = 1.0
    previous = torch.zeros(1, 1, t, t)
    previous[0, 0, torch.arange(1, t), torch.arange(0, t - 1)] = 1.0
    assert float(prefix_matching_score(ideal, s)) == pytest.approx(1.0)
    assert float(prefix_matching_score(previous, s)) == pytest.approx(0.0)
    # with a BOS token every position shifts by one
    shifted = torch.nn.functional.pad(ideal, (1, 0, 1, 0))
    assert float(prefix_matching_score(shifted, s, offset=1)) == pytest.approx(1.0)


def test_eigen_positivity_known_answers_and_range():
    d, v = 8, 20
    w_e = torch.linalg.qr(torch.randn(v, d))[0].T  # (d, V) orthonormal rows, W_U = W_Eᵀ
    eye = torch.eye(d)[None]
    assert float(ov_eigen_positivity(w_e, eye, eye, w_e.T)) == pytest.approx(1.0)
    assert float(ov_eigen_positivity(w_e, eye, -eye, w_e.T)) == pytest.approx(-1.0)
    random = eigen_positivity(torch.randn(200, 6, 6))
    assert torch.all(random.abs() <= 1 + 1e-9) and abs(float(random.mean())) < 0.1
    # the cyclic identity: EP of the small product equals EP of the full V × V circuit
    w_v, w_o, w_u = torch.randn(1, 4, d), torch.randn(1, d, 4), torch.randn(v, d)
    full = w_u @ w_o[0] @ w_v[0] @ w_e
    assert float(ov_eigen_positivity(w_e, w_v, w_o, w_u)) == pytest.approx(float(eigen_positivity(full)), abs=1e-6)


def test_planted_induction_head_scores_high_only_where_planted():
    scores = induction_scores(PlantedInductionModel(vocab_size=256, max_len=128), half_len=50, n_sequences=8)
    assert scores.induction.shape == (2, 2)
    assert scores.induction[1, 0] > 0.8 and scores.ov_positivity[1, 0] == pytest.approx(1.0)
    others = np.delete(scores.induction.reshape(-1), 2)
    assert np.all(np.abs(others) < 0.05)
    assert scores.previous_token[0, 0] > 0.9 and scores.prefix_matching[0, 0] < 0.05
    # TL's score runs over every query, and first-half queries have no earlier occurrence: ≈ (s-1)/(2s)
    assert 0.45 < scores.prefix_matching_mul[1, 0] < 0.6 and scores.prefix_matching_mul[0, 0] < 0.05
    assert scores.induction_loss < 1.0  # the repeated half is predicted
    assert list(scores.per_layer_max().round(1)) == [0.0, pytest.approx(scores.induction[1, 0], abs=0.05)]


def _attention_output_at_first_position(module, x_in, ov, bias_v=None, bias_o=None):
    """What the OV weights predict for position 0 (which attends only to itself): Σ_h W_O^h W_V^h x."""
    heads = torch.einsum("hdc,c->hd", ov["W_V"], x_in)
    if bias_v is not None:
        heads = heads + bias_v.view(heads.shape)
    out = torch.einsum("hcd,hd->c", ov["W_O"], heads)
    return out + (bias_o if bias_o is not None else 0)


def _check_ov_slicing(model, attn_module, bias_fn=lambda: (None, None)):
    """The adapter's per-head W_V/W_O reproduce the attention block's output at position 0 (known answer)."""
    seen = {}
    handle = attn_module.register_forward_hook(
        lambda m, args, kwargs, out: seen.update(x=(args[0] if args else kwargs["hidden_states"]), y=out),
        with_kwargs=True)
    ids = torch.randint(1, 50, (1, 6))
    adapter = as_adapter(model)
    with adapter.evaluating():
        adapter.logits(ids)
    handle.remove()
    y = seen["y"][0] if isinstance(seen["y"], tuple) else seen["y"]
    ov = adapter.ov_weights(0, fold_norms=False)
    predicted = _attention_output_at_first_position(attn_module, seen["x"][0, 0].detach(), ov, *bias_fn())
    torch.testing.assert_close(predicted, y[0, 0].detach(), atol=1e-5, rtol=1e-4)


def test_native_model_ov_slicing_and_scores():
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, max_seq_len=64,
                                    ffn=FFNConfig(hidden=64)))
    _check_ov_slicing(model, model.blocks[0].attn)
    scores = induction_scores(model, half_len=100, n_sequences=4)
    assert scores.half_len == 32 and scores.induction.shape == (2, 4)
    assert np.all(np.abs(scores.ov_positivity) <= 1) and np.all(np.abs(scores.induction) <= 1)


def test_tiny_random_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                       bos_token_id=0, eos_token_id=0))
    attn = model.transformer.h[0].attn
    d = 32
    _check_ov_slicing(model, attn, lambda: (attn.c_attn.bias[2 * d:].detach(), attn.c_proj.bias.detach()))
    scores = induction_scores(model, half_len=20, n_sequences=4)
    assert scores.induction.shape == (2, 4) and np.all(np.abs(scores.ov_positivity) <= 1)
    assert model.config._attn_implementation == "sdpa"  # switched to eager for the scores, then restored


def test_tiny_random_llama_with_grouped_query_attention():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                         bos_token_id=0, eos_token_id=0, pad_token_id=0))
    _check_ov_slicing(model, model.model.layers[0].self_attn)
    scores = induction_scores(model, half_len=20, n_sequences=4, bos_id=0)
    assert scores.induction.shape == (2, 4) and np.all(np.abs(scores.induction) <= 1)


def test_function_models_cannot_be_scored_and_tl_cross_check_is_optional():
    with pytest.raises(ConfigError):
        induction_scores(lambda ids: torch.zeros(*ids.shape, 8))
    ids = repeated_random_tokens(5, 2, np.arange(3, 9), bos_id=1)
    assert ids.shape == (2, 11) and torch.equal(ids[:, 1:6], ids[:, 6:]) and torch.all(ids[:, 0] == 1)
    try:
        import transformer_lens  # noqa: F401
    except ImportError:
        assert transformer_lens_induction_scores(None, ids) is None


def _one_token_induction_ceiling(ids: np.ndarray, length: int, lead: int) -> float:
    """Accuracy of an ideal one-token induction head (vote over what followed each earlier occurrence)."""
    hits = total = 0.0
    for row in ids:
        for pos in range(lead + length, lead + 2 * length - 1):  # the positions probe_scores scores
            following = [row[j + 1] for j in range(pos) if row[j] == row[pos]]
            if following:
                values, counts = np.unique(following, return_counts=True)
                winners = values[counts == counts.max()]
                hits += (row[pos + 1] in winners) / len(winners)
            total += 1
    return hits / total


def test_distinct_probe_tokens_lift_the_one_token_induction_ceiling():
    """With 127 tokens a token recurs so often that even ideal one-token induction misses > 10% of a 9-token
    repeat after 21 tokens; distinct probe tokens make every copy position unambiguous."""
    from llm_dynamics_kit.copying.induction import probe_ids

    pool = np.arange(1, 128)
    plain = probe_ids(9, 21, 400, pool, seed=0).numpy()
    distinct = probe_ids(9, 21, 400, pool, seed=0, distinct=True).numpy()
    assert _one_token_induction_ceiling(plain, 9, 21) < 0.9
    assert _one_token_induction_ceiling(distinct, 9, 21) == 1.0
    assert all(len(set(row[:30])) == 30 for row in distinct)  # lead-in + segment never repeat a token
    assert (distinct[:, 21:30] == distinct[:, 30:39]).all()
    with pytest.raises(ConfigError, match="pool of at least"):
        probe_ids(9, 21, 4, np.arange(1, 20), distinct=True)
