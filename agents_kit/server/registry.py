"""Agent search: ``search_client(L_d) -> P(C)`` over registry descriptions (brief §2.2).

Semantics match the original: each free-text capability query returns its top-k agents, the results of all
queries are unioned in query order and de-duplicated by name. The server's default is :class:`FTS5Search`:
SQLite FTS5 ranks ``name + desc`` with its ``bm25()`` inside the database, over an index the store keeps in
step with registrations, so a search reads the few hits, not the whole registry. :class:`BM25Search` is the
same ranking in Python over a list of profiles (deterministic, no database); :class:`EmbeddingSearch` takes
any embedding function, e.g. an OpenAI-compatible ``/v1/embeddings`` endpoint via :func:`openai_embedder`
(the original used ada-002 + inner product). All three implement :class:`SearchBackend`.

FTS5 vs the Python BM25. Tokens are identical by construction: the index stores :func:`tokenize`'s output
(CamelCase split, lower-case ``[a-z0-9]+``, stop words dropped) and FTS5's ``unicode61`` tokenizer only
splits that on spaces; ``porter`` is not used because the Python BM25 does no stemming ("searches" does not
match "search" in either). The scores differ in what FTS5 fixes in C: k1 = 1.2 (Python 1.5) and the classic
Okapi idf, log((N - n + .5) / (n + .5)) floored at 1e-6, where Python uses Lucene's always-positive
log(1 + ...). The hit sets are the same (every agent sharing a query term); the order can differ in
multi-word queries, since Okapi weighs common words less against rare ones (a word in more than half of the
registry gets ~no weight), and where term frequency trades against description length. On the IoA-Synth and
test registries the top-k agree on every query; ``tests/agents_kit/server/test_search_fts5.py`` pins both
that and the difference, and the benchmark's ``search`` part measures the agreement on Zipf-worded queries.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from agents_kit.protocol import AgentProfile
from agents_kit.server.tokens import tokenize
from shared.errors import ConfigError

if TYPE_CHECKING:
    from agents_kit.server.store import Store

log = logging.getLogger(__name__)

class SearchBackend(Protocol):
    """Ranks agent profiles for one query.

    A backend with ``indexed = True`` ranks the registry it indexes itself: ``profiles=None`` means all of it
    and a list only narrows it (the others need the list).
    """

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


class FTS5Search:
    """SQLite FTS5 ``bm25()`` over the store's agent index (the server default; see the module docstring).

    Scores are ``-bm25()`` (FTS5 returns lower-is-better), ties broken by registration order like
    :class:`BM25Search`. The statistics (N, document frequencies, average length) are always the whole
    registry's, also when ``profiles`` narrows the candidates (e.g. online agents only), where the Python BM25
    recomputes them over the narrowed list. Query text is reduced to :func:`tokenize`'s tokens and each is
    quoted, so FTS5 operators or quotes typed by a user are plain words, never query syntax.
    """

    indexed = True

    def __init__(self, store: Store | None = None):
        self.store = store  # None until bound to the server's store (make_backend runs before the store exists)

    def rank(self, query: str, profiles: Sequence[AgentProfile] | None, k: int
             ) -> list[tuple[AgentProfile, float]]:
        """Top-k profiles by FTS5 bm25 among ``profiles`` (the whole index when None)."""
        if self.store is None:
            raise ConfigError("FTS5Search is not bound to a store: pass FTS5Search(store) or let the server bind it")
        among = None if profiles is None else [p.name for p in profiles]
        return self.store.search_agents(tokenize(query), k, among=among)


def fts5_available() -> bool:
    """True when this Python's SQLite was built with FTS5 (nearly all are)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(doc)")
        except sqlite3.OperationalError:
            return False
    return True


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
    """``fts5`` (default; bound to the server's store by :func:`bind_backend`), ``bm25`` (Python) or ``openai``
    (needs ``base_url`` and ``model``)."""
    if name == "fts5":
        if not fts5_available():
            raise ConfigError("search backend 'fts5' needs SQLite built with FTS5; this Python's sqlite3 lacks it "
                              "(use --search bm25)")
        return FTS5Search()
    if name == "bm25":
        return BM25Search()
    if name == "openai":
        if not options.get("base_url") or not options.get("model"):
            raise ConfigError("search backend 'openai' needs base_url and model (an OpenAI-compatible server)")
        return EmbeddingSearch(openai_embedder(options["base_url"], options["model"], options.get("api_key", "")))
    raise ConfigError(f"unknown search backend {name!r}; use 'fts5', 'bm25' or 'openai'")


def bind_backend(backend: SearchBackend | None, store: Store) -> SearchBackend:
    """The server's backend: FTS5 over ``store`` when none is given (Python BM25 where SQLite lacks FTS5); an
    unbound :class:`FTS5Search` is bound to ``store``."""
    if backend is None:
        if not fts5_available():
            log.warning("this Python's SQLite has no FTS5; agent search falls back to the Python BM25")
            return BM25Search()
        backend = FTS5Search()
    if isinstance(backend, FTS5Search) and backend.store is None:
        backend.store = store
    return backend


def search(backend: SearchBackend, queries: Sequence[str], profiles: Sequence[AgentProfile] | None, k: int = 3,
           exclude: str | None = None) -> list[AgentProfile]:
    """Union of each query's top-k, de-duplicated by name in query order; ``exclude`` drops the searcher.

    ``profiles=None`` (only for an ``indexed`` backend) searches the whole registry the backend indexes.
    """
    if profiles is None and not getattr(backend, "indexed", False):
        raise TypeError(f"{type(backend).__name__} ranks a list of profiles; pass them (profiles=None needs an "
                        "indexed backend such as FTS5Search)")
    seen: dict[str, AgentProfile] = {}
    for query in queries:
        # rank over the whole registry (stable statistics), then drop the searcher and keep k
        hits = [p for p, _ in backend.rank(query, profiles, k + 1) if p.name != exclude][:k]
        for profile in hits:
            seen.setdefault(profile.name, profile)
    return list(seen.values())


def search_registry(backend: SearchBackend, store: Store, queries: Sequence[str], k: int = 3,
                    exclude: str | None = None, online: Collection[str] | None = None) -> list[AgentProfile]:
    """:func:`search` over a server's registry, only agents in ``online`` when given.

    An indexed backend reads only its hits from the database; the others rank every profile, loaded here.
    """
    profiles = None
    if online is not None or not getattr(backend, "indexed", False):
        profiles = store.agents()
        if online is not None:
            profiles = [p for p in profiles if p.name in online]
    return search(backend, queries, profiles, k=k, exclude=exclude)
