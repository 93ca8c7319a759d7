"""Agent search: ``search_client(L_d) -> P(C)`` over registry descriptions (brief §2.2).

Semantics match the original: each free-text capability query returns its top-k agents, the results of all
queries are unioned in query order and de-duplicated by name. BM25 over ``name + desc`` is the default
(deterministic, no model); :class:`EmbeddingSearch` takes any embedding function, e.g. an OpenAI-compatible
``/v1/embeddings`` endpoint via :func:`openai_embedder` (the original used ada-002 + inner product).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from agents_kit.protocol import AgentProfile
from shared.errors import ConfigError

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and the of to for in on with by or is are be as at from that this it who can i my".split())


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens without stop words; CamelCase names are split (``WikiAgent`` → wiki agent)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


class SearchBackend(Protocol):
    """Ranks agent profiles for one query."""

    def rank(self, query: str, profiles: Sequence[AgentProfile], k: int) -> list[tuple[AgentProfile, float]]:
        """The top ``k`` (profile, score) pairs for ``query``, best first; zero-score hits are omitted."""


class BM25Search:
    """Okapi BM25 over ``name + desc`` with Lucene's always-positive idf, log(1 + (N - n + .5) / (n + .5)).

    The classic Okapi idf is negative for terms in more than half the documents, which breaks tiny registries
    (two agents); the Lucene variant keeps every matching term a positive signal. The index is rebuilt when
    the registry changes.
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self._key: tuple | None = None

    def _index(self, profiles: Sequence[AgentProfile]) -> None:
        key = tuple((p.name, p.desc) for p in profiles)
        if key == self._key:
            return
        docs = [tokenize(f"{p.name} {p.desc}") for p in profiles]
        self._tf = [Counter(d) for d in docs]
        self._len = np.array([len(d) for d in docs], dtype=float)
        self._avg = float(self._len.mean()) if len(docs) and self._len.mean() > 0 else 1.0
        df = Counter(t for d in docs for t in set(d))
        n = len(docs)
        self._idf = {t: math.log(1.0 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._key = key

    def scores(self, query: str, profiles: Sequence[AgentProfile]) -> np.ndarray:
        """BM25 score of every profile for ``query``."""
        self._index(profiles)
        out = np.zeros(len(profiles))
        norm = self.k1 * (1 - self.b + self.b * self._len / self._avg)  # (n_agents,)
        for term in tokenize(query):
            idf = self._idf.get(term)
            if idf is None:
                continue
            tf = np.array([c[term] for c in self._tf], dtype=float)
            out += idf * tf * (self.k1 + 1) / (tf + norm)
        return out

    def rank(self, query: str, profiles: Sequence[AgentProfile], k: int) -> list[tuple[AgentProfile, float]]:
        """Top-k profiles by BM25 score (ties broken by registration order)."""
        if not profiles:
            return []
        scores = self.scores(query, profiles)
        order = sorted(range(len(profiles)), key=lambda i: (-scores[i], i))
        return [(profiles[i], float(scores[i])) for i in order[:k] if scores[i] > 0]


class EmbeddingSearch:
    """Inner product between query and description embeddings (normalise in ``embed`` for cosine)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray]):
        self.embed = embed
        self._cache: dict[str, np.ndarray] = {}

    def rank(self, query: str, profiles: Sequence[AgentProfile], k: int) -> list[tuple[AgentProfile, float]]:
        """Top-k profiles by inner product; description vectors are cached by text."""
        if not profiles:
            return []
        texts = [f"{p.name}: {p.desc}" for p in profiles]
        missing = [t for t in texts if t not in self._cache]
        if missing:
            for text, vec in zip(missing, np.asarray(self.embed(missing), dtype=np.float32)):
                self._cache[text] = vec
        matrix = np.stack([self._cache[t] for t in texts])  # (n_agents, dim)
        scores = matrix @ np.asarray(self.embed([query]), dtype=np.float32)[0]  # (n_agents,)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(profiles[i], float(scores[i])) for i in order]


def openai_embedder(base_url: str, model: str, api_key: str = "", timeout: float = 30.0
                    ) -> Callable[[list[str]], np.ndarray]:
    """An embedding function over an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint."""
    import httpx

    def embed(texts: list[str]) -> np.ndarray:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = httpx.post(f"{base_url.rstrip('/')}/embeddings", json={"model": model, "input": texts},
                              headers=headers, timeout=timeout)
        response.raise_for_status()
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        return np.array([d["embedding"] for d in data], dtype=np.float32)

    return embed


def make_backend(name: str, **options: str) -> SearchBackend:
    """``bm25`` (default) or ``openai`` (needs ``base_url`` and ``model``)."""
    if name == "bm25":
        return BM25Search()
    if name == "openai":
        if not options.get("base_url") or not options.get("model"):
            raise ConfigError("search backend 'openai' needs base_url and model (an OpenAI-compatible server)")
        return EmbeddingSearch(openai_embedder(options["base_url"], options["model"], options.get("api_key", "")))
    raise ConfigError(f"unknown search backend {name!r}; use 'bm25' or 'openai'")


def search(backend: SearchBackend, queries: Sequence[str], profiles: Sequence[AgentProfile], k: int = 3,
           exclude: str | None = None) -> list[AgentProfile]:
    """Union of each query's top-k, de-duplicated by name in query order; ``exclude`` drops the searcher."""
    seen: dict[str, AgentProfile] = {}
    for query in queries:
        # rank over the whole registry (stable statistics), then drop the searcher and keep k
        hits = [p for p, _ in backend.rank(query, profiles, k + 1) if p.name != exclude][:k]
        for profile in hits:
            seen.setdefault(profile.name, profile)
    return list(seen.values())
