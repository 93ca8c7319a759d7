"""The client's handled-cursor record: atomic commits, bounded ids, and clear behaviour for missing/bad files."""

import sqlite3

import pytest

from agents_kit.client.state import ClientState, read_handled
from shared.errors import DataError


def _mark(state: ClientState, inbox_id: int, msg_id: str, result=None, sender: str = "A") -> None:
    state.commit(inbox_id, (sender, msg_id, inbox_id, "c1", inbox_id), result)


def test_a_reopened_file_resumes_at_its_cursor_with_its_handled_ids_and_results(tmp_path):
    path = tmp_path / "agent.state.sqlite"
    state = ClientState(path)
    state.bind("B", "token-1")
    _mark(state, 3, "m1", {"answer": 1})
    _mark(state, 7, "m2")
    state.close()
    again = ClientState(path)
    assert again.bind("B", "token-1") is False
    assert again.cursor == 7
    assert again.is_handled("A", "m1") and again.is_handled("A", "m2")
    assert not again.is_handled("someone else", "m1")  # ids are per sender, not global
    assert again.result("A", "m1") == {"answer": 1} and again.result("A", "m2") is None
    again.close()
    assert [r["msg_id"] for r in read_handled(path)] == ["m1", "m2"]


def test_a_missing_file_is_a_fresh_start(tmp_path):
    state = ClientState(tmp_path / "new" / "agent.state.sqlite")
    assert state.durable and state.cursor == 0
    state.close()


def test_a_corrupt_file_is_a_clear_error_and_is_left_alone(tmp_path):
    path = tmp_path / "agent.state.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="not a usable IoA client state file.*delete"):
        ClientState(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_another_agents_file_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    state = ClientState(path)
    state.bind("A", "t")
    state.close()
    state = ClientState(path)
    with pytest.raises(DataError, match="state of agent 'A', not 'B'"):
        state.bind("B", "t")
    state.close()


def test_a_new_registration_resets_the_cursor(tmp_path):
    # a new token means a new server-side registration, whose inbox ids start over: the old cursor would skip them
    path = tmp_path / "s.sqlite"
    state = ClientState(path)
    state.bind("B", "old")
    _mark(state, 40, "m1")
    assert state.bind("B", "new") is True
    assert state.cursor == 0 and not state.is_handled("A", "m1")
    state.close()
    assert ClientState(path).cursor == 0


def test_two_processes_cannot_share_one_file(tmp_path):
    path = tmp_path / "s.sqlite"
    first = ClientState(path)
    with pytest.raises(DataError, match="in use by another client"):
        ClientState(path)
    first.close()
    ClientState(path).close()  # free again once the first one closed


def test_a_result_that_is_not_json_writes_nothing(tmp_path):
    state = ClientState(tmp_path / "s.sqlite")
    with pytest.raises(TypeError):
        _mark(state, 5, "m1", result=object())
    assert state.cursor == 0 and not state.is_handled("A", "m1")
    state.close()
    assert read_handled(tmp_path / "s.sqlite") == []


@pytest.mark.parametrize("path", [None, "file"])
def test_handled_ids_are_bounded_below_the_cursor_but_never_pruned_above_it(tmp_path, path):
    state = ClientState(tmp_path / "s.sqlite" if path else None, keep_ids=10)
    # one entry stays pending at inbox 1: everything completed after it sits above the cursor
    for i in range(2, 60):
        state.commit(0, ("A", f"m{i}", i, "c1", i))
    assert state.cursor == 0 and all(state.is_handled("A", f"m{i}") for i in range(2, 60))
    for i in range(60, 200):
        _mark(state, i, f"m{i}")
    assert state.cursor == 199
    assert len(state._ids) <= 2 * 10 + 1
    assert state.is_handled("A", "m199") and not state.is_handled("A", "m2")
    if path:
        rows = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT COUNT(*) FROM handled").fetchone()[0]
        assert rows <= 10 + 10 // 10 + 1
    state.close()
