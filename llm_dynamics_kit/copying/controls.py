"""Control tasks for the copying tracker: what only induction solves, what a positional copier solves, no copying.

Each is a batch source for :class:`~llm_dynamics_kit.train.Trainer` (an endless iterable of (batch, T+1) token
arrays, deterministic given its seed):

- :func:`variable_repeats` (positive control): every sequence holds random tokens with one random segment whose
  length and position vary per sequence, repeated later at a random distance. No fixed offset predicts the copy;
  only a content rule does (a previous-token head, then an induction head in a later layer).
- :func:`fixed_repeats` (negative control): a random block of ``block`` tokens repeated once, always the same
  geometry. A model can solve it by attending ``block − 1`` positions back (a fixed-offset copier), which is not
  induction: the tracker must not read it as such.
- :func:`shuffled_stream` (negative control): a token stream with its order permuted; nothing in the context
  predicts the next token beyond unigram frequencies, so a model trained on it never learns to copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from llm_dynamics_kit.copying.task import distinct_rows
from shared.errors import ConfigError, DataError


def _pool(pool) -> np.ndarray:
    pool = np.asarray(pool, dtype=np.int64)
    if pool.ndim != 1 or len(pool) < 2:
        raise DataError(f"the control tasks need a pool of at least two token ids, got {pool.shape}")
    return pool


def fixed_repeats(block: int, batch_size: int, pool, seed: int = 0) -> Iterator[np.ndarray]:
    """Endless (batch, 2·block) arrays: a random block, then the same block (inputs are the first 2·block − 1)."""
    if block < 2 or batch_size < 1:
        raise ConfigError(f"fixed_repeats needs block >= 2 and batch_size >= 1, got {block}, {batch_size}")
    pool = _pool(pool)
    rng = np.random.default_rng([seed, 1])
    while True:
        half = rng.choice(pool, size=(batch_size, block))
        yield np.concatenate([half, half], axis=1)


def variable_repeats(seq_len: int, batch_size: int, pool, lengths: tuple[int, int] = (8, 64),
                     seed: int = 0, exclude: Sequence[int] = (), distinct: bool = False) -> Iterator[np.ndarray]:
    """Endless (batch, seq_len + 1) arrays of random tokens, each with one segment of a random length in
    ``lengths`` (inclusive, minus the held-out ``exclude`` lengths) at a random position, copied at a random later
    position (never overlapping).

    ``distinct``: a row's tokens are drawn without replacement (the pool must hold ``seq_len + 1`` tokens), so the
    copy is the only recurrence. With replacement a token also recurs by chance, and a model learns — rightly, for
    that stream — not to copy after a single matching token: its first copy prediction of every repeat is mostly
    wrong (accuracy 0.15–0.49 at the first scored position, 0.91–0.99 at the others; 2-layer d=32, 12,000 steps,
    127 tokens), which alone keeps short repeats under 0.9."""
    lo, hi = lengths
    if not 2 <= lo <= hi or 2 * hi > seq_len + 1:
        raise ConfigError(f"variable_repeats needs 2 <= low <= high and two copies of the longest segment "
                          f"(2 × {hi}) within seq_len + 1 = {seq_len + 1}")
    allowed = np.array([n for n in range(lo, hi + 1) if n not in set(exclude)])
    if len(allowed) == 0:
        raise ConfigError(f"variable_repeats: every length in {lengths} is excluded")
    pool = _pool(pool)
    rng = np.random.default_rng([seed, 2])
    total = seq_len + 1
    if distinct:
        distinct_rows(rng, pool, 1, total, "variable_repeats(distinct=True) (seq_len + 1 tokens)")  # checks the pool
    while True:
        out = (distinct_rows(rng, pool, batch_size, total, "variable_repeats") if distinct
               else rng.choice(pool, size=(batch_size, total)))
        for row in range(batch_size):
            length = int(rng.choice(allowed))
            first = int(rng.integers(0, total - 2 * length + 1))
            second = int(rng.integers(first + length, total - length + 1))
            out[row, second:second + length] = out[row, first:first + length]
        yield out


def shuffled_stream(tokens, seed: int = 0) -> np.ndarray:
    """``tokens`` in a random order (same unigram counts, no in-context structure)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or len(tokens) < 2:
        raise DataError(f"shuffled_stream needs a 1-D stream of at least two tokens, got {tokens.shape}")
    return tokens[np.random.default_rng([seed, 3]).permutation(len(tokens))]
