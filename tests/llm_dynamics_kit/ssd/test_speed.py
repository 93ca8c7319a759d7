"""The decode speed / profile / KV-cache generate measurements run at a tiny budget (no timing is asserted)."""

import pytest

from llm_dynamics_kit.hf import generation_speed
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.ssd.speed import decode_profile, decode_speed
from shared.errors import ConfigError


def _model(max_seq_len=24):
    return Transformer(ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=2, max_seq_len=max_seq_len,
                                   ffn=FFNConfig(hidden=128, activation="relu", n_experts=8)))


def test_cached_decode_rows_carry_targets_and_the_profile_splits_a_step():
    model = _model()
    rows = decode_speed(model, (0.125, 0.25), context=16, repeats=1, n_iter=2)
    assert [(r["path"], r["k_fraction"], r["target"]) for r in rows] == [("dense", 1.0, None),
                                                                          ("sparse", 0.125, 1.8),
                                                                          ("sparse", 0.25, 1.5)]
    assert rows[0]["cache_mb"] == 2 * 2 * 16 * 32 * 4 / 2**20 and rows[1]["target_met"] in (True, False)
    profile = decode_profile(model, (0.25,), context=16, steps=2)
    assert [p["mode"] for p in profile] == ["dense", "sparse"]
    for p in profile:
        assert p["ffn_ms"] > 0 and p["attention_ms"] > 0 and p["head_ms"] > 0
        parts = p["ffn_ms"] + p["attention_ms"] + p["head_ms"] + p["overhead_ms"]
        assert parts == pytest.approx(p["total_ms"])
    assert all(not m._forward_hooks for m in model.modules())  # the profile's hooks are removed


def test_generation_speed_compares_cached_and_uncached_generate():
    model = _model(max_seq_len=20).eval()
    out = generation_speed(model, new_tokens=12, prompt_len=4, repeats=1)
    assert out["same_tokens"] and out["speedup"] > 0 and out["target"] == 3.0
    with pytest.raises(ConfigError, match="max_seq_len"):
        generation_speed(model, new_tokens=30, prompt_len=4)
