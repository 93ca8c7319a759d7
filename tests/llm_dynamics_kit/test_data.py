import json

import numpy as np
import pytest

from llm_dynamics_kit.data import (
    DataConfig,
    Document,
    check_context,
    eval_batches,
    load_corpus,
    prepare_data,
    random_batch,
    shakespeare_corpus,
    split_by_name,
    stdlib_corpus,
    train_tokenizer,
)
from shared.errors import DataError


def test_tokenizer_round_trips_arbitrary_text():
    tok = train_tokenizer(["hello world, def f(x): return x\n"] * 20, vocab_size=300)
    for text in ["def g(y):\n\treturn y ** 2  # héllo ✓ 日本\n", "  leading spaces", "\x00\x7f binary-ish"]:
        assert tok.decode(tok.encode(text).ids) == text


def test_stdlib_corpus_split_is_deterministic_and_disjoint():
    a, b = stdlib_corpus(max_bytes=300_000), stdlib_corpus(max_bytes=300_000)
    assert [d.name for d in a.train] == [d.name for d in b.train]
    assert not {d.name for d in a.train} & {d.name for d in a.valid}
    assert a.valid and sum(len(d.text) for d in a.train + a.valid) <= 300_000 + max(len(d.text) for d in a.train)


def test_prepare_data_caches_memmapped_tokens(tiny_corpus_dir, isolated_cache):
    config = DataConfig(corpus=str(tiny_corpus_dir), vocab_size=300, valid_fraction=0.3)
    data = prepare_data(config)
    assert isinstance(data.train, np.memmap) and data.train.dtype == np.uint16
    assert data.vocab_size == 300 and data.train.max() < 300
    again = prepare_data(config)
    assert np.array_equal(np.asarray(again.train), np.asarray(data.train))
    assert len(list(isolated_cache.rglob("*.bin"))) == 2


def test_jsonl_corpus_and_malformed_lines(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text("\n".join(json.dumps({"body": f"text number {i}"}) for i in range(5)))
    corpus = load_corpus(DataConfig(corpus=str(good), text_key="body", valid_fraction=0.2))
    assert len(corpus.train) + len(corpus.valid) == 5
    with pytest.raises(DataError, match="text_key"):
        load_corpus(DataConfig(corpus=str(good)))
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(DataError, match="b.jsonl:2"):
        load_corpus(DataConfig(corpus=str(bad)))


def test_bad_and_empty_corpora_raise_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(DataConfig(corpus=str(tmp_path / "nope.txt")))
    (tmp_path / "empty.txt").write_text("   \n")
    with pytest.raises(DataError, match="no text"):
        load_corpus(DataConfig(corpus=str(tmp_path / "empty.txt")))
    with pytest.raises(DataError, match="single document"):
        split_by_name([Document("one", "x")], 0.1, "c")


def test_context_longer_than_data_is_a_clear_error():
    with pytest.raises(DataError, match="seq_len"):
        check_context(np.zeros(10, dtype=np.uint16), 16, "valid")


def test_batches_are_a_pure_function_of_the_step():
    tokens = np.arange(1000, dtype=np.uint16)
    x1, y1 = random_batch(tokens, 8, 4, seed=0, step=5)
    x2, _ = random_batch(tokens, 8, 4, seed=0, step=5)
    x3, _ = random_batch(tokens, 8, 4, seed=0, step=6)
    assert np.array_equal(x1, x2) and not np.array_equal(x1, x3)
    assert np.array_equal(y1[:, :-1], x1[:, 1:])
    windows = list(eval_batches(tokens, 8, 4, max_batches=2))
    assert len(windows) == 2 and windows[0][0][1, 0] == 8


def test_shakespeare_split_by_work(handbook_data):
    corpus = shakespeare_corpus()
    names = [d.name for d in corpus.train + corpus.valid]
    assert len(names) == 42 and len(corpus.valid) == 4
    assert not any(n.endswith("_gut_f.txt") for n in names)


def test_benchmark_corpora_adds_shakespeare_only_when_present(tmp_path, monkeypatch):
    from llm_dynamics_kit.data import benchmark_corpora

    monkeypatch.setenv("PAPERKITS_DATA", str(tmp_path))
    assert list(benchmark_corpora(512, 1000, ["a"], ["b"])) == ["stdlib"]
    (tmp_path / "text" / "shakespeare_works").mkdir(parents=True)
    corpora = benchmark_corpora(512, 1000, ["a"], ["b"])
    assert corpora["shakespeare"][1] == ["b"] and corpora["stdlib"][0].max_bytes == 1000
    assert list(benchmark_corpora(512, 1000, ["a"], [])) == ["stdlib"]
