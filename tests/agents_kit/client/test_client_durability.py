"""Client durability: a restarted client resumes from its own handled cursor and hands nothing to its handler twice.

The kill -9 test runs real client processes against a real server process on loopback
(``agents_kit/workloads/client_faults.py``); the benchmark runs the same workload larger.
"""

import asyncio
import contextlib

import pytest

from agents_kit.client.sdk import AgentConnection
from agents_kit.client.state import ClientState, read_handled
from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, TeamUpRequest
from agents_kit.workloads.client_faults import ClientFaultSpec, client_faults
from shared.errors import DataError
from tests.agents_kit.conftest import BOTH_BACKENDS, register, run


async def _crash(conn: AgentConnection) -> None:
    """What kill -9 leaves behind: no ack, no close frame, the state file as last committed."""
    conn._closing = True
    conn._runner.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await conn._runner
    await conn._http.aclose()
    conn.state.close()


async def _wait(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def _deliver(inbox_id: int, msg_id: str, seq: int, sender: str = "A", comm: str = "c1") -> dict:
    message = AgentMessage(msg_id=msg_id, comm_id=comm, sender=sender, seq=seq, type=MessageType.DISCUSSION,
                           content=msg_id)
    return {"op": "deliver", "inbox_id": inbox_id, "message": message.model_dump(mode="json")}


@BOTH_BACKENDS
def test_a_client_restarted_after_a_crash_resumes_from_its_state_file(server, tmp_path):
    # before: the cursor lived in memory and a new connection said resume_after=0, so the whole inbox came again
    tokens = {n: register(server, n) for n in ("A", "B")}
    path = tmp_path / "B.state.sqlite"

    async def main():
        got: list[str] = []
        a = AgentConnection(server.url, AgentProfile(name="A"), token=tokens["A"])
        b = AgentConnection(server.url, AgentProfile(name="B"), token=tokens["B"], state=path,
                            on_message=lambda i, m: got.append(m.content) or m.content)
        await a.start()
        await b.start()
        comm = (await a.team_up(TeamUpRequest(agent_names=["B"]))).comm_id
        for i in range(20):
            await a.send(AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, content=f"m{i}"))
        await _wait(lambda: len(got) == 21)
        await _crash(b)  # ack_every=100: the server never heard an ack, only the state file knows
        for i in range(20, 25):
            await a.send(AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, content=f"m{i}"))
        again: list[str] = []
        b2 = AgentConnection(server.url, AgentProfile(name="B"), token=tokens["B"], state=path,
                             on_message=lambda i, m: again.append(m.content))
        await b2.start()
        await _wait(lambda: len(again) == 5)
        await asyncio.sleep(0.2)
        assert again == [f"m{i}" for i in range(20, 25)]
        assert b2.state.result("A", next(m.msg_id for m in await a.chat_record(comm) if m.content == "m3")) == "m3"
        await b2.close()
        await a.close()

    run(main())
    handled = read_handled(path)
    assert [r["seq"] for r in handled] == list(range(1, 27)) and len(handled) == 26


@BOTH_BACKENDS
def test_a_fresh_client_without_state_resumes_after_the_servers_acknowledged_cursor(server):
    tokens = {n: register(server, n) for n in ("A", "B")}

    async def main():
        got: list[str] = []
        a = AgentConnection(server.url, AgentProfile(name="A"), token=tokens["A"])
        b = AgentConnection(server.url, AgentProfile(name="B"), token=tokens["B"], on_message=lambda i, m: got.append(m.content))
        await a.start()
        await b.start()
        comm = (await a.team_up(TeamUpRequest(agent_names=["B"]))).comm_id
        for i in range(10):
            await a.send(AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, content=f"m{i}"))
        await _wait(lambda: len(got) == 11)
        await b.close()  # a clean close acknowledges what was handled
        await a.send(AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, content="later"))
        fresh: list[str] = []
        b2 = AgentConnection(server.url, AgentProfile(name="B"), token=tokens["B"],
                             on_message=lambda i, m: fresh.append(m.content))
        await b2.start()
        await _wait(lambda: len(fresh) >= 1)
        await asyncio.sleep(0.2)
        assert fresh == ["later"]
        await b2.close()
        await a.close()

    run(main())


def test_a_message_redelivered_under_another_inbox_entry_is_handled_once(tmp_path):
    # idempotent by (sender, msg_id): also across a restart, and another sender's equal msg_id is not a duplicate
    async def main():
        got: list[int] = []
        conn = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"), state=ClientState(tmp_path / "s.sqlite"),
                               on_message=lambda i, m: got.append(i))
        await conn._handle(_deliver(5, "x", 1))
        await conn._handle(_deliver(9, "x", 1))  # the same message stored again under a new entry
        await conn._handle(_deliver(12, "x", 1, sender="C", comm="c2"))  # another sender's "x": a real message
        assert got == [5, 12] and conn.state.cursor == 12 and conn.stats["duplicates_dropped"] == 1
        await conn._http.aclose()
        conn.state.close()
        restarted = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"),
                                    state=ClientState(tmp_path / "s.sqlite"), on_message=lambda i, m: got.append(i))
        await restarted._handle(_deliver(20, "x", 1))  # redelivered after the restart, a new entry again
        assert got == [5, 12] and restarted.state.cursor == 20
        await restarted._http.aclose()
        restarted.state.close()

    run(main())


def test_manual_completion_moves_the_cursor_only_past_finished_messages(tmp_path):
    # per-chat workers finish out of order: a crash must not skip the unfinished one nor redo the finished ones
    path = tmp_path / "s.sqlite"

    async def main():
        seen: list[int] = []
        conn = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"), state=ClientState(path),
                               complete="manual", on_message=lambda i, m: seen.append(i))
        for inbox_id, comm in ((1, "c1"), (2, "c2"), (3, "c3")):
            await conn._handle(_deliver(inbox_id, f"m{inbox_id}", 1, comm=comm))
        conn.complete(3, "third")
        conn.complete(2)
        assert conn.state.cursor == 0
        with pytest.raises(ValueError, match="not awaiting completion"):
            conn.complete(3)
        await conn._http.aclose()
        conn.state.close()  # crash with inbox 1 unfinished
        restarted = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"), state=ClientState(path),
                                    complete="manual", on_message=lambda i, m: seen.append(i))
        assert restarted.last_inbox_id == 0  # hello resumes after the server's cursor: 1, 2, 3 come again
        for inbox_id, comm in ((1, "c1"), (2, "c2"), (3, "c3")):
            await restarted._handle(_deliver(inbox_id, f"m{inbox_id}", 1, comm=comm))
        assert seen == [1, 2, 3, 1] and restarted.state.cursor == 0
        restarted.complete(1, "first")
        assert restarted.state.cursor == 3
        assert restarted.state.result("A", "m3") == "third" and restarted.state.result("A", "m1") == "first"
        await restarted._http.aclose()
        restarted.state.close()

    run(main())


def test_a_corrupt_state_file_stops_the_client_with_a_clear_error_before_it_registers(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_text("not a database" * 200)
    conn = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"), state=path)  # no disk access yet
    with pytest.raises(DataError, match="not a usable IoA client state file.*delete"):
        run(conn.start())
    run(conn.close())
    assert path.read_text() == "not a database" * 200


@pytest.mark.server
def test_kill_9_a_client_five_times_mid_stream_loses_nothing_and_handles_nothing_twice(tmp_path):
    result = client_faults(ClientFaultSpec(kills=5, up_s=(0.1, 0.3), seed=0), work=tmp_path)
    assert result["kills_mid_stream"] == 5 and result["resumed_from_nonzero"] == 5, result
    assert result["messages"] > 100, result
    assert (result["lost"], result["handled_twice"], result["out_of_order"], result["unexpected"]) == (0, 0, 0, 0), result
    assert result["handler_reruns"] <= 5, result  # only a handler the kill interrupted runs again


@pytest.mark.server
def test_the_fault_test_sees_duplicates_when_the_cursor_is_kept_in_memory(tmp_path):
    # negative control: the same kills with the state in memory hand the messages since the last ack again
    result = client_faults(ClientFaultSpec(kills=5, up_s=(0.1, 0.3), durable=False, seed=0), work=tmp_path)
    assert result["lost"] == 0 and result["handled_twice"] > 0, result
    assert ClientState(None).durable is False


def test_a_configured_agent_keeps_its_state_next_to_its_token_unless_told_otherwise(tmp_path):
    from agents_kit.client.config import AgentSection, ClientConfig, state_path

    config = ClientConfig(agent=AgentSection(name="Cfg", token_file=str(tmp_path / "Cfg.token")))
    assert state_path(config) == str(tmp_path / "Cfg.state.sqlite")
    config.agent.state_file = ":memory:"
    assert state_path(config) == ":memory:"
    config.agent.state_file = str(tmp_path / "elsewhere.sqlite")
    assert state_path(config) == str(tmp_path / "elsewhere.sqlite")


def test_the_ioa_client_marks_a_message_handled_once_its_chat_worker_processed_it(server, tmp_path):
    from tests.agents_kit.client.test_flow import _team

    async def main():
        planner, wiki, calc = await _team(server)
        await planner.launch_goal("capital and sum", timeout=20)
        for agent in (planner, wiki, calc):  # every delivery processed: the cursor reached the last one
            await _wait(lambda a=agent: not a.connection._inflight and a.connection.state.cursor > 0)
            assert agent.connection.state.cursor == agent.connection.last_inbox_id
        for agent in (planner, wiki, calc):
            await agent.stop()

    run(main(), timeout=40)


def test_a_dead_lettered_entry_moves_the_cursor_past_it(tmp_path):
    # the server replaces an entry too large for the client by an ``undeliverable`` error frame: not a gap to wait on
    async def main():
        conn = AgentConnection("http://127.0.0.1:9", AgentProfile(name="B"), state=ClientState(tmp_path / "s.sqlite"))
        await conn._handle(_deliver(1, "m1", 1))
        await conn._handle({"op": "error", "code": "undeliverable", "detail": "too large", "inbox_id": 2})
        assert conn.state.cursor == 2 and conn.last_inbox_id == 2
        await conn._http.aclose()
        conn.state.close()

    run(main())
