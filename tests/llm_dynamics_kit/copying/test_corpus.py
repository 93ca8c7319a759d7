import numpy as np
import pytest

from llm_dynamics_kit.copying.corpus import RepeatsConfig, repeat_fraction, repeated_span_stream
from shared.errors import ConfigError, DataError


def _text(n=5000):
    return (np.arange(n) % 97 + 300).astype(np.uint16)  # "text" ids 300..396, disjoint from the pool


def test_every_random_span_is_repeated_after_a_text_gap():
    pool = np.arange(1, 50)
    cfg = RepeatsConfig(span=(5, 9), gap=(2, 6), text=(3, 7), n_tokens=4000, seed=3)
    stream = repeated_span_stream(_text(), pool, cfg)
    assert stream.dtype == np.uint16 and len(stream) == 4000
    is_span = stream < 300
    # runs of pool tokens come in pairs: span, text gap, the identical span
    edges = np.flatnonzero(np.diff(np.r_[0, is_span.astype(int), 0]))
    runs = [stream[a:b] for a, b in zip(edges[::2], edges[1::2])]
    gaps = [b - a for a, b in zip(edges[1::2][:-1], edges[::2][1:])]
    complete = runs[:-2]  # the stream may end mid-pair
    for first, second in zip(complete[::2], complete[1::2]):
        assert 5 <= len(first) <= 9 and np.array_equal(first, second)
    assert all(2 <= g <= 7 for g in gaps[::2][:-1])  # span → repeat gap (text 3–7 between pairs is ≥ 3 too)
    text_part = stream[~is_span]
    assert np.array_equal(text_part[:20], _text()[:20])  # text is consumed in order


def test_stream_is_deterministic_and_seed_dependent():
    pool = np.arange(1, 50)
    a = repeated_span_stream(_text(), pool, RepeatsConfig(n_tokens=2000, seed=1))
    b = repeated_span_stream(_text(), pool, RepeatsConfig(n_tokens=2000, seed=1))
    c = repeated_span_stream(_text(), pool, RepeatsConfig(n_tokens=2000, seed=2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_repeat_fraction_separates_text_from_the_repeats_stream():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 400, size=3000)
    stream = repeated_span_stream(noise, np.arange(400), RepeatsConfig(n_tokens=3000, text=(0, 8), gap=(0, 8)))
    assert repeat_fraction(noise) < 0.01 < 0.3 < repeat_fraction(stream)


def test_bad_inputs_raise_specific_errors():
    with pytest.raises(ConfigError, match="span"):
        RepeatsConfig(span=(0, 4))
    with pytest.raises(ConfigError, match="gap"):
        RepeatsConfig(gap=(5, 2))
    with pytest.raises(DataError, match="empty"):
        repeated_span_stream(np.array([], dtype=np.uint16), np.arange(10))
    with pytest.raises(DataError, match="pool"):
        repeated_span_stream(_text(), np.array([3]))


def test_python_source_corpus_is_sorted_hashed_and_split_by_file(tmp_path):
    from llm_dynamics_kit.data import python_source_documents, split_by_name

    root = tmp_path / "site-packages"
    for name in ("b/mod.py", "a/__init__.py", "a/z.py", "a/__pycache__/x.py", "c/readme.txt", "d/empty.py"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("" if "empty" in name else f"# {name}\ndef f():\n    return {len(name)}\n")
    docs = python_source_documents([root])
    assert [d.name for d in docs] == ["site-packages/a/__init__.py", "site-packages/a/z.py", "site-packages/b/mod.py"]
    assert python_source_documents([root]) == docs  # deterministic
    corpus = split_by_name(docs, 0.3, "pysrc")
    names = {d.name for d in corpus.train} | {d.name for d in corpus.valid}
    assert names == {d.name for d in docs} and not {d.name for d in corpus.train} & {d.name for d in corpus.valid}
    before = corpus.fingerprint()
    (root / "a/z.py").write_text("changed\n")
    assert split_by_name(python_source_documents([root]), 0.3, "pysrc").fingerprint() != before  # content hash
    with pytest.raises(DataError, match="no .py files"):
        python_source_documents([tmp_path / "nothing"])


def test_pysrc_corpus_is_loadable_by_name(monkeypatch, tmp_path):
    from llm_dynamics_kit import data

    root = tmp_path / "site-packages"
    root.mkdir()
    for i in range(4):
        (root / f"m{i}.py").write_text(f"x = {i}\n" * 20)
    monkeypatch.setattr(data, "python_source_documents", lambda roots=None: _docs(root))
    corpus = data.load_corpus(data.DataConfig(corpus="pysrc", max_bytes=None))
    assert corpus.name == "pysrc" and len(corpus.train) + len(corpus.valid) == 4


def _docs(root):
    from llm_dynamics_kit.data import Document

    return [Document(f"site-packages/{p.name}", p.read_text()) for p in sorted(root.glob("*.py"))]
