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


def _kinds():
    from llm_dynamics_kit.model import FFNConfig, ModelConfig

    base = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=2, max_seq_len=24)
    yield "dense", ModelConfig(**base, ffn=FFNConfig(hidden=64))
    # HMoE: heterogeneous experts, Top-P routing
    yield "hmoe", ModelConfig(**base, ffn=FFNConfig(kind="moe", hidden=128, n_experts=4, size_strategy="arithmetic",
                                                    router="topp", top_p=0.6))
    # SSD: a MoEfied FFN in sparse mode (top-1 of 4 experts)
    yield "moefied", ModelConfig(**base, ffn=FFNConfig(kind="moefied", hidden=64, n_experts=4, top_k=1,
                                                       activation="relu", extra={"mode": "sparse"}))


def test_kv_cached_generate_gives_the_tokens_of_the_uncached_path_for_every_ffn_kind():
    # issue 25: generate re-ran the whole prefix each token. With the cache each step feeds one token (the hook
    # sees T=1) and the tokens equal the uncached path's, natively and through the HF wrapper, also past the
    # context window (24: prompt 5 + 30 new tokens), where both paths re-run the last window.
    from llm_dynamics_kit.model import KVCache

    for name, config in _kinds():
        torch.manual_seed(0)
        model = Transformer(config).eval()
        hf = PaperkitsLMForCausalLM.from_native(model).eval()
        prompt = torch.randint(0, 64, (2, 5), generator=torch.Generator().manual_seed(1))
        lengths = []
        handle = model.embed.register_forward_hook(lambda _m, inputs, _o, seen=lengths: seen.append(inputs[0].shape[1]))
        cached = model.generate(prompt, 12, temperature=0)
        assert lengths == [5] + [1] * 11, (name, lengths)
        lengths.clear()
        hf.generate(prompt[:1], max_new_tokens=4, do_sample=False, min_new_tokens=4)
        assert lengths == [5, 1, 1, 1], (name, lengths)
        handle.remove()
        assert torch.equal(cached, model.generate(prompt, 12, temperature=0, use_cache=False)), name
        assert torch.equal(model.generate(prompt, 30, temperature=0),
                           model.generate(prompt, 30, temperature=0, use_cache=False)), name
        theirs = hf.generate(prompt[:1], max_new_tokens=30, do_sample=False)  # stops at eos (id 0)
        uncached = hf.generate(prompt[:1], max_new_tokens=30, do_sample=False, use_cache=False)
        assert torch.equal(theirs, uncached), name
        assert torch.equal(theirs, model.generate(prompt[:1], 30, temperature=0)[:, :theirs.shape[1]]), name
        # prefill + decode logits against the cache equal one full forward (bottom-right causal mask)
        ids = torch.randint(0, 64, (2, 20))
        cache = KVCache()
        parts = [model(ids[:, :7], cache=cache).logits, model(ids[:, 7:15], cache=cache).logits,
                 model(ids[:, 15:16], cache=cache).logits, model(ids[:, 16:], cache=cache).logits]
        assert torch.allclose(torch.cat(parts, dim=1), model(ids).logits, atol=1e-5), name
        assert cache.get_seq_length() == 20 and cache.nbytes() == 2 * 2 * 2 * 20 * 32 * 4


def test_kv_cache_writes_in_place_and_grows_without_changing_the_logits():
    # issue 25: the cache was re-concatenated every step (a copy of every cached key/value per token, a quarter of a
    # d=1024 decode step). Now a step writes its position into preallocated storage (the same buffer while it
    # fits), grows by doubling, and prefill + decode across several growths equal one full forward.
    from llm_dynamics_kit.model import KVCache

    torch.manual_seed(0)
    config = next(iter(_kinds()))[1]
    model = Transformer(config).eval()
    ids = torch.randint(0, 64, (2, 20))
    cache = KVCache(min_capacity=2)
    with torch.no_grad():
        logits = [model(ids[:, :3], cache=cache).logits]
        logits += [model(ids[:, i:i + 1], cache=cache).logits for i in range(3, 20)]
        assert torch.allclose(torch.cat(logits, dim=1), model(ids).logits, atol=1e-5)
        assert cache.get_seq_length() == 20 and cache.nbytes() == 2 * 2 * 2 * 20 * 32 * 4
        assert cache.capacity_nbytes() <= 2 * cache.nbytes()
        buffer = cache._k[0].data_ptr()
        cache.crop(12)
        model(ids[:, 12:13], cache=cache)
        assert cache.get_seq_length() == 13 and cache._k[0].data_ptr() == buffer  # written in place, no copy
        assert torch.equal(cache.keys[0][..., :12, :], cache._k[0][..., :12, :])
