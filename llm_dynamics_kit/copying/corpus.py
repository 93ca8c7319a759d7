"""A training stream with in-context repetitions: natural-text tokens interleaved with repeated random spans.

Not the paper's setting (brief §8.4 allows it only as a separate, labelled condition): at CPU scale (a
2-layer d=64 model, ≤ a few million tokens) natural text alone never makes random-token copying emerge,
because text holds too few exact repetitions within a context window to reward a general induction
circuit. This stream puts them there explicitly: the natural-text tokens are cut into chunks and, between
chunks, a random span of pool tokens is inserted and then *repeated* after a short gap of text, so a
window of ``seq_len`` tokens usually sees both copies. The result is a flat token array with the text's
dtype, drop-in for :class:`~llm_dynamics_kit.train.Trainer` (its batches are random windows of it).

The random spans are drawn from their own RNG stream (``seed``), independent of the copy and induction
probes (which use other seeds), so the exact probe sequences are never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.errors import ConfigError, DataError


@dataclass
class RepeatsConfig:
    """Shape of the repetition-augmented stream (lengths in tokens, ranges inclusive)."""

    span: tuple[int, int] = (10, 24)  # length of one random span (the copy task's sequences are 12 + 6)
    gap: tuple[int, int] = (0, 32)  # natural-text tokens between a span and its repeat
    text: tuple[int, int] = (8, 48)  # natural-text tokens before each span
    n_tokens: int = 2_000_000  # length of the stream (text is cycled when shorter)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("span", "gap", "text"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi or (name == "span" and lo < 1):
                raise ConfigError(f"repeats.{name} must be (low, high) with 0 <= low <= high (span >= 1), "
                                  f"got {getattr(self, name)}")
        if self.n_tokens < 1:
            raise ConfigError(f"repeats.n_tokens must be positive, got {self.n_tokens}")

    def label(self) -> str:
        """A short description for result tables."""
        return (f"text chunks {self.text[0]}-{self.text[1]} + random span {self.span[0]}-{self.span[1]} repeated "
                f"after {self.gap[0]}-{self.gap[1]} text tokens")


def repeated_span_stream(text_tokens: np.ndarray, pool: np.ndarray, config: RepeatsConfig | None = None) -> np.ndarray:
    """Natural text with random spans each repeated once shortly after: ``text, r, gap-text, r, text, r', …``.

    ``pool`` holds the token ids the spans are drawn from (e.g. :func:`~.task.token_pool`). Returns
    ``config.n_tokens`` ids with ``text_tokens``' dtype.
    """
    config = config or RepeatsConfig()
    text = np.asarray(text_tokens)
    pool = np.asarray(pool, dtype=np.int64)
    if len(text) == 0:
        raise DataError("the natural-text stream is empty; the repeats corpus needs text to interleave")
    if len(pool) < 2:
        raise DataError(f"the random-span pool has {len(pool)} ids; it needs at least two")
    rng = np.random.default_rng(config.seed)
    out = np.empty(config.n_tokens, dtype=text.dtype)
    filled, cursor = 0, 0

    def put(values: np.ndarray) -> None:
        nonlocal filled
        n = min(len(values), config.n_tokens - filled)
        out[filled:filled + n] = values[:n]
        filled += n

    def take_text(n: int) -> np.ndarray:
        nonlocal cursor
        idx = (cursor + np.arange(n)) % len(text)  # cycle through the text
        cursor = (cursor + n) % len(text)
        return text[idx]

    while filled < config.n_tokens:
        put(take_text(int(rng.integers(config.text[0], config.text[1] + 1))))
        span = rng.choice(pool, size=int(rng.integers(config.span[0], config.span[1] + 1))).astype(text.dtype)
        put(span)
        put(take_text(int(rng.integers(config.gap[0], config.gap[1] + 1))))
        put(span)
    return out


def repeat_fraction(stream: np.ndarray, min_len: int = 4, window: int = 128) -> float:
    """Share of positions whose preceding ``min_len`` tokens also occurred earlier within ``window`` tokens.

    A diagnostic of how much in-context copying a stream rewards (natural text: low; the repeats stream: high).
    """
    tokens = np.asarray(stream, dtype=np.int64)
    if len(tokens) <= min_len:
        return 0.0
    hits = 0
    last: dict[tuple[int, ...], int] = {}
    for i in range(min_len, len(tokens)):
        key = tuple(tokens[i - min_len:i])
        seen = last.get(key)
        if seen is not None and i - seen <= window:
            hits += 1
        last[key] = i
    return hits / (len(tokens) - min_len)
