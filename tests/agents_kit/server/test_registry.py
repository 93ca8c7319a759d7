import numpy as np
import pytest

from agents_kit.protocol import AgentProfile
from agents_kit.server.registry import BM25Search, EmbeddingSearch, make_backend, search, tokenize
from shared.errors import ConfigError

PROFILES = [
    AgentProfile(name="WikiAgent", desc="Searches Wikipedia articles and returns encyclopedic facts."),
    AgentProfile(name="CalcAgent", desc="Calculator: evaluates arithmetic expressions and unit conversions."),
    AgentProfile(name="CodeAgent", desc="Writes and executes Python code in a sandbox."),
    AgentProfile(name="YouTubeAgent", desc="Fetches YouTube video transcripts."),
    AgentProfile(name="Planner", desc="Plans tasks and coordinates a team."),
]


def test_tokenizer_splits_camel_case_and_drops_stop_words():
    assert tokenize("The WikiAgent searches for facts") == ["wiki", "agent", "searches", "facts"]


@pytest.mark.parametrize("query, best", [
    ("arithmetic calculation", "CalcAgent"),
    ("run python code", "CodeAgent"),
    ("encyclopedic facts from wikipedia", "WikiAgent"),
    ("video transcripts", "YouTubeAgent"),
])
def test_bm25_ranks_the_matching_agent_first(query, best):
    ranked = BM25Search().rank(query, PROFILES, k=3)
    assert ranked[0][0].name == best
    assert all(a[1] >= b[1] for a, b in zip(ranked, ranked[1:]))


def test_bm25_omits_agents_sharing_no_term():
    assert BM25Search().rank("zebra migration", PROFILES, k=3) == []


def test_bm25_works_for_a_two_agent_registry():
    # classic Okapi idf is negative here; the Lucene idf keeps the match
    two = PROFILES[:2]
    assert [p.name for p, _ in BM25Search().rank("arithmetic", two, k=3)] == ["CalcAgent"]


def test_search_unions_queries_dedups_and_excludes_the_searcher():
    found = search(BM25Search(), ["arithmetic", "calculator", "python code", "plans tasks"], PROFILES, k=1,
                   exclude="Planner")
    assert [p.name for p in found] == ["CalcAgent", "CodeAgent"]


def test_embedding_search_uses_the_embedding_inner_product():
    vocab = ["math", "code", "video"]

    def embed(texts):
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=float)

    backend = EmbeddingSearch(embed)
    profiles = [AgentProfile(name="a", desc="video video"), AgentProfile(name="b", desc="math code")]
    assert backend.rank("math", profiles, k=1)[0][0].name == "b"
    assert backend.rank("video", profiles, k=1)[0][0].name == "a"


def test_make_backend_validates_options():
    assert isinstance(make_backend("bm25"), BM25Search)
    with pytest.raises(ConfigError, match="base_url and model"):
        make_backend("openai")
    with pytest.raises(ConfigError, match="unknown search backend"):
        make_backend("milvus")
