"""Exactly-once, in-order delivery through the SDK across forced reconnects."""

import asyncio

from agents_kit.client.sdk import AgentConnection, ServerRejected
from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, TeamUpRequest
from tests.agents_kit.conftest import run


async def _pair(server):
    got: dict[str, list[AgentMessage]] = {"A": [], "B": []}
    conns = {n: AgentConnection(server.url, AgentProfile(name=n), on_message=lambda i, m, n=n: got[n].append(m),
                                reconnect_min_s=0.02, reconnect_max_s=0.2, accept_teams_from=["A"]) for n in ("A", "B")}
    for conn in conns.values():
        await conn.start()
    comm = (await conns["A"].team_up(TeamUpRequest(agent_names=["B"]))).comm_id
    return conns, got, comm


def test_exactly_once_in_order_across_forced_reconnects(server):
    async def main():
        conns, got, comm = await _pair(server)

        async def chaos():
            for _ in range(8):
                await asyncio.sleep(0.05)
                await conns["B"].drop_connection()

        async def talk():
            for i in range(40):
                await conns["A"].send(AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION,
                                                   content=str(i)))

        await asyncio.gather(chaos(), talk())
        for _ in range(200):
            if len(got["B"]) == 41:
                break
            await asyncio.sleep(0.02)
        assert conns["B"].stats["reconnects"] >= 3
        assert [m.seq for m in got["B"]] == list(range(1, 42))
        assert [m.content for m in got["B"][1:]] == [str(i) for i in range(40)]
        # forcing a full replay (resume from 0) hands nothing twice to the application
        await asyncio.sleep(0.3)  # let the last chaos reconnect finish (its hello already carried the cursor)
        assert conns["B"].connected
        conns["B"].last_inbox_id = 0
        await conns["B"].drop_connection()
        for _ in range(100):
            if conns["B"].stats["duplicates_dropped"] >= 41:
                break
            await asyncio.sleep(0.02)
        assert conns["B"].stats["duplicates_dropped"] >= 41 and len(got["B"]) == 41, (conns["B"].stats, conns["B"].connected)
        for conn in conns.values():
            await conn.close()

    run(main(), timeout=40)


def test_a_retried_send_is_stored_once(server):
    async def main():
        conns, got, comm = await _pair(server)
        message = AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, content="once")
        first = await conns["A"].send(message)
        again = await conns["A"].send(message)
        assert again.duplicate and again.seq == first.seq
        assert [m.content for m in await conns["A"].chat_record(comm)] == [
            f"A formed team {comm}", "once"]
        for conn in conns.values():
            await conn.close()

    run(main())


def test_rejected_sends_raise_and_bad_tokens_are_refused(server):
    async def main():
        conns, got, comm = await _pair(server)
        try:
            await conns["A"].send(AgentMessage(comm_id="missing", sender="A", type=MessageType.DISCUSSION))
        except Exception as err:  # ProtocolError from the server's error frame
            assert "unknown_chat" in str(err)
        else:
            raise AssertionError("sending to a missing chat must fail")
        impostor = AgentConnection(server.url, AgentProfile(name="A"), token="stolen?")
        try:
            await impostor.start(timeout=5)
        except ServerRejected as err:
            assert "refused" in str(err) or "could not connect" in str(err)
        else:
            raise AssertionError("a wrong token must not connect")
        await impostor.close()
        for conn in conns.values():
            await conn.close()

    run(main())


def test_several_server_urls_are_one_deployment_for_the_client(monkeypatch, tmp_path):
    from agents_kit.client.config import ClientConfig, token_path

    monkeypatch.setenv("PAPERKITS_CACHE", str(tmp_path))
    conn = AgentConnection("http://a:7788, http://b:7789/", AgentProfile(name="x"))
    assert conn.server_urls == ["http://a:7788", "http://b:7789"] and conn.server_url == "http://a:7788"
    conn._next_server()
    assert conn.server_url == "http://b:7789" and str(conn._http.base_url).startswith("http://b:7789")
    run(conn._http.aclose())
    config = ClientConfig()
    config.server.url = "http://a:7788,http://b:7789"
    assert token_path(config).parent.name == "a_7788"  # one token for the deployment, keyed by the first server
