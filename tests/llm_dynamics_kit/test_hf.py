import torch
from transformers import AutoModelForCausalLM

import llm_dynamics_kit.hf  # noqa: F401  (registers the model type with the Auto classes)
from llm_dynamics_kit.hf import PaperkitsLMForCausalLM
from llm_dynamics_kit.model import Transformer


def test_hf_wrapper_generate_matches_native_greedy_decoding(tiny_model_config, tmp_path):
    model = Transformer(tiny_model_config).eval()
    model.save_pretrained(tmp_path / "m")
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    assert isinstance(hf, PaperkitsLMForCausalLM)
    prompt = torch.randint(0, 320, (1, 6))
    ours = model.generate(prompt, 8, temperature=0)
    theirs = hf.generate(prompt, max_new_tokens=8, do_sample=False)
    assert torch.equal(ours, theirs)


def test_hf_loss_and_save_round_trip(tiny_model_config, tmp_path):
    hf = PaperkitsLMForCausalLM.from_native(Transformer(tiny_model_config))
    ids = torch.randint(0, 320, (2, 12))
    out = hf(input_ids=ids, labels=ids)
    native = hf.lm(ids[:, :-1], ids[:, 1:])
    assert torch.allclose(out.loss, native.lm_loss, atol=1e-6)
    hf.save_pretrained(str(tmp_path / "hf"))
    back = Transformer.from_pretrained(tmp_path / "hf")
    assert torch.equal(back(ids).logits, hf.lm(ids).logits)
