"""Fixtures for llm_dynamics_kit tests: tiny models, tiny corpora, one CPU thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# One thread: on a shared, loaded CPU several OpenMP threads are far slower for these tiny tensors.
torch.set_num_threads(1)

TEXT = ("The quick brown fox jumps over the lazy dog. def add(a, b):\n    return a + b\n"
        "To be, or not to be, that is the question. ") * 40


@pytest.fixture
def tiny_model_config():
    """A 2-layer, d=32 model config (dense SwiGLU)."""
    from llm_dynamics_kit.model import FFNConfig, ModelConfig

    return ModelConfig(vocab_size=320, d_model=32, n_layers=2, n_heads=2, max_seq_len=32,
                       ffn=FFNConfig(kind="dense", hidden=64))


@pytest.fixture
def tiny_corpus_dir(tmp_path):
    """A folder of small text files (enough for a by-file split and a 300-token BPE)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(6):
        (folder / f"doc{i}.txt").write_text(TEXT + f" document number {i} " * 20)
    return folder


@pytest.fixture
def pattern_tokens():
    """A learnable token stream: a repeated pseudo-random sequence of 50 ids from 0..99."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 100, size=50)
    return np.tile(base, 200).astype(np.uint16)
