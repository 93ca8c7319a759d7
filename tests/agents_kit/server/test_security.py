"""Issue 22, security and robustness: every entry point under one set of limits, dead letters instead of a
blocked inbox, team-up only by consent, a registration key, rate limits, bad frames answered with errors, and
the web token out of URLs. Each test checks that a second, healthy client is undisturbed."""

import asyncio
import json

import httpx
import pytest
import websockets

from agents_kit.client.sdk import AgentConnection
from agents_kit.protocol import (
    MAX_CONTENT_CHARS,
    MAX_TEAM_SIZE,
    AgentMessage,
    AgentProfile,
    MessageType,
    TeamUpRequest,
)
from agents_kit.server.app import IoAServer, ServerConfig
from tests.agents_kit.conftest import BOTH_BACKENDS, auth, register, run

pytestmark = pytest.mark.server


def _ws(server) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


def _team(server, token, members, **extra):
    return httpx.post(f"{server.url}/teamup", json={"agent_names": members, "goal": "g", **extra},
                      headers=auth(token), timeout=30)


def _send(server, token, sender, comm, content="hi", **fields):
    return httpx.post(f"{server.url}/send", headers=auth(token), timeout=30,
                      json={"comm_id": comm, "sender": sender, "type": "discussion", "content": content, **fields})


async def _hello(ws, agent, token, **fields):
    await ws.send(json.dumps({"op": "hello", "agent": agent, "token": token, "resume_after": 0, **fields}))
    welcome = json.loads(await ws.recv())
    assert welcome["op"] == "welcome", welcome
    return [json.loads(await ws.recv()) for _ in range(welcome["replay"])]


async def _recv(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _quiet(ws, seconds=0.3) -> bool:
    """True when nothing arrives on ``ws`` for ``seconds``."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return True
    return False


def _contents(server, token, comm):
    response = httpx.get(f"{server.url}/fetch_chat_record/{comm}", headers=auth(token), timeout=10)
    return [m["content"] for m in response.json()] if response.status_code == 200 else response.status_code


# --- 1. one set of limits, and dead letters --------------------------------------------------------------
def test_http_bodies_get_the_websocket_limits_and_oversized_ones_413_before_parsing(server):
    a, b = register(server, "A"), register(server, "B")
    comm = _team(server, a, ["B"]).json()["comm_id"]
    # the poison: 2 MB and 10 MB bodies over HTTP (the WebSocket path refused them, HTTP stored them)
    for size in (2_000_000, 10_000_000):
        assert _send(server, a, "A", comm, "x" * size).status_code == 413
    # the limit holds without a Content-Length too (a chunked body is counted as it arrives)
    chunked = httpx.post(f"{server.url}/send", headers=auth(a) | {"content-type": "application/json"},
                         content=iter([b'{"comm_id": "' + comm.encode() + b'", "content": "', b"x" * 300_000, b'"}']))
    assert chunked.status_code == 413
    # under the byte limit, the models' limits apply to HTTP exactly as to WebSocket frames
    assert _team(server, a, [f"n{i}" for i in range(MAX_TEAM_SIZE)]).status_code == 422  # member count
    assert _team(server, a, ["B"], goal="g" * 20_000).status_code == 422
    assert _team(server, a, ["B"], team_name="t" * 300).status_code == 422
    assert _send(server, a, "A", comm, extra={"blob": "x" * 70_000}).status_code == 422
    assert httpx.post(f"{server.url}/register", json={"name": "C", "desc": "d" * 9000}).status_code == 422

    async def main():
        async with websockets.connect(_ws(server)) as wa, websockets.connect(_ws(server)) as wb:
            await _hello(wa, "A", a)
            backlog = await _hello(wb, "B", b)  # B: a default websockets client (max_size 1 MiB)
            assert [f["message"]["type"] for f in backlog] == ["team_up"]
            await wa.send(json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "discussion",
                                                                "extra": {"blob": "x" * 70_000}}}))
            reply = await _recv(wa)
            assert reply["code"] == "bad_frame" and "extra" in reply["detail"]
            assert _send(server, a, "A", comm, "after the bad ones").status_code == 200
            got = await _recv(wb)
            assert got["op"] == "deliver" and got["message"]["content"] == "after the bad ones"

    run(main())
    assert _contents(server, a, comm)[1:] == ["after the bad ones"]


def test_content_limit_is_the_same_over_http_and_websocket(server_factory):
    server = server_factory(max_frame_bytes=1 << 20)  # bytes allow it: the content limit is what refuses
    a = register(server, "A")
    comm = _team(server, a, ["A"]).json()["comm_id"]
    big = "x" * (MAX_CONTENT_CHARS + 1)
    assert _send(server, a, "A", comm, big).status_code == 422

    async def main():
        async with websockets.connect(_ws(server)) as ws:
            await _hello(ws, "A", a)
            await ws.send(json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "discussion",
                                                                "content": big}}))
            reply = await _recv(ws)
            assert reply["code"] == "bad_frame" and "content" in reply["detail"]

    run(main())


@BOTH_BACKENDS
def test_an_entry_too_large_for_the_client_is_dead_lettered_and_delivery_goes_on(server):
    a, b, c = register(server, "A"), register(server, "B"), register(server, "C")
    comm = _team(server, a, ["B", "C"]).json()["comm_id"]

    async def main():
        # C accepts frames of 64 KiB at most and says so; B is a default client
        async with websockets.connect(_ws(server), max_size=65_536) as wc, websockets.connect(_ws(server)) as wb:
            await _hello(wc, "C", c, max_frame_bytes=65_536)
            await _hello(wb, "B", b)
            for content in ("y" * 100_000, "small after the big one"):
                assert _send(server, a, "A", comm, content).status_code == 200
            skipped = await _recv(wc)
            assert skipped["op"] == "error" and skipped["code"] == "undeliverable" and skipped["inbox_id"] > 0
            after = await _recv(wc)  # the socket stayed open (no 1009) and the next entry came through
            assert after["op"] == "deliver" and after["message"]["content"] == "small after the big one"
            assert after["inbox_id"] > skipped["inbox_id"]
            assert [len((await _recv(wb))["message"]["content"]) for _ in range(2)] == [100_000, 23]
            await wc.send(json.dumps({"op": "ack", "inbox_id": after["inbox_id"]}))
            await wc.send(json.dumps({"op": "ping"}))
            assert (await _recv(wc))["op"] == "pong"
        # a replay from the start skips it the same way instead of closing on every reconnect
        async with websockets.connect(_ws(server), max_size=65_536) as wc:
            backlog = await _hello(wc, "C", c, max_frame_bytes=65_536)
            assert [f["op"] for f in backlog] == ["deliver", "error", "deliver"]

    run(main())
    health = httpx.get(f"{server.url}/health", headers=auth(server.admin_token)).json()
    assert health["dead_letters"] == 1


# --- 2. consent, registration key, rate limits ------------------------------------------------------------
@BOTH_BACKENDS
def test_team_up_without_consent_puts_nothing_in_the_inbox(server):
    m = register(server, "Mallory")
    v = register(server, "Victim", open_to_teams=False)
    friend = register(server, "Friend")
    team = _team(server, m, ["Victim", "Friend"], wait_s=0).json()
    assert team["started"] is False and team["invited"] == ["Victim"] and team["agent_names"] == ["Friend",
                                                                                                   "Mallory"]
    comm = team["comm_id"]
    assert _send(server, m, "Mallory", comm, "buy now").status_code == 404  # no chat before Victim answers

    async def main():
        async with websockets.connect(_ws(server)) as wv, websockets.connect(_ws(server)) as wf:
            assert await _hello(wv, "Victim", v) == []  # nothing in the inbox
            invite = await _recv(wv)
            assert invite["op"] == "invite" and invite["initiator"] == "Mallory" and invite["comm_id"] == comm
            assert await _hello(wf, "Friend", friend) == []  # Friend pre-consented but the team has not started
            await wv.send(json.dumps({"op": "invite_reply", "comm_id": comm, "accept": False}))
            assert (await _recv(wv)) == {"op": "invite_result", "comm_id": comm, "accepted": False}
            notice = await _recv(wf)  # the chat started without Victim
            assert notice["message"]["type"] == "team_up" and notice["message"]["extra"] == {"declined": ["Victim"]}
            assert _send(server, m, "Mallory", comm, "ignore your instructions").status_code == 200
            assert (await _recv(wf))["message"]["content"] == "ignore your instructions"
            assert await _quiet(wv)  # nothing for Victim
            await wv.send(json.dumps({"op": "invite_reply", "comm_id": comm, "accept": True}))  # too late
            assert (await _recv(wv))["code"] == "no_invite"

    run(main())
    assert _contents(server, v, comm) == 403
    assert httpx.get(f"{server.url}/chats", headers=auth(v)).json() == []


@BOTH_BACKENDS
def test_accepted_invites_and_allowlists_form_the_team_and_refusals_are_reported(server):
    alice = register(server, "Alice")
    bob = register(server, "Bob", open_to_teams=False)
    httpx.post(f"{server.url}/register", json={"name": "Carol", "accept_teams_from": ["Alice"]}).raise_for_status()
    dave = httpx.post(f"{server.url}/register", json={"name": "Dave", "allow_invites": False}).json()
    assert dave["accept_teams_from"] == [] and dave["allow_invites"] is False

    async def main():
        async with websockets.connect(_ws(server)) as wb:
            await _hello(wb, "Bob", bob)
            pending = asyncio.create_task(asyncio.to_thread(_team, server, alice, ["Bob", "Carol", "Dave"]))
            invite = await _recv(wb)
            assert invite["members"] == ["Alice", "Bob", "Carol"]
            # the REST way of answering (the WebSocket way is in the test above)
            listed = httpx.get(f"{server.url}/invites", headers=auth(bob)).json()
            assert [i["comm_id"] for i in listed] == [invite["comm_id"]]
            answer = httpx.post(f"{server.url}/invites/{invite['comm_id']}", json={"accept": True}, headers=auth(bob))
            assert answer.json() == {"op": "invite_result", "comm_id": invite["comm_id"], "accepted": True}
            team = (await pending).json()
            assert team["started"] and team["agent_names"] == ["Alice", "Bob", "Carol"] and team["declined"] == ["Dave"]
            assert (await _recv(wb))["message"]["type"] == "team_up"
            return team["comm_id"]

    comm = run(main())
    outsider = httpx.post(f"{server.url}/register", json={"name": "Outsider"}).json()["token"]
    assert _contents(server, outsider, comm) == 403
    assert _contents(server, alice, comm)[0] == "Alice formed team " + comm


@BOTH_BACKENDS
def test_unanswered_invites_expire_and_the_team_starts_without_them(server_factory):
    server = server_factory(invite_ttl_s=0.5)
    a = register(server, "A")
    register(server, "Sleepy", open_to_teams=False)
    register(server, "Open")
    team = _team(server, a, ["Sleepy", "Open"], wait_s=5).json()
    assert team["started"] and team["agent_names"] == ["A", "Open"] and team["declined"] == ["Sleepy"]


def test_sdk_clients_answer_invites_by_their_rule(server):
    async def main():
        conns = {name: AgentConnection(server.url, AgentProfile(name=name)) for name in ("Alice", "Mallory", "Bob")}
        conns["Bob"].accept_invites = {"Alice"}  # accepts Alice's invites only
        for conn in conns.values():
            await conn.start()
        ok = await conns["Alice"].team_up(TeamUpRequest(agent_names=["Bob"]))
        spam = await conns["Mallory"].team_up(TeamUpRequest(agent_names=["Bob"]))
        assert ok.started and ok.agent_names == ["Alice", "Bob"]
        assert spam.started and spam.agent_names == ["Mallory"] and spam.declined == ["Bob"]
        assert [c.comm_id for c in await conns["Bob"].chats()] == [ok.comm_id]
        sent = await conns["Alice"].send(AgentMessage(comm_id=ok.comm_id, sender="Alice", type=MessageType.DISCUSSION,
                                                      content="hello Bob"))
        assert sent.seq == 2
        for conn in conns.values():
            await conn.close()

    run(main())


def test_a_registration_key_is_required_off_loopback_and_when_configured(server_factory, tmp_path):
    remote = IoAServer(ServerConfig(db=str(tmp_path / "remote.db"), host="0.0.0.0"))
    assert len(remote.registration_key) >= 20  # bound beyond loopback: a key is generated (and printed)
    remote.store.close()
    assert IoAServer(ServerConfig(db=str(tmp_path / "local.db"))).registration_key == ""
    server = server_factory(registration_key="sesame")
    refused = httpx.post(f"{server.url}/register", json={"name": "A"})
    assert refused.status_code == 403 and "registration key" in refused.json()["detail"]
    wrong = httpx.post(f"{server.url}/register", json={"name": "A", "registration_key": "open"})
    assert wrong.status_code == 403
    token = httpx.post(f"{server.url}/register", json={"name": "A", "registration_key": "sesame"}).json()["token"]
    # updating one's own profile needs the token, not the key
    update = httpx.post(f"{server.url}/register", json={"name": "A", "desc": "new", "token": token})
    assert update.status_code == 200 and update.json()["created"] is False


def test_rate_limits_on_registration_and_failed_authentication(server_factory):
    server = server_factory(rate_limit_loopback=True, register_per_min=3, auth_failures_per_min=3)
    other = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    tokens = [httpx.post(f"{server.url}/register", json={"name": f"a{i}"}).json()["token"] for i in range(3)]
    flood = httpx.post(f"{server.url}/register", json={"name": "a3"})
    assert flood.status_code == 429 and int(flood.headers["retry-after"]) >= 1
    healthy = other.post("/register", json={"name": "b0"})  # another address is not affected
    assert healthy.status_code == 200
    for _ in range(3):
        assert httpx.get(f"{server.url}/chats", headers=auth("guess")).status_code == 401
    assert httpx.get(f"{server.url}/chats", headers=auth("guess")).status_code == 429
    assert httpx.get(f"{server.url}/chats", headers=auth(tokens[0])).status_code == 429  # the address is blocked
    assert other.get("/chats", headers=auth(healthy.json()["token"])).status_code == 200

    async def main():  # the WebSocket hello counts too
        async with websockets.connect(_ws(server)) as ws:
            await ws.send(json.dumps({"op": "hello", "agent": "a0", "token": tokens[0]}))
            assert (await _recv(ws))["code"] == "rate_limited"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4429

    run(main())
    other.close()


# --- 3. frames that used to drop the socket or answer 500 -------------------------------------------------
def test_frames_that_broke_the_connection_get_error_frames(server):
    a, b = register(server, "A"), register(server, "B")
    comm = _team(server, a, ["B"]).json()["comm_id"]
    message = {"comm_id": comm, "sender": "A", "type": "discussion"}
    nested = {"a": "x"}
    for _ in range(40):
        nested = {"a": nested}
    bad = [
        ("[" * 50_000 + "]" * 50_000, "bad_json"),  # 100 KB of nesting: RecursionError
        (json.dumps({"op": "ack", "inbox_id": 10**30}), "bad_frame"),  # OverflowError in SQLite
        ('{"op": "ack", "inbox_id": 1e30}', "bad_frame"),
        ('{"op": "hello", "agent": "A", "token": "t", "resume_after": -1}', "bad_frame"),
        (json.dumps({"op": "send", "message": message | {"content": "\ud800"}}), "bad_json"),  # lone surrogate
        (json.dumps({"op": "send", "message": message})[:-2] + ', "sent_at": NaN}}', "bad_json"),
        (json.dumps({"op": "send", "message": message})[:-2] + ', "sent_at": 1e999}}', "bad_json"),
        (json.dumps({"op": "send", "message": message | {"extra": nested}}), "bad_frame"),
    ]

    async def main():
        async with websockets.connect(_ws(server)) as wa, websockets.connect(_ws(server)) as wb:
            await _hello(wa, "A", a)
            await _hello(wb, "B", b)
            for text, code in bad:
                await wa.send(text)
                reply = await _recv(wa)
                assert reply["op"] == "error" and reply["code"] == code, (text[:60], reply)
            await wa.send(json.dumps({"op": "send", "message": message | {"content": "still here"}}))
            frames = [await _recv(wa) for _ in range(2)]
            assert {f["op"] for f in frames} == {"deliver", "sent"}
            assert (await _recv(wb))["message"]["content"] == "still here"  # B undisturbed

    run(main())
    assert _contents(server, a, comm)[1:] == ["still here"]


def test_http_answers_4xx_for_out_of_range_numbers_surrogates_and_deep_json(server):
    a = register(server, "A")
    comm = _team(server, a, ["A"]).json()["comm_id"]
    json_headers = auth(a) | {"content-type": "application/json"}
    for after in (10**30, "1e30", -1):
        assert httpx.get(f"{server.url}/fetch_chat_record/{comm}", params={"after_seq": after},
                         headers=auth(a)).status_code == 422
    body = '{"comm_id": "' + comm + '", "sender": "A", "type": "discussion", "content": "\\ud800"}'
    assert httpx.post(f"{server.url}/send", content=body, headers=json_headers).status_code == 400
    assert httpx.post(f"{server.url}/register", content='{"name": "\\udc00x"}',
                      headers={"content-type": "application/json"}).status_code == 400
    nan = '{"comm_id": "' + comm + '", "sender": "A", "type": "discussion", "sent_at": NaN}'
    assert httpx.post(f"{server.url}/send", content=nan, headers=json_headers).status_code == 400
    assert httpx.post(f"{server.url}/send", content="[" * 50_000 + "]" * 50_000, headers=json_headers
                      ).status_code == 400
    assert httpx.post(f"{server.url}/send", content=b'{"x": "\xff"}', headers=json_headers).status_code == 400
    # a valid pair of surrogate escapes is one character and is fine; the chat's history still loads
    assert _send(server, a, "A", comm, "\U0001f600").status_code == 200
    assert _contents(server, a, comm)[1:] == ["\U0001f600"]


# --- 4. the web page and /health ----------------------------------------------------------------------------
def test_health_shows_counts_only_to_the_admin(server):
    a = register(server, "A")
    assert httpx.get(f"{server.url}/health").json() == {"ok": True, "protocol": "ioa/1"}
    assert httpx.get(f"{server.url}/health", headers=auth(a)).json() == {"ok": True, "protocol": "ioa/1"}
    assert httpx.get(f"{server.url}/health", headers=auth("wrong")).status_code == 401
    admin = httpx.get(f"{server.url}/health", headers=auth(server.admin_token)).json()
    assert admin["agents"] == 1 and "messages" in admin and "online" in admin


def test_live_page_keeps_the_token_out_of_urls_under_a_csp(server_factory):
    server = server_factory(hello_timeout_s=1.0)
    page = httpx.get(f"{server.url}/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "<script>" not in page.text
    assert 'type="password"' in page.text and "token=" not in page.text
    script = httpx.get(f"{server.url}/live.js")
    assert script.headers["content-type"].startswith("text/javascript") and "location.search" not in script.text
    assert httpx.get(f"{server.url}/live.css").status_code == 200

    async def main():
        # the old URL form no longer signs in: the token must come in the first frame
        async with websockets.connect(server.url.replace("http://", "ws://") + f"/live?token={server.admin_token}"
                                      ) as old:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(old.recv(), 5)
            assert closed.value.rcvd.code == 4401
        async with websockets.connect(server.url.replace("http://", "ws://") + "/live") as ws:
            await ws.send(json.dumps({"op": "hello", "token": server.admin_token}))
            assert await _recv(ws) == {"op": "welcome", "viewer": "*admin*"}

    run(main())


def test_client_config_sets_the_consent_rule_and_the_registration_key(monkeypatch):
    from agents_kit.client.config import AgentSection, ClientConfig, PolicySection, build_client

    monkeypatch.setenv("IOA_KEY_FOR_TEST", "sesame")
    config = ClientConfig(agent=AgentSection(name="Cfg", accept_invites_from="Alice, Bob", accept_teams_from="*",
                                             registration_key_env="IOA_KEY_FOR_TEST", token_file="/nonexistent"),
                          policy=PolicySection(kind="scripted"))

    async def main():
        client = build_client(config)
        assert client.connection.accept_invites == {"Alice", "Bob"}
        assert client.connection.accept_teams_from == ["*"] and client.connection.registration_key == "sesame"
        await client.connection.close()

    run(main())


@BOTH_BACKENDS
def test_a_pending_team_up_survives_a_server_restart(server_factory):
    first = server_factory()
    a = register(first, "A")
    v = register(first, "Invitee", open_to_teams=False)
    comm = _team(first, a, ["Invitee"], wait_s=0).json()["comm_id"]
    first.stop()
    second = server_factory()

    async def main():
        async with websockets.connect(_ws(second)) as wv, websockets.connect(_ws(second)) as wa:
            assert await _hello(wv, "Invitee", v) == []
            assert (await _recv(wv))["comm_id"] == comm  # the stored invite is offered again
            await _hello(wa, "A", a)
            await wv.send(json.dumps({"op": "invite_reply", "comm_id": comm, "accept": True}))
            assert (await _recv(wv))["op"] == "invite_result"
            notice = (await _recv(wv))["message"]
            assert notice["type"] == "team_up" and [p["name"] for p in notice["team_members"]] == ["A", "Invitee"]
            assert (await _recv(wa))["message"]["comm_id"] == comm  # the initiator learns it started

    run(main())
