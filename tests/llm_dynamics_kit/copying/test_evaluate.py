import numpy as np
import pytest
import torch

from llm_dynamics_kit.copying.evaluate import (
    copy_accuracy,
    default_task,
    greedy_copy_accuracy,
    one_token_induction_ceiling,
)
from llm_dynamics_kit.copying.task import make_copy_task
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from shared.errors import ConfigError

from .planted import PlantedInductionModel

V = 4096


def prefix_oracle(prefix_len: int):
    """Logits that put all mass on what followed the last earlier occurrence of the trailing prefix_len-gram."""
    def fn(ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        out = torch.zeros(b, t, V)
        for row in range(b):
            seq = ids[row].tolist()
            for pos in range(prefix_len - 1, t):
                key = seq[pos - prefix_len + 1:pos + 1]
                for j in range(pos - prefix_len, -1, -1):
                    if seq[j:j + prefix_len] == key and j + prefix_len < len(seq):
                        out[row, pos, seq[j + prefix_len]] = 1.0
                        break
        return out
    return fn


@pytest.fixture(scope="module")
def task():
    return make_copy_task(np.arange(1, V), n_seqs=5, n_samples=6, seed=0)


def test_prefix_matching_oracle_copies_everything(task):
    result = copy_accuracy(prefix_oracle(12), task)
    assert result.exact_match == 1.0 and result.token_accuracy == 1.0
    assert set(result.per_position) == set(task.query_positions)


def test_uniform_logits_are_at_chance(task):
    result = copy_accuracy(lambda ids: torch.zeros(*ids.shape, V), task)
    assert result.exact_match == 0.0  # argmax of ties is id 0, never drawn
    assert result.gold_logprob == pytest.approx(-6 * np.log(V), rel=1e-5)


def test_one_token_induction_oracle_matches_its_analytic_ceiling(task):
    planted = PlantedInductionModel(vocab_size=V, sharpness=60.0)
    result = copy_accuracy(planted, task)
    ceiling = one_token_induction_ceiling(task)
    assert 0.7 < ceiling < 1.0  # recurring query tokens cap single-token induction below 1
    assert result.exact_match >= 0.7 and abs(result.exact_match - ceiling) <= 0.1


def test_teacher_forced_equals_greedy_generation_query_by_query(task):
    # a mix of right and wrong queries: the planted copier fails where tokens recur
    planted = PlantedInductionModel(vocab_size=V, sharpness=60.0)
    fast, slow = copy_accuracy(planted, task, batch_size=7), greedy_copy_accuracy(planted, task)
    assert 0 < fast.per_query.sum() < fast.per_query.size
    np.testing.assert_array_equal(fast.per_query, slow.per_query)
    # the native Transformer with its own generate(): train it a little to copy so both outcomes occur
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=V, d_model=32, n_layers=2, n_heads=2, max_seq_len=128,
                                    ffn=FFNConfig(hidden=64)))
    with torch.no_grad():  # make greedy decoding copy the previous token sometimes: tie embed and head
        model.lm_head.weight.copy_(model.embed.weight * 20)
    fast, slow = copy_accuracy(model, task), greedy_copy_accuracy(model, task)
    np.testing.assert_array_equal(fast.per_query, slow.per_query)
    assert fast.token_accuracy >= 0.0


def test_default_task_fits_the_model_and_too_long_tasks_fail(task):
    model = Transformer(ModelConfig(vocab_size=V, d_model=32, n_layers=1, n_heads=2, max_seq_len=64,
                                    ffn=FFNConfig(hidden=64)))
    small = default_task(model, n_samples=2)
    assert small.max_query_length() <= 64 and small.n_seqs == 2
    assert copy_accuracy(model, small).exact_match <= 0.1  # an untrained model is at chance (≈ 0)
    with pytest.raises(ConfigError, match="context"):
        copy_accuracy(model, task)  # 5 sequences need 107 tokens


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hf_models_teacher_forced_equals_hf_generate(family):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=48, n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                           bos_token_id=0, eos_token_id=0))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, max_position_embeddings=64, bos_token_id=0,
                                             eos_token_id=0, pad_token_id=0))
    small = make_copy_task(np.arange(1, 48), n_seqs=2, prefix_len=3, suffix_len=3, n_samples=4, seed=2, bos_id=0)
    fast, slow = copy_accuracy(model, small), greedy_copy_accuracy(model, small)
    np.testing.assert_array_equal(fast.per_query, slow.per_query)
    # per-token accuracy differs by design (teacher forcing keeps scoring after a miss); the exact match cannot
    assert fast.exact_match == slow.exact_match
