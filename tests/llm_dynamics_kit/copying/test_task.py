import numpy as np
import pytest

from llm_dynamics_kit.copying.task import (
    CopyTask,
    default_query_positions,
    fit_to_context,
    make_copy_task,
    token_pool,
)
from shared.errors import ConfigError, DataError

POOL = np.arange(1, 300)


def test_layout_prefix_suffix_and_query():
    task = make_copy_task(POOL, n_seqs=7, n_samples=4, seed=3, bos_id=0, query_positions=[1, 4, 7])
    assert task.prefixes.shape == (4, 7, 12)
    for sample, position, prompt, gold in task.queries():
        context = task.contexts[sample]
        assert len(context) == 7 * 18
        start = (position - 1) * 18
        assert prompt[0] == 0 and len(prompt) == 1 + 7 * 18 + 12  # BOS + context + query prefix
        np.testing.assert_array_equal(prompt[1:1 + len(context)], context)
        np.testing.assert_array_equal(prompt[-12:], context[start:start + 12])  # the query is sequence i's prefix
        np.testing.assert_array_equal(gold, context[start + 12:start + 18])  # the answer is its 6-token suffix
    assert task.max_query_length() == 1 + 7 * 18 + 12 + 6 - 1


def test_unique_prefixes_suffixes_and_no_leakage_across_samples():
    task = make_copy_task(np.arange(1, 4), n_seqs=5, prefix_len=4, suffix_len=3, n_samples=20, seed=0)
    for s in range(task.n_samples):
        assert len({tuple(p) for p in task.prefixes[s]}) == 5
        assert len({tuple(c) for c in task.continuations[s]}) == 5
    # every query's prefix occurs exactly once in its own context, so the answer is determined by it
    for sample, _, prompt, _gold in task.queries():
        context = task.contexts[sample]
        windows = np.lib.stride_tricks.sliding_window_view(context, 4)
        assert (windows == prompt[-4:]).all(1).sum() == 1
    # samples are independent draws: no two samples share a context
    assert len({tuple(c) for c in task.contexts}) == task.n_samples


def test_deterministic_by_seed_and_json_round_trip(tmp_path):
    a = make_copy_task(POOL, n_seqs=6, n_samples=3, seed=5, mid_len_range=(1, 3))
    b = make_copy_task(POOL, n_seqs=6, n_samples=3, seed=5, mid_len_range=(1, 3))
    c = make_copy_task(POOL, n_seqs=6, n_samples=3, seed=6, mid_len_range=(1, 3))
    assert all(np.array_equal(x, y) for x, y in zip(a.contexts, b.contexts))
    assert not all(np.array_equal(x, y) for x, y in zip(a.contexts, c.contexts))
    # a middle part makes the answer middle + suffix (7..9 tokens)
    assert all(7 <= len(g) <= 9 for *_, g in a.queries())
    loaded = CopyTask.load(a.save(tmp_path / "task.json"))
    for (s1, p1, x1, g1), (s2, p2, x2, g2) in zip(a.queries(), loaded.queries()):
        assert (s1, p1) == (s2, p2) and np.array_equal(x1, x2) and np.array_equal(g1, g2)


def test_paper_defaults_and_context_fitting():
    assert default_query_positions(50) == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert default_query_positions(6) == [1, 2, 4, 5, 6]
    assert default_query_positions(13) == [1, 4, 7, 10, 13]  # brief §8.3, 256-token context
    assert fit_to_context(1024) == 50  # 50 × 18 + 12 + 5 = 917 ≤ 1024, as in the paper
    n = fit_to_context(128, bos=True)
    assert 1 + n * 18 + 12 + 5 <= 128 < 1 + (n + 1) * 18 + 12 + 5


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(DataError):
        make_copy_task(np.array([7]), n_seqs=3)
    with pytest.raises(DataError, match="unique"):
        make_copy_task(np.arange(2), n_seqs=10, prefix_len=2, suffix_len=2, n_samples=1)
    with pytest.raises(ConfigError, match="1-based"):
        make_copy_task(POOL, n_seqs=5, query_positions=[0, 6])
    with pytest.raises(ConfigError):
        fit_to_context(20)
    with pytest.raises(DataError, match="does not exist"):
        CopyTask.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{\"contexts\": 1}")
    with pytest.raises(DataError, match="copy task"):
        CopyTask.load(tmp_path / "bad.json")
    assert set(token_pool(10, exclude=[0, 3])) == {1, 2, 4, 5, 6, 7, 8, 9}
    assert set(token_pool(10, exclude=[0], occurring=np.array([0, 2, 2, 5]))) == {2, 5}
