"""Agent-search latency at registry scale (issue 22): each backend's time per query at 10k-100k agents.

Bench-only (``agents.ioa`` part ``search``), never a timed test. A synthetic registry is written straight into
a real :class:`~agents_kit.server.store.Store` (``register`` commits once per agent, minutes at 100k); each
query then takes the path of ``POST /retrieve_assistant`` minus HTTP, :func:`search_registry`, so the Python
backends pay for loading every profile as the endpoint does. Descriptions draw words from a Zipf law, so a few
words are in most profiles (like "knows" or "data" in real ones) and most are rare; queries draw from the same
law. The first query of a backend builds its index (FTS5 rebuilds from ``agents``, the Python BM25 tokenises
every profile, the embedding backend embeds them): it is timed apart as ``index_build_s``, not in the latency.
The embedding backend runs on a hashing bag-of-words embedder (no model): it measures the backend's own cost
(the description matrix and the inner products), not a model's.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agents_kit.protocol import AgentProfile
from agents_kit.server.registry import BM25Search, EmbeddingSearch, FTS5Search, SearchBackend, search_registry
from agents_kit.server.registry import tokenize as search_tokens
from agents_kit.server.store import Store, hash_token

BACKENDS = ("fts5", "bm25", "embedding")
# per benchmark profile: registry sizes, queries timed per (size, seed) for FTS5 and for the two Python backends
# (~1 s a query each at 100k agents), and how many of the benchmark's seeds run the part (full: 100k costs ~1 min
# a seed); default fits in ~20 s.
PROFILES: dict[str, dict[str, list[int] | int]] = {
    "quick": {"sizes": [2_000], "queries": 20, "baseline_queries": 20, "max_seeds": 1},
    "default": {"sizes": [10_000], "queries": 50, "baseline_queries": 30, "max_seeds": 3},
    "full": {"sizes": [10_000, 100_000], "queries": 50, "baseline_queries": 20, "max_seeds": 2},
}


def synthetic_registry(n_agents: int, seed: int, vocab_size: int = 5_000) -> list[AgentProfile]:
    """``n_agents`` profiles whose 6-16 description words follow a Zipf law over a made-up vocabulary."""
    rng = np.random.default_rng(seed)
    vocab, weights = _vocabulary(vocab_size)
    lengths = rng.integers(6, 17, n_agents)
    words = rng.choice(vocab_size, size=int(lengths.sum()), p=weights)
    profiles, start = [], 0
    for i, length in enumerate(lengths):
        desc = " ".join(vocab[w] for w in words[start:start + length])
        profiles.append(AgentProfile(name=f"agent{seed}x{i:06d}", desc=f"Knows {desc}."))
        start += length
    return profiles


def synthetic_queries(n_queries: int, seed: int, vocab_size: int = 5_000) -> list[str]:
    """1-4 word queries from the same vocabulary and law as :func:`synthetic_registry`'s descriptions."""
    rng = np.random.default_rng(seed)
    vocab, weights = _vocabulary(vocab_size)
    return [" ".join(vocab[w] for w in rng.choice(vocab_size, size=int(rng.integers(1, 5)), p=weights))
            for _ in range(n_queries)]


def _vocabulary(size: int) -> tuple[list[str], np.ndarray]:
    """One made-up language for every seed (words and their Zipf probabilities, most frequent first)."""
    rng = np.random.default_rng(0)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:  # no stop words, no duplicates
        word = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
        if search_tokens(word) == [word]:
            words[word] = None
    weights = 1.0 / np.arange(1, size + 1)
    return list(words), weights / weights.sum()


def bulk_register(store: Store, profiles: list[AgentProfile]) -> None:
    """Write ``profiles`` into ``agents`` in one transaction (bench setup; the search index is not touched, so
    its first use rebuilds it from ``agents``)."""
    start = time.time()
    with store._tx() as db:
        db.executemany("INSERT INTO agents (name, type, desc, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                       [(p.name, p.type.value, p.desc, hash_token(p.name), start + i * 1e-6)
                        for i, p in enumerate(profiles)])


def hashing_embedder(dim: int = 256) -> Callable[[list[str]], np.ndarray]:
    """A model-free embedding: each search token adds ±1 at a crc32-chosen coordinate, rows L2-normalised."""

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in search_tokens(text):
                code = zlib.crc32(token.encode())
                out[row, code % dim] += 1.0 if code & (1 << 31) else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    return embed


def search_latency(n_agents: int, seed: int, n_queries: int, backends: tuple[str, ...] = BACKENDS,
                   k: int = 3, work_dir: str | Path | None = None, baseline_queries: int | None = None
                   ) -> list[dict[str, float | str]]:
    """One dict per backend: query latency p50/p99/mean (ms), ``index_build_s``, and for ``fts5`` how often
    its top-k equals the Python BM25's (same agents in the same order, and as a set) on the queries both ran.

    The backends other than FTS5 time the first ``baseline_queries`` of the same queries (all when None).
    """
    with tempfile.TemporaryDirectory(prefix="ioa-search-", dir=work_dir) as tmp:
        store = Store(Path(tmp) / "registry.db")
        try:
            bulk_register(store, synthetic_registry(n_agents, seed))
            queries = synthetic_queries(n_queries + 1, seed + 7_919)  # the first one builds the index
            chosen: dict[str, SearchBackend] = {"fts5": FTS5Search(store), "bm25": BM25Search(),
                                                "embedding": EmbeddingSearch(hashing_embedder())}
            rows, top = [], {}
            for name in backends:
                backend = chosen[name]
                started = time.perf_counter()
                search_registry(backend, store, queries[:1], k=k)
                build_s = time.perf_counter() - started
                latencies, top[name] = [], []
                timed = queries[1:] if name == "fts5" or baseline_queries is None else queries[1:1 + baseline_queries]
                for query in timed:
                    started = time.perf_counter()
                    found = search_registry(backend, store, [query], k=k)
                    latencies.append((time.perf_counter() - started) * 1e3)
                    top[name].append([p.name for p in found])
                rows.append({"backend": name, "n_agents": float(n_agents), "queries": float(len(timed)),
                             "latency_p50_ms": float(np.percentile(latencies, 50)),
                             "latency_p99_ms": float(np.percentile(latencies, 99)),
                             "latency_mean_ms": float(np.mean(latencies)), "index_build_s": build_s})
            if "fts5" in top and "bm25" in top:
                pairs = list(zip(top["fts5"], top["bm25"]))
                rows[list(backends).index("fts5")].update(
                    topk_same_as_bm25=float(np.mean([a == b for a, b in pairs])),
                    topk_set_same_as_bm25=float(np.mean([set(a) == set(b) for a, b in pairs])))
            return rows
        finally:
            store.close()
