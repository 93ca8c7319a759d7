"""The paper's context-copying test set: random-token sequences, then a query prefix whose suffix must be copied.

One sample (brief §2.2): draw ``n_seqs`` random-token sequences, each ``prefix_len`` prefix tokens (+ an
optional random-length middle) + ``suffix_len`` suffix tokens, with every prefix and every suffix unique
within the sample; concatenate them into the context; for each query position ``i`` (1-based) the input is
``[BOS] + context + prefix_i`` and the answer is the continuation that followed ``prefix_i`` in the context.
The paper uses 50 sequences of 12 + 6 tokens, queries ``i mod 5 = 0`` and 500 samples; :func:`fit_to_context`
scales the number of sequences down for short-context models (brief §8.3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import ConfigError, DataError
from shared.results import atomic_write_text

PAPER_N_SEQS, PAPER_PREFIX, PAPER_SUFFIX, PAPER_SAMPLES = 50, 12, 6, 500


@dataclass
class CopyTask:
    """A fixed copy test set (the same for every checkpoint): contexts, the queried prefixes and their answers."""

    contexts: list[np.ndarray]  # per sample: the concatenated sequences, (L_s,) token ids
    prefixes: np.ndarray  # (n_samples, n_seqs, prefix_len)
    continuations: list[list[np.ndarray]]  # [sample][seq]: what followed the prefix (middle + suffix)
    query_positions: list[int]  # 1-based sequence indices that are queried
    bos_id: int | None = None  # prepended to every input when the model was trained with a BOS token
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.contexts)

    @property
    def n_seqs(self) -> int:
        return int(self.prefixes.shape[1])

    def queries(self) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """Every (sample, position, input ids, gold continuation), inputs = [BOS] + context + prefix."""
        out = []
        head = [] if self.bos_id is None else [self.bos_id]
        for s, context in enumerate(self.contexts):
            for position in self.query_positions:
                prompt = np.concatenate([np.asarray(head, dtype=np.int64), context, self.prefixes[s, position - 1]])
                out.append((s, position, prompt.astype(np.int64), self.continuations[s][position - 1].astype(np.int64)))
        return out

    def max_query_length(self) -> int:
        """Tokens one teacher-forced query needs: prompt + gold continuation − 1."""
        return max(len(prompt) + len(gold) - 1 for _, _, prompt, gold in self.queries())

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (so every checkpoint of a sweep sees the identical test set)."""
        return {"contexts": [c.tolist() for c in self.contexts], "prefixes": self.prefixes.tolist(),
                "continuations": [[c.tolist() for c in per] for per in self.continuations],
                "query_positions": list(self.query_positions), "bos_id": self.bos_id, "seed": self.seed,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyTask:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(contexts=[np.asarray(c, dtype=np.int64) for c in data["contexts"]],
                       prefixes=np.asarray(data["prefixes"], dtype=np.int64),
                       continuations=[[np.asarray(c, dtype=np.int64) for c in per] for per in data["continuations"]],
                       query_positions=[int(p) for p in data["query_positions"]], bos_id=data.get("bos_id"),
                       seed=int(data.get("seed", 0)), meta=dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a copy task file ({err}); write one with CopyTask.save") from err

    def save(self, path: str | Path) -> Path:
        """Write the task as JSON (atomically)."""
        return atomic_write_text(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CopyTask:
        """Read a task written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"copy task file {path} does not exist; create one with CopyTask.save")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"copy task file {path} is not valid JSON: {err}") from err
        return cls.from_dict(data)


def default_query_positions(n_seqs: int) -> list[int]:
    """The paper's ``i mod 5 = 0`` (i = 5 … 50) at its 50 sequences, else ≤ 5 evenly spaced ones.

    The paper's rule leaves too few positions for short contexts (brief §8.3 scales it to i ∈ {1, 4, …, 13}
    for 13 sequences); we keep the spread from the first to the last sequence.
    """
    if n_seqs >= PAPER_N_SEQS:
        return list(range(5, n_seqs + 1, 5))
    return sorted({int(round(x)) for x in np.linspace(1, n_seqs, min(5, n_seqs))})


def fit_to_context(max_len: int, prefix_len: int = PAPER_PREFIX, suffix_len: int = PAPER_SUFFIX,
                   mid_max: int = 0, bos: bool = False, cap: int = PAPER_N_SEQS) -> int:
    """The most sequences (≤ ``cap``, the paper's 50) whose context + query fits a ``max_len`` window."""
    per = prefix_len + mid_max + suffix_len
    room = max_len - int(bos) - prefix_len - (mid_max + suffix_len - 1)
    n = min(cap, room // per)
    if n < 1:
        raise ConfigError(f"a context of {max_len} tokens cannot hold one {per}-token sequence plus the query; "
                          "use shorter prefix/suffix lengths or a longer-context model")
    return n


def distinct_rows(rng: np.random.Generator, pool: np.ndarray, n_rows: int, width: int, what: str) -> np.ndarray:
    """(n_rows, width) tokens of ``pool``, no token twice in a row (each row a random draw without replacement)."""
    pool = np.asarray(pool, dtype=np.int64)
    if len(pool) < width:
        raise ConfigError(f"{what} needs a pool of at least {width} distinct tokens, got {len(pool)}")
    return rng.permuted(np.tile(pool, (n_rows, 1)), axis=1)[:, :width]


def token_pool(vocab_size: int, exclude: Sequence[int] = (), occurring: np.ndarray | None = None) -> np.ndarray:
    """Token ids random sequences are drawn from: ``occurring`` ids (e.g. seen in training) minus ``exclude``.

    Brief §4.2: drawing only ids that occur in the training data keeps every embedding trained.
    """
    ids = np.arange(vocab_size) if occurring is None else np.unique(np.asarray(occurring, dtype=np.int64))
    ids = ids[(ids >= 0) & (ids < vocab_size)]
    pool = np.setdiff1d(ids, np.asarray(list(exclude), dtype=np.int64))
    if len(pool) < 2:
        raise DataError(f"the random-token pool has {len(pool)} ids; copying needs a vocabulary of several tokens")
    return pool


def _occurs_once(context: np.ndarray, pattern: np.ndarray) -> bool:
    n, k = len(context), len(pattern)
    windows = np.lib.stride_tricks.sliding_window_view(context, k) if n >= k else np.empty((0, k))
    return int((windows == pattern).all(axis=1).sum()) == 1


def make_copy_task(vocab_pool: np.ndarray | Sequence[int], n_seqs: int = PAPER_N_SEQS, prefix_len: int = PAPER_PREFIX,
                   suffix_len: int = PAPER_SUFFIX, mid_len_range: tuple[int, int] = (0, 0),
                   query_positions: Sequence[int] | None = None, n_samples: int = PAPER_SAMPLES, seed: int = 0,
                   bos_id: int | None = None, max_tries: int = 100) -> CopyTask:
    """Build the copy test set; prefixes and suffixes are unique within a sample and each prefix occurs once.

    ``mid_len_range`` (inclusive) adds a random-length middle between prefix and suffix (the paper's
    "average length 18", brief §2.2); the answer is then middle + suffix. Default (0, 0): 12 + 6 tokens.
    """
    pool = np.asarray(vocab_pool, dtype=np.int64)
    if prefix_len < 1 or suffix_len < 1 or n_seqs < 1 or n_samples < 1:
        raise ConfigError("prefix_len, suffix_len, n_seqs and n_samples must be positive")
    lo, hi = mid_len_range
    if not 0 <= lo <= hi:
        raise ConfigError(f"mid_len_range must be (low, high) with 0 <= low <= high, got {mid_len_range}")
    positions = list(query_positions) if query_positions is not None else default_query_positions(n_seqs)
    if not positions or any(not 1 <= p <= n_seqs for p in positions):
        raise ConfigError(f"query positions must be 1-based indices in 1..{n_seqs}, got {positions}")
    if len(pool) < 2:
        raise DataError("the random-token pool needs at least two token ids")
    rng = np.random.default_rng(seed)
    contexts, prefixes, continuations = [], [], []
    for _ in range(n_samples):
        for _attempt in range(max_tries):
            pre = rng.choice(pool, size=(n_seqs, prefix_len))
            suf = rng.choice(pool, size=(n_seqs, suffix_len))
            mids = [rng.choice(pool, size=int(rng.integers(lo, hi + 1))) for _ in range(n_seqs)]
            if len({tuple(r) for r in pre}) < n_seqs or len({tuple(r) for r in suf}) < n_seqs:
                continue  # resample on collision (brief §2.2: unique prefixes and suffixes)
            context = np.concatenate([np.concatenate([pre[i], mids[i], suf[i]]) for i in range(n_seqs)])
            if all(_occurs_once(context, pre[p - 1]) for p in positions):
                break
        else:
            raise DataError(f"could not draw {n_seqs} unique prefixes/suffixes from a pool of {len(pool)} tokens in "
                            f"{max_tries} tries; use longer prefixes/suffixes or a larger vocabulary pool")
        contexts.append(context)
        prefixes.append(pre)
        continuations.append([np.concatenate([mids[i], suf[i]]) for i in range(n_seqs)])
    meta = {"n_seqs": n_seqs, "prefix_len": prefix_len, "suffix_len": suffix_len, "mid_len_range": [lo, hi],
            "pool_size": int(len(pool)), "pool_min": int(pool.min()), "pool_max": int(pool.max())}
    return CopyTask(contexts=contexts, prefixes=np.stack(prefixes), continuations=continuations,
                    query_positions=positions, bos_id=bos_id, seed=seed, meta=meta)
