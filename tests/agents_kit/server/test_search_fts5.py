"""FTS5 search (the server default) against the Python BM25 it replaces, on real SQLite stores and a real server."""

import math
import sqlite3

import httpx
import pytest

from agents_kit.protocol import AgentProfile
from agents_kit.server import registry
from agents_kit.server.registry import (
    BM25Search,
    FTS5Search,
    bind_backend,
    make_backend,
    search,
    search_registry,
    tokenize,
)
from agents_kit.server.store import Store
from agents_kit.workloads.synth_tasks import RELATIONS, make_world
from shared.errors import ConfigError
from tests.agents_kit.conftest import auth, register
from tests.agents_kit.server.test_registry import PROFILES


def _store(tmp_path, profiles, name="registry.db") -> Store:
    store = Store(tmp_path / name)
    for profile in profiles:
        store.register(profile, None)
    return store


def _synth_registry() -> list[AgentProfile]:
    """The IoA-Synth registry shape: relation owners, 40 distractors, a planner (neutral names)."""
    world = make_world(0, n_distractors=40)
    profiles = [AgentProfile(name=f"agent_{i:03d}", desc=RELATIONS[r][0]) for i, r in enumerate(RELATIONS)]
    profiles += [AgentProfile(name=f"agent_{100 + i:03d}", desc=d.desc) for i, d in enumerate(world.distractors)]
    return profiles + [AgentProfile(name="agent_900", desc="Plans and answers questions about people and companies.")]


TEST_QUERIES = ["arithmetic calculation", "run python code", "encyclopedic facts from wikipedia", "video transcripts",
                "agent", "plans tasks", "code agent", "team agent", "searches", "zebra migration"]
SYNTH_QUERIES = [query for _, query in RELATIONS.values()] + [
    "knows each company", "person", "company city", "public directory", "which city river", "email address of a person"]


@pytest.mark.parametrize("profiles, queries", [(PROFILES, TEST_QUERIES), (_synth_registry(), SYNTH_QUERIES)],
                         ids=["test-registry", "synth-registry"])
def test_fts5_returns_the_python_bm25_top_k_on_fixed_registries(tmp_path, profiles, queries):
    store = _store(tmp_path, profiles)
    fts5, python = FTS5Search(store), BM25Search()
    for k in (1, 3, 5):
        for query in queries:
            assert ([p.name for p, _ in fts5.rank(query, None, k)]
                    == [p.name for p, _ in python.rank(query, store.agents(), k)]), (query, k)
        # search(): union over queries in query order, de-duplicated, the searcher excluded
        for exclude in (None, profiles[0].name):
            assert ([p.name for p in search(fts5, queries, None, k=k, exclude=exclude)]
                    == [p.name for p in search(python, queries, store.agents(), k=k, exclude=exclude)])


def _okapi_fts5_scores(query: str, profiles: list[AgentProfile]) -> dict[str, float]:
    """FTS5's bm25() (fts5_aux.c: k1=1.2, b=0.75, Okapi idf floored at 1e-6) over tokenize()'s tokens."""
    docs = {p.name: tokenize(f"{p.name} {p.desc}") for p in profiles}
    n, avg = len(docs), sum(map(len, docs.values())) / len(docs)
    scores = {}
    for name, doc in docs.items():
        score = 0.0
        for term in tokenize(query):
            hits = sum(term in d for d in docs.values())
            idf = max(math.log((n - hits + 0.5) / (hits + 0.5)), 0.0) or 1e-6
            tf = doc.count(term)
            score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(doc) / avg))
        if any(term in doc for term in tokenize(query)):
            scores[name] = score
    return scores


@pytest.mark.parametrize("profiles, queries", [(PROFILES, TEST_QUERIES), (_synth_registry(), SYNTH_QUERIES)],
                         ids=["test-registry", "synth-registry"])
def test_fts5_scores_are_okapi_bm25_over_exactly_the_python_tokens(tmp_path, profiles, queries):
    # the only difference from BM25Search is FTS5's two constants; any tokenisation difference (CamelCase, stop
    # words, document length) would change tf, df or the lengths and break this equality
    store = _store(tmp_path, profiles)
    for query in queries:
        expected = _okapi_fts5_scores(query, profiles)
        got = {p.name: s for p, s in FTS5Search(store).rank(query, None, len(profiles))}
        assert got.keys() == expected.keys(), query  # same hit set: every agent sharing a query term
        for name, score in got.items():
            assert score == pytest.approx(expected[name], rel=1e-9, abs=1e-15), (query, name)


def test_fts5_differs_from_python_where_a_query_term_is_in_most_agents(tmp_path):
    # documented difference: "agent" is in 3 of 4 descriptions, so FTS5's Okapi idf floors it to 1e-6 and the
    # rare "python" decides; Lucene's idf (Python) keeps log(1 + 1.5/3.5) = 0.36 for it, enough for a short
    # description that repeats it to beat a long one (28 tokens) mentioning python once.
    coder = ("Writes python scripts, runs them in a sandbox, reads their logs, fixes failing unit tests, formats "
             "source files, reviews pull requests, explains stack traces, profiles slow loops and documents modules")
    profiles = [AgentProfile(name="Helper", desc="agent agent agent"), AgentProfile(name="Coder", desc=coder),
                AgentProfile(name="Other", desc="agent"), AgentProfile(name="Third", desc="agent for video")]
    store = _store(tmp_path, profiles)
    python = [p.name for p, _ in BM25Search().rank("python agent", store.agents(), 4)]
    fts5 = [p.name for p, _ in FTS5Search(store).rank("python agent", None, 4)]
    assert python[0] == "Helper" and fts5[0] == "Coder"
    assert set(python) == set(fts5)  # the same hits, ordered differently


@pytest.mark.parametrize("query", [
    '"', '""', 'python"', '"python', 'NEAR(python code, 2)', 'python* OR code', 'python AND NOT code', 'doc:python',
    '-python', '^python', '(((python', 'python)', '{doc}: python', 'python + code', 'AND', 'OR OR', 'NOT',
    "python\x00code", "café Python", "\ud800 python", "日本語", "", "   ", "the of and",
])
def test_fts5_syntax_typed_by_users_is_plain_text(tmp_path, query):
    store = _store(tmp_path, PROFILES)
    expected = [p.name for p, _ in BM25Search().rank(query, store.agents(), 3)]
    assert [p.name for p, _ in FTS5Search(store).rank(query, None, 3)] == expected


def test_store_search_quotes_raw_tokens_and_long_queries(tmp_path):
    store = _store(tmp_path, PROFILES)
    assert store.search_agents(['py"thon', "NEAR(", "*", "-"], 3) == []  # quotes doubled, operators as strings
    assert [p.name for p, _ in store.search_agents(["python"], 3)] == ["CodeAgent"]
    long_query = " ".join(["python", "code"] * 2_000)
    assert ([p.name for p, _ in FTS5Search(store).rank(long_query, None, 3)]
            == [p.name for p, _ in BM25Search().rank(long_query, store.agents(), 3)])


def test_index_follows_register_update_and_refused_update(tmp_path):
    store = Store(tmp_path / "registry.db")
    token, _ = store.register(AgentProfile(name="Shifty", desc="translates french poetry"), None)
    store.register(AgentProfile(name="Twin", desc="translates french poetry"), None)
    fts5 = FTS5Search(store)
    assert [p.name for p, _ in fts5.rank("french", None, 3)] == ["Shifty", "Twin"]  # tie: registration order
    store.register(AgentProfile(name="Shifty", desc="forecasts weather"), token)
    assert [p.name for p, _ in fts5.rank("french", None, 3)] == ["Twin"]
    assert [(p.name, p.desc) for p, _ in fts5.rank("weather", None, 3)] == [("Shifty", "forecasts weather")]
    with pytest.raises(PermissionError):  # a refused update is rolled back with its index change
        store.register(AgentProfile(name="Twin", desc="sells watches"), "wrong token")
    assert fts5.rank("watches", None, 3) == []
    assert [p.name for p, _ in fts5.rank("french", None, 3)] == ["Twin"]


def test_index_is_rebuilt_for_a_database_written_without_it(tmp_path):
    store = _store(tmp_path, PROFILES)
    with store._tx() as db:  # what a server from before the index leaves behind
        db.execute("DROP TABLE agent_fts")
        db.execute("DROP TABLE agent_docs")
    store.close()
    reopened = Store(tmp_path / "registry.db")
    reopened.register(AgentProfile(name="MapAgent", desc="Draws maps of cities."), None)  # before any search
    assert [p.name for p, _ in FTS5Search(reopened).rank("python code", None, 1)] == ["CodeAgent"]
    assert [p.name for p, _ in FTS5Search(reopened).rank("maps", None, 1)] == ["MapAgent"]
    assert ([p.name for p, _ in FTS5Search(reopened).rank("agent", None, 10)]
            == [p.name for p, _ in BM25Search().rank("agent", reopened.agents(), 10)])


def test_a_restarted_store_keeps_the_index_without_rebuilding(tmp_path):
    _store(tmp_path, PROFILES).close()
    reopened = Store(tmp_path / "registry.db")
    reopened.register(AgentProfile(name="MapAgent", desc="Draws maps of cities."), None)
    with sqlite3.connect(tmp_path / "registry.db") as db:
        docids = db.execute("SELECT name FROM agent_docs ORDER BY docid").fetchall()
    assert [n for (n,) in docids] == [p.name for p in PROFILES] + ["MapAgent"]


def test_online_only_narrows_fts5_to_the_given_agents(tmp_path):
    store = _store(tmp_path, PROFILES)
    found = search_registry(FTS5Search(store), store, ["code", "video", "arithmetic"], k=1,
                            online={"YouTubeAgent", "CalcAgent"})
    assert [p.name for p in found] == ["YouTubeAgent", "CalcAgent"]
    assert search_registry(FTS5Search(store), store, ["code"], online=set()) == []


def test_backends_are_pluggable_and_fts5_is_the_default(tmp_path, monkeypatch):
    store = _store(tmp_path, PROFILES)
    unbound = make_backend("fts5")
    with pytest.raises(ConfigError, match="not bound"):
        unbound.rank("code", None, 1)
    assert bind_backend(unbound, store).store is store
    assert isinstance(bind_backend(None, store), FTS5Search)
    python = BM25Search()
    assert bind_backend(python, store) is python
    assert [p.name for p in search_registry(python, store, ["python code"], k=1)] == ["CodeAgent"]
    with pytest.raises(TypeError, match="indexed backend"):
        search(python, ["code"], None)
    monkeypatch.setattr(registry, "fts5_available", lambda: False)
    assert isinstance(bind_backend(None, store), BM25Search)  # a SQLite without FTS5 still searches
    with pytest.raises(ConfigError, match="FTS5"):
        make_backend("fts5")


def test_server_searches_with_fts5_without_loading_the_registry(server, monkeypatch):
    planner = register(server, "Planner", "plans")
    register(server, "CalcAgent", "arithmetic calculator")
    register(server, "CodeAgent", "runs python code")
    ioa = server.app.state.ioa
    assert isinstance(ioa.backend, FTS5Search)

    def no_full_scan(*args, **kwargs):
        raise AssertionError("the FTS5 search loaded every profile")

    monkeypatch.setattr(ioa.store, "agents", no_full_scan)
    body = {"capabilities": ['python" OR NEAR(', "arithmetic*"], "k": 1}
    response = httpx.post(f"{server.url}/retrieve_assistant", json=body, headers=auth(planner), timeout=10)
    assert response.status_code == 200, response.text
    assert [p["name"] for p in response.json()] == ["CodeAgent", "CalcAgent"]
