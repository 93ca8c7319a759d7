import math

import numpy as np
import pytest
import torch

from llm_dynamics_kit.hmoe.analysis import (
    rarity_analysis,
    rarity_deciles,
    routing_report,
    spearman,
    token_frequencies,
)
from llm_dynamics_kit.hmoe.presets import arm_config, arm_names
from llm_dynamics_kit.model import ModelConfig, Transformer
from shared.errors import ConfigError

BASE = ModelConfig(vocab_size=100, d_model=16, n_layers=2, n_heads=2, max_seq_len=16)


def test_spearman_known_values():
    assert spearman(np.arange(5), np.arange(5) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)
    assert math.isnan(spearman(np.ones(4), np.arange(4)))


def test_rarity_bins_put_frequent_tokens_first():
    freq = np.array([100, 50, 10, 1])
    ids = np.array([3, 0, 2, 1, 0, 3, 2, 1])
    bins = rarity_deciles(ids, freq, n_bins=4)
    assert bins[ids == 0].max() <= bins[ids == 1].min() and bins[ids == 3].min() == 3


def test_routing_report_and_rarity_slope_on_a_planted_router(pattern_tokens):
    torch.manual_seed(0)
    model = Transformer(arm_config("hmoe_topk_pp", BASE, 64, n_experts=4))
    report = routing_report(model, pattern_tokens, seq_len=16, batch_size=4, max_batches=2)
    assert report.fractions.shape == (2, 4)
    assert np.allclose(report.fractions.sum(1), 2.0)  # top-2: two experts per token
    assert np.allclose(report.experts_per_token, 2.0)
    assert report.gate_weighted_size.shape == (2, 2 * 4 * 16)
    # planted: gate-weighted size = token id, so rarer tokens (by frequency) get larger sizes
    freq = token_frequencies(pattern_tokens, 100)
    report.gate_weighted_size = np.tile(-freq[report.token_ids].astype(float), (2, 1))
    result = rarity_analysis(report, freq, n_boot=20)
    assert result["slope"] > 0 and result["slope_ci"][0] > 0
    assert result["per_bin"] == sorted(result["per_bin"])


def test_every_arm_builds_and_dense_matches_top2_width():
    for arm in arm_names():
        config = arm_config(arm, BASE, 64, n_experts=8, multiple_of=4)
        Transformer(config)
    assert arm_config("dense", BASE, 512).ffn.hidden == 128
    with pytest.raises(ConfigError):
        arm_config("nope", BASE, 64)
    with pytest.raises(ConfigError, match="MoE"):
        routing_report(Transformer(arm_config("dense", BASE, 64)), np.arange(500) % 100, 16)
