"""Message-id collisions (issue 22): idempotency is per (sender, msg_id); a reused id with other content is refused;
no answer ever names another agent's chat or seq. Store-level and over a real server on 127.0.0.1."""

import asyncio
import json

import httpx
import pytest
import websockets

from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, ProtocolError
from agents_kit.server.store import Store
from tests.agents_kit.conftest import BOTH_BACKENDS, auth, register, run


def _message(comm: str, sender: str, text: str, msg_id: str) -> AgentMessage:
    return AgentMessage(comm_id=comm, sender=sender, type=MessageType.DISCUSSION, content=text, msg_id=msg_id)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "s.db")
    for name in ("A", "B", "C", "D"):
        store.register(AgentProfile(name=name), None)
    store.create_comm("c1", "t", "A", ["A", "B"], "goal", None, 0)
    store.create_comm("c2", "t", "C", ["C", "D"], "goal", None, 0)
    yield store
    store.close()


def test_two_senders_may_use_the_same_msg_id(store):
    first, _, dup1 = store.append(_message("c1", "A", "from A", "x"))
    second, rows, dup2 = store.append(_message("c2", "C", "from C", "x"))
    assert not dup1 and not dup2 and second.comm_id == "c2" and second.seq == 1
    assert sorted(m for m, _ in rows) == ["C", "D"]
    assert [m.content for m in store.chat_record("c2")] == ["from C"]
    assert [m.content for _, m in store.inbox_after("D", 0)] == ["from C"]


def test_a_reused_msg_id_with_other_content_is_refused_and_nothing_is_stored(store):
    store.append(_message("c1", "A", "first", "x"))
    with pytest.raises(ProtocolError) as err:
        store.append(_message("c1", "A", "something else", "x"))
    assert err.value.code == "msg_id_reused" and "c1" not in err.value.detail
    with pytest.raises(ProtocolError, match="msg_id_reused"):  # same content, another chat: not a retry either
        store.append(_message("c2", "A", "first", "x"))
    assert [m.content for m in store.chat_record("c1")] == ["first"] and store.chat_record("c2") == []


def test_an_exact_retry_is_a_duplicate_even_with_a_new_clock_and_while_still_queued(tmp_path):
    store = Store(tmp_path / "s.db", commit_delay_ms=300)  # the first copy stays queued while the retry arrives
    store.register(AgentProfile(name="A"), None)
    store.create_comm("c1", "t", "A", ["A"], "goal", None, 0)
    message = _message("c1", "A", "once", "fixed")
    entry, dup = store.prepare(message, ("A",))
    again, dup_again = store.prepare(message.model_copy(update={"sent_at": message.sent_at + 5}), ("A",))
    assert not dup and dup_again and again is entry
    with pytest.raises(ProtocolError, match="msg_id_reused"):
        store.prepare(_message("c1", "A", "changed", "fixed"), ("A",))
    entry.wait(5)
    stored, rows, dup_late = store.append(message)  # after the commit: found in the database
    assert dup_late and rows == [] and stored.seq == entry.message.seq == 1
    assert len(store.chat_record("c1")) == 1
    store.close()


def _ws(server) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


async def _connect(server, agent, token):
    ws = await websockets.connect(_ws(server))
    await ws.send(json.dumps({"op": "hello", "agent": agent, "token": token, "resume_after": 0}))
    welcome = json.loads(await ws.recv())
    assert welcome["op"] == "welcome", welcome
    for _ in range(welcome["replay"]):
        await ws.recv()
    return ws


async def _until(ws, op):
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["op"] == op or frame["op"] == "error":
            return frame


def _send_frame(comm, sender, content, msg_id):
    return json.dumps({"op": "send", "message": {"comm_id": comm, "sender": sender, "type": "discussion",
                                                 "content": content, "msg_id": msg_id}})


@BOTH_BACKENDS
def test_another_agents_msg_id_neither_drops_my_message_nor_reveals_its_chat(server):
    tokens = {n: register(server, n) for n in ("Alice", "Bob", "Carol", "Dave")}
    chat_ab = httpx.post(f"{server.url}/teamup", json={"agent_names": ["Bob"]}, headers=auth(tokens["Alice"])).json()
    chat_cd = httpx.post(f"{server.url}/teamup", json={"agent_names": ["Dave"]}, headers=auth(tokens["Carol"])).json()

    async def main():
        alice, carol, dave = [await _connect(server, n, tokens[n]) for n in ("Alice", "Carol", "Dave")]
        await alice.send(_send_frame(chat_ab["comm_id"], "Alice", "secret plan", "x"))
        first = await _until(alice, "sent")
        await carol.send(_send_frame(chat_cd["comm_id"], "Carol", "hello Dave", "x"))
        second = await _until(carol, "sent")
        got = await _until(dave, "deliver")
        # a reused id with other content, from the same sender: a clear error, nothing stored
        await carol.send(_send_frame(chat_cd["comm_id"], "Carol", "not the same", "x"))
        refused = await _until(carol, "error")
        for ws in (alice, carol, dave):
            await ws.close()
        return first, second, got, refused

    first, second, got, refused = run(main())
    assert first["op"] == "sent" and not first["duplicate"]
    assert second == {"op": "sent", "msg_id": "x", "comm_id": chat_cd["comm_id"], "seq": 2, "duplicate": False}
    assert got["message"]["content"] == "hello Dave"  # the healthy member still gets it
    assert refused["code"] == "msg_id_reused" and refused["msg_id"] == "x"
    assert chat_ab["comm_id"] not in json.dumps([second, refused])
    record = httpx.get(f"{server.url}/fetch_chat_record/{chat_cd['comm_id']}", headers=auth(tokens["Dave"])).json()
    assert [m["content"] for m in record[1:]] == ["hello Dave"]
    # over HTTP: the exact retry is a duplicate of Carol's own message, other content is 409
    body = {"comm_id": chat_cd["comm_id"], "sender": "Carol", "type": "discussion", "content": "hello Dave",
            "msg_id": "x"}
    retry = httpx.post(f"{server.url}/send", json=body, headers=auth(tokens["Carol"])).json()
    assert retry["duplicate"] and (retry["comm_id"], retry["seq"]) == (chat_cd["comm_id"], 2)
    clash = httpx.post(f"{server.url}/send", json=body | {"content": "other"}, headers=auth(tokens["Carol"]))
    assert clash.status_code == 409 and "msg_id_reused" in clash.json()["detail"]
    bob_view = httpx.post(f"{server.url}/send", json={**body, "comm_id": chat_ab["comm_id"], "sender": "Bob"},
                          headers=auth(tokens["Bob"])).json()
    assert not bob_view["duplicate"] and bob_view["comm_id"] == chat_ab["comm_id"]
