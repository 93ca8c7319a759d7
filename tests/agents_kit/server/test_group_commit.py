"""The store's writer thread and group commit (issue 22): acknowledged means committed, batches keep order, a bad
operation fails alone, counters survive a restart, and a fan-out racing a reconnect never delivers twice."""

import asyncio
import json
import sqlite3
import time

import httpx
import pytest
import websockets

from agents_kit.client.sdk import AgentConnection
from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, TeamUpRequest
from agents_kit.server.app import ServerConfig, ServerProcess
from agents_kit.server.routing import Connection, Router
from agents_kit.server.store import SQLITE_MAX_INT, Store
from tests.agents_kit.conftest import auth, register, run


def _message(comm: str, sender: str, text: str) -> AgentMessage:
    return AgentMessage(comm_id=comm, sender=sender, type=MessageType.DISCUSSION, content=text)


def _store(path, **options) -> Store:
    store = Store(path, **options)
    for name in ("A", "B", "C"):
        store.register(AgentProfile(name=name), None)
    store.create_comm("c1", "t", "A", ["A", "B"], "goal", None, 0)
    store.create_comm("c2", "t", "B", ["B", "C"], "goal", None, 0)
    return store


def test_queued_messages_share_one_commit_and_keep_their_order(tmp_path):
    store = _store(tmp_path / "s.db", commit_delay_ms=100)
    before = store.commits
    entries = [store.prepare(_message("c1" if i % 2 else "c2", "B", str(i)), ("A", "B"))[0] for i in range(40)]
    for entry in entries:
        entry.wait(5)
    assert store.commits - before <= 2  # 40 messages, one or two transactions (not 40)
    assert [e.gseq for e in entries] == sorted(e.gseq for e in entries)
    assert [m.seq for m in store.chat_record("c1")] == list(range(1, 21))
    # B is in both chats: its inbox interleaves them in commit order
    assert [m.content for _, m in store.inbox_after("B", 0)] == [str(i) for i in range(40)]
    store.close()


def test_seq_and_inbox_ids_continue_after_reopening(tmp_path):
    store = _store(tmp_path / "s.db")
    store.append(_message("c1", "A", "one"))
    _, rows, _ = store.append(_message("c1", "B", "two"))
    store.close()
    reopened = Store(tmp_path / "s.db")
    third, rows3, _ = reopened.append(_message("c1", "A", "three"))
    other, _, _ = reopened.append(_message("c2", "C", "elsewhere"))
    assert third.seq == 3 and other.seq == 1 and rows3[0][1] == rows[0][1] + 1
    assert [i for i, _ in reopened.inbox_after("A", 0)] == sorted(i for i, _ in reopened.inbox_after("A", 0))
    reopened.close()


def test_acks_are_cumulative_bounded_and_cannot_break_the_writer(tmp_path):
    store = _store(tmp_path / "s.db")
    for inbox_id in (3, 7, 5):
        store.ack("A", inbox_id)
    store.ack("B", 10**30)  # far beyond SQLite's integers: clamped, not an OverflowError in the writer
    stored, _, _ = store.append(_message("c1", "A", "still works"))
    assert stored.seq == 1 and store.acked("A") == 7 and store.acked("B") == SQLITE_MAX_INT
    store.close()
    reopened = Store(tmp_path / "s.db")
    assert reopened.acked("A") == 7
    reopened.close()


def test_one_failing_message_fails_alone_and_its_batch_commits(tmp_path):
    store = _store(tmp_path / "s.db", commit_delay_ms=300)
    first, _ = store.prepare(_message("c1", "A", "doomed"), ("A", "B"))
    second, _ = store.prepare(_message("c1", "B", "fine"), ("A", "B"))
    other = sqlite3.connect(tmp_path / "s.db")  # another writer takes first's row id while it is queued
    other.execute("INSERT INTO messages VALUES (?, 'c9', 1, 'X', 'intruder', '{}')", (first.gseq,))
    other.commit()
    other.close()
    assert first.wait(5).error is not None and second.wait(5).error is None
    assert [m.content for m in store.chat_record("c1")] == ["fine"]
    store.close()


def test_a_sent_message_is_already_in_the_database_file(server):
    a, _ = register(server, "A"), register(server, "B")
    comm = httpx.post(f"{server.url}/teamup", json={"agent_names": ["B"]}, headers=auth(a)).json()["comm_id"]

    async def main():
        async with websockets.connect(server.url.replace("http://", "ws://") + "/ws") as ws:
            await ws.send(json.dumps({"op": "hello", "agent": "A", "token": a, "resume_after": 0}))
            welcome = json.loads(await ws.recv())
            for _ in range(welcome["replay"]):
                await ws.recv()
            await ws.send(json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "discussion",
                                                                "content": "durable?", "msg_id": "m1"}}))
            while True:
                frame = json.loads(await ws.recv())
                if frame["op"] == "sent":
                    break
            # the moment `sent` arrives, a separate connection to the file sees the row: it was committed first
            with sqlite3.connect(server.config.db) as db:
                return db.execute("SELECT seq FROM messages WHERE sender='A' AND msg_id='m1'").fetchone()

    assert run(main()) == (2,)  # seq 1 is the team_up notice


def test_a_fan_out_racing_a_reconnect_delivers_once(tmp_path):
    store = _store(tmp_path / "s.db")

    async def main():
        router = Router(store)
        frames: list[str] = []

        async def send_text(frame):
            frames.append(frame)

        async def close(code):
            return None

        replies = []
        router.submit("A", _message("c1", "A", "racing"), replies.append)
        entry = next(iter(store._pending.values()))
        entry.wait(5)  # committed; the loop is blocked, so its fan-out waits queued behind this step
        time.sleep(0.05)
        conn = Connection("B", send_text, close, max_queue=100)
        await router.attach(conn, 0)  # the backlog already holds the message
        for _ in range(20):
            await asyncio.sleep(0.01)
        conn.shutdown()
        return frames, replies

    frames, replies = run(main())
    delivers = [json.loads(f) for f in frames if f.startswith('{"op":"deliver"')]
    assert [d["message"]["content"] for d in delivers] == ["racing"]
    assert len(replies) == 1 and replies[0].seq == 1
    store.close()


@pytest.mark.parametrize("deflate", [False, True])
def test_permessage_deflate_is_off_unless_configured(server_factory, deflate):
    server = server_factory(ws_per_message_deflate=deflate)

    async def main():
        async with websockets.connect(server.url.replace("http://", "ws://") + "/ws") as ws:
            return ws.response.headers.get("Sec-WebSocket-Extensions") or ""

    assert ("permessage-deflate" in run(main())) is deflate


def test_every_acknowledged_message_survives_kill_9(tmp_path):
    server = ServerProcess(ServerConfig(db=str(tmp_path / "k.db"), port=0)).start()
    try:
        async def send_all():
            tokens = {}
            async with httpx.AsyncClient(base_url=server.url) as http:
                for name in ("K1", "K2"):
                    tokens[name] = (await http.post("/register", json={"name": name, "accept_teams_from": ["*"]})
                                    ).json()["token"]
            conn = AgentConnection(server.url, AgentProfile(name="K1"), token=tokens["K1"])
            await conn.start()
            comm = (await conn.team_up(TeamUpRequest(agent_names=["K2"]))).comm_id
            sent = await asyncio.gather(*(conn.send(_message(comm, "K1", str(i))) for i in range(200)))
            server.kill()  # SIGKILL right after the last acknowledgement: nothing can be flushed on the way out
            await conn.close()
            return comm, sent

        comm, sent = run(send_all())
        server.start()
        record = httpx.get(f"{server.url}/fetch_chat_record/{comm}", headers=auth(server.config.admin_token)).json()
        stored = {m["msg_id"]: m["seq"] for m in record}
        assert all(stored.get(s.msg_id) == s.seq for s in sent) and len(record) == 201
    finally:
        server.stop()


def test_deflate_defaults_off_on_loopback_only():
    from agents_kit.server.app import _deflate

    assert not _deflate(ServerConfig()) and _deflate(ServerConfig(host="0.0.0.0"))
    assert _deflate(ServerConfig(ws_per_message_deflate=True)) and not _deflate(
        ServerConfig(host="0.0.0.0", ws_per_message_deflate=False))
