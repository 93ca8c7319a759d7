"""The trainer takes any batch source: a token stream, a dataset of sequences, an iterable of batches."""

import itertools

import numpy as np
import pytest
import torch

from llm_dynamics_kit.data import batch_source
from llm_dynamics_kit.model import Transformer
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.errors import DataError


def _config(**kw):
    return TrainConfig(**{"steps": 4, "batch_size": 3, "seq_len": 8, "lr": 1e-3, "warmup_steps": 1, "eval_every": 0,
                          "log_every": 1, "device": "cpu", "cpu_threads": 1, **kw})


def test_iterable_of_batches_is_trained_on_in_order(tiny_model_config):
    seen = []

    def batches():
        for i in itertools.count():
            batch = np.full((2, 7), i % 50, dtype=np.int64)  # (batch, T+1): 6 positions
            seen.append(i)
            yield batch

    trainer = Trainer(Transformer(tiny_model_config), batches(), None, _config(steps=3, grad_accum=2))
    trainer.fit()
    assert seen == list(range(6))  # 3 steps × 2 micro-batches, consumed once each, in order
    assert trainer.tokens_seen == 3 * 2 * 2 * 6  # counted from the batches, not batch_size × seq_len


def test_dataset_of_sequences_is_sampled_deterministically(tiny_model_config):
    class Seqs(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return torch.arange(i, i + 9) % 100

    source = batch_source(Seqs(), seq_len=8, batch_size=4, seed=1)
    x, y = source(5)
    assert x.shape == (4, 8) and np.array_equal(x[:, 1:], y[:, :-1]) and x.dtype == np.int64
    assert np.array_equal(source(5)[0], x) and not np.array_equal(source(6)[0], x)  # a pure function of the step
    Trainer(Transformer(tiny_model_config), Seqs(), None, _config()).fit()
    pairs = [(np.arange(9)[:-1], np.arange(9)[1:])] * 3  # (x, y) items
    assert batch_source(pairs, 8, 2)(0)[1].shape == (2, 8)
    hf = batch_source(iter([{"input_ids": torch.ones(2, 5, dtype=torch.long)}]), 8, 2)
    assert hf(0)[0].shape == (2, 4)


def test_token_stream_is_unchanged():
    tokens = (np.arange(500) % 97).astype(np.uint16)
    from llm_dynamics_kit.data import random_batch

    x, y = batch_source(tokens, 8, 4, seed=3)(2, 1, 0)
    rx, ry = random_batch(tokens, 8, 4, 3, 2, 1, 0)
    assert np.array_equal(x, rx) and np.array_equal(y, ry)


def test_bad_batch_sources_raise_clear_errors(tiny_model_config):
    with pytest.raises(DataError, match="ran out"):
        Trainer(Transformer(tiny_model_config), iter([np.ones((2, 5), dtype=np.int64)]), None, _config()).fit()
    with pytest.raises(DataError, match="integer"):
        batch_source(iter([np.ones((2, 5))]), 8, 2)(0)
    with pytest.raises(DataError, match=r"\(batch, T\+1\)"):
        batch_source(iter([np.ones(5, dtype=np.int64)]), 8, 2)(0)
    with pytest.raises(DataError, match="not text"):
        batch_source("some text", 8, 2)
    with pytest.raises(DataError, match="max_seq_len"):  # the tiny model's context is 32
        Trainer(Transformer(tiny_model_config), itertools.repeat(np.ones((2, 40), dtype=np.int64)), None,
                _config()).fit()
    with pytest.raises(DataError, match="fewer than seq_len"):
        batch_source(np.arange(5), 8, 2)
