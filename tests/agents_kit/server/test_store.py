import pytest

from agents_kit.protocol import AgentMessage, AgentProfile, MessageType
from agents_kit.server.store import Store
from shared.errors import DataError


def _message(comm: str, sender: str, text: str, msg_id: str | None = None) -> AgentMessage:
    fields = {"msg_id": msg_id} if msg_id else {}
    return AgentMessage(comm_id=comm, sender=sender, type=MessageType.DISCUSSION, content=text, **fields)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "s.db")
    for name in ("A", "B", "C"):
        store.register(AgentProfile(name=name), None)
    store.create_comm("c1", "t", "A", ["A", "B"], "goal", None, 0)
    yield store
    store.close()


def test_append_assigns_increasing_seq_and_one_inbox_row_per_member(store):
    first, rows, duplicate = store.append(_message("c1", "A", "one"))
    second, rows2, _ = store.append(_message("c1", "B", "two"))
    assert (first.seq, second.seq) == (1, 2) and not duplicate
    assert sorted(member for member, _ in rows) == ["A", "B"]
    assert [m.content for _, m in store.inbox_after("B", 0)] == ["one", "two"]
    assert store.inbox_after("C", 0) == []


def test_append_is_idempotent_by_message_id(store):
    stored, _, _ = store.append(_message("c1", "A", "once", msg_id="fixed"))
    again, rows, duplicate = store.append(_message("c1", "A", "once", msg_id="fixed"))
    assert duplicate and rows == [] and again.seq == stored.seq
    assert len(store.chat_record("c1")) == 1


def test_everything_survives_reopening(tmp_path):
    store = Store(tmp_path / "s.db")
    token, created = store.register(AgentProfile(name="A", desc="d"), None)
    store.create_comm("c1", "t", "A", ["A"], "g", None, 0)
    store.append(_message("c1", "A", "kept"))
    store.ack("A", 1)
    store.close()
    reopened = Store(tmp_path / "s.db")
    assert created and reopened.authenticate("A", token) and not reopened.authenticate("A", "wrong")
    assert [m.content for m in reopened.chat_record("c1")] == ["kept"]
    assert reopened.acked("A") == 1 and reopened.members("c1") == ["A"]
    reopened.close()


def test_reregistering_needs_the_token(store):
    with pytest.raises(PermissionError, match="taken"):
        store.register(AgentProfile(name="A", desc="hijack"), "not-the-token")


def test_ack_cursor_never_moves_back(store):
    store.ack("A", 5)
    store.ack("A", 2)
    assert store.acked("A") == 5


def test_a_file_that_is_not_a_database_is_a_data_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match="not a usable IoA server database"):
        Store(path)
