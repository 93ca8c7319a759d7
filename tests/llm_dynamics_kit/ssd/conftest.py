"""Fixtures for the SSD tests: a tiny ReLU decoder (d=32, D=128, 8 experts of 16 neurons)."""

from __future__ import annotations

import pytest
import torch

import llm_dynamics_kit.ssd  # noqa: F401  (registers ffn.kind "moefied")
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer


def relu_config(kind: str = "dense", activation: str = "relu", **extra) -> ModelConfig:
    return ModelConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=2, max_seq_len=32,
                       ffn=FFNConfig(kind=kind, hidden=128, activation=activation, n_experts=8, top_k=2,
                                     extra=dict(extra)))


@pytest.fixture
def relu_model():
    torch.manual_seed(0)
    return Transformer(relu_config())


@pytest.fixture
def tokens():
    return torch.randint(0, 100, (2, 16), generator=torch.Generator().manual_seed(1))
