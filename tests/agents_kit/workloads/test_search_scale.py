"""The search-latency workload behind the benchmark's ``search`` part, at toy sizes (correctness, not timing)."""

from collections import Counter

from agents_kit.server.registry import BM25Search, FTS5Search, search_registry, tokenize
from agents_kit.server.store import Store
from agents_kit.workloads.search_scale import (
    _vocabulary,
    bulk_register,
    hashing_embedder,
    search_latency,
    synthetic_queries,
    synthetic_registry,
)


def test_synthetic_registry_is_deterministic_and_zipf_worded():
    profiles = synthetic_registry(400, seed=3)
    assert profiles == synthetic_registry(400, seed=3) and profiles != synthetic_registry(400, seed=4)
    assert len({p.name for p in profiles}) == 400
    df = Counter(t for p in profiles for t in set(tokenize(p.desc)) if t != "knows")
    common, rare = df.most_common(1)[0][1], sum(c == 1 for c in df.values())
    assert common > 200 and rare > 100  # a word in most profiles, and many in one only
    vocabulary = set(_vocabulary(5_000)[0])
    assert set(df) <= vocabulary
    assert all(tokenize(q) and set(tokenize(q)) <= vocabulary for q in synthetic_queries(20, seed=9))


def test_bulk_registered_agents_are_found_after_the_index_rebuild(tmp_path):
    store = Store(tmp_path / "registry.db")
    profiles = synthetic_registry(300, seed=0)
    bulk_register(store, profiles)
    assert [p.name for p in store.agents()] == [p.name for p in profiles]  # registration order kept
    for query in synthetic_queries(10, seed=1):
        # the same hit sets (the order of multi-word queries may differ: FTS5's idf, see server/registry.py)
        assert ({p.name for p, _ in FTS5Search(store).rank(query, None, 300)}
                == {p.name for p, _ in BM25Search().rank(query, store.agents(), 300)})
        assert search_registry(FTS5Search(store), store, [query])
    store.close()


def test_hashing_embedder_is_normalised_and_token_based():
    vectors = hashing_embedder(dim=32)(["WikiAgent searches", "wiki agent searches", "the of", "video"])
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-6
    assert (vectors[0] == vectors[1]).all()  # same search tokens, same vector
    assert (vectors[2] == 0).all()  # stop words only


def test_search_latency_reports_every_backend(tmp_path):
    rows = search_latency(200, seed=0, n_queries=5, work_dir=tmp_path)
    assert [r["backend"] for r in rows] == ["fts5", "bm25", "embedding"]
    for row in rows:
        assert row["n_agents"] == 200 and row["queries"] == 5
        assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"] and row["index_build_s"] > 0
    assert 0 <= rows[0]["topk_same_as_bm25"] <= rows[0]["topk_set_same_as_bm25"] <= 1
    fewer = search_latency(200, seed=0, n_queries=5, backends=("fts5", "bm25"), baseline_queries=2, work_dir=tmp_path)
    assert [r["queries"] for r in fewer] == [5, 2]
