"""The server over real HTTP and WebSocket connections on 127.0.0.1."""

import asyncio
import json

import httpx
import pytest
import websockets

from tests.agents_kit.conftest import BACKENDS, auth, register, run

pytestmark = pytest.mark.parametrize("ioa_backend", BACKENDS, indirect=True)


def _ws(server) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


def _team(server, token, members, **extra):
    response = httpx.post(f"{server.url}/teamup", json={"agent_names": members, "goal": "g", **extra},
                          headers=auth(token), timeout=10)
    return response


async def _hello(ws, agent, token, resume_after=0):
    await ws.send(json.dumps({"op": "hello", "agent": agent, "token": token, "resume_after": resume_after}))
    welcome = json.loads(await ws.recv())
    assert welcome["op"] == "welcome", welcome
    return [json.loads(await ws.recv()) for _ in range(welcome["replay"])]


def _record(server, token, comm):
    return httpx.get(f"{server.url}/fetch_chat_record/{comm}", headers=auth(token), timeout=10).json()


def test_register_search_and_team_up(server):
    a = register(server, "Planner", "plans", "Human Assistant")
    register(server, "CalcAgent", "arithmetic calculator")
    register(server, "WikiAgent", "wikipedia search")
    hits = httpx.post(f"{server.url}/retrieve_assistant", json={"capabilities": ["arithmetic"]}, headers=auth(a)).json()
    assert [h["name"] for h in hits] == ["CalcAgent"]
    team = _team(server, a, ["CalcAgent", "Ghost"]).json()
    assert team["agent_names"] == ["CalcAgent", "Planner"] and team["unknown"] == ["Ghost"]
    # every member learns the chat from the server's team_up message (no lazy creation)
    record = _record(server, a, team["comm_id"])
    assert [m["type"] for m in record] == ["team_up"] and record[0]["goal"] == "g"


def test_rest_rejects_missing_wrong_tokens_and_non_members(server):
    a, b = register(server, "A"), register(server, "B")
    c = register(server, "C")
    assert httpx.post(f"{server.url}/list_all_agents").status_code == 401
    assert httpx.post(f"{server.url}/list_all_agents", headers=auth("nope")).status_code == 401
    comm = _team(server, a, ["B"]).json()["comm_id"]
    assert httpx.get(f"{server.url}/fetch_chat_record/{comm}", headers=auth(c)).status_code == 403
    assert httpx.get(f"{server.url}/fetch_chat_record/{comm}", headers=auth(b)).status_code == 200
    assert httpx.get(f"{server.url}/fetch_chat_record/{comm}",
                     headers=auth(server.admin_token)).status_code == 200
    taken = httpx.post(f"{server.url}/register", json={"name": "A", "desc": "impostor"})
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]
    # sending as someone else over HTTP is refused and nothing is stored
    forged = httpx.post(f"{server.url}/send", headers=auth(c), json={"comm_id": comm, "sender": "A",
                                                                     "type": "discussion", "content": "forged"})
    assert forged.status_code == 403 and len(_record(server, a, comm)) == 1


def test_nesting_depth_limit(server_factory):
    server = server_factory(max_nesting_depth=1)
    a = register(server, "A")
    register(server, "B")
    root = _team(server, a, ["B"]).json()
    child = _team(server, a, ["B"], parent_comm_id=root["comm_id"]).json()
    assert child["depth"] == 1
    refused = _team(server, a, ["B"], parent_comm_id=child["comm_id"])
    assert refused.status_code == 422 and "nesting depth 2 exceeds" in refused.json()["detail"]


def test_websocket_rejects_a_bad_hello_and_closes(server):
    register(server, "A")

    async def main():
        async with websockets.connect(_ws(server)) as ws:
            await ws.send(json.dumps({"op": "hello", "agent": "A", "token": "wrong"}))
            error = json.loads(await ws.recv())
            assert error["op"] == "error" and error["code"] == "unauthorized"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4401

    run(main())


def test_bad_frames_get_errors_keep_the_connection_and_store_nothing(server_factory):
    server = server_factory(max_frame_bytes=4096)
    a, b = register(server, "A"), register(server, "B")
    register(server, "C")
    comm = _team(server, a, ["B"]).json()["comm_id"]
    other = _team(server, b, ["C"]).json()["comm_id"]

    async def main():
        async with websockets.connect(_ws(server)) as ws:
            await _hello(ws, "A", a)
            bad = [
                ("{oops", "bad_json"),
                (json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "yell"}}), "bad_frame"),
                (json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "discussion",
                                                       "content": "x" * 5000}}), "too_large"),
                (json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "B", "type": "discussion"}}),
                 "forbidden"),
                (json.dumps({"op": "send", "message": {"comm_id": other, "sender": "A", "type": "discussion"}}),
                 "not_member"),
                (json.dumps({"op": "send", "message": {"comm_id": "nope", "sender": "A", "type": "discussion"}}),
                 "unknown_chat"),
                (json.dumps({"op": "send", "message": {"comm_id": comm, "sender": "A", "type": "team_up"}}),
                 "forbidden"),
            ]
            for text, code in bad:
                await ws.send(text)
                reply = json.loads(await ws.recv())
                assert reply["op"] == "error" and reply["code"] == code, (text[:60], reply)
            await ws.send(json.dumps({"op": "ping"}))  # still connected
            assert json.loads(await ws.recv())["op"] == "pong"
            await ws.send(b"binary")
            assert json.loads(await ws.recv())["code"] == "bad_frame"

    run(main())
    assert len(_record(server, a, comm)) == 1 and len(_record(server, b, other)) == 1  # only the team_up notices


def test_delivery_fans_out_to_members_and_replays_to_late_joiners(server):
    a, b = register(server, "A"), register(server, "B")
    comm = _team(server, a, ["B"]).json()["comm_id"]

    async def main():
        async with websockets.connect(_ws(server)) as wa:
            await _hello(wa, "A", a)
            for i in range(3):
                await wa.send(json.dumps({"op": "send", "message": {"msg_id": f"m{i}", "comm_id": comm,
                                                                    "sender": "A", "type": "discussion",
                                                                    "content": str(i)}}))
            frames = [json.loads(await wa.recv()) for _ in range(6)]  # own echo + sent acks
            sent = [f for f in frames if f["op"] == "sent"]
            assert [f["seq"] for f in sent] == [2, 3, 4]
            # a retry with the same msg_id is acknowledged as a duplicate and not stored again
            await wa.send(json.dumps({"op": "send", "message": {"msg_id": "m0", "comm_id": comm, "sender": "A",
                                                                "type": "discussion", "content": "0"}}))
            dup = json.loads(await wa.recv())
            assert dup == {"op": "sent", "msg_id": "m0", "comm_id": comm, "seq": 2, "duplicate": True}
        async with websockets.connect(_ws(server)) as wb:  # B was offline the whole time
            backlog = await _hello(wb, "B", b)
            assert [f["message"]["seq"] for f in backlog] == [1, 2, 3, 4]
            ids = [f["inbox_id"] for f in backlog]
            assert ids == sorted(ids)
            await wb.send(json.dumps({"op": "ack", "inbox_id": ids[1]}))
            await wb.send(json.dumps({"op": "ping"}))
            assert json.loads(await wb.recv())["op"] == "pong"
        async with websockets.connect(_ws(server)) as wb:  # resume from the acked cursor
            await wb.send(json.dumps({"op": "hello", "agent": "B", "token": b}))
            welcome = json.loads(await wb.recv())
            assert welcome["replay"] == 2

    run(main())


def test_history_and_tokens_survive_a_server_restart(server_factory):
    first = server_factory()
    a = register(first, "A", "keeps state")
    comm = _team(first, a, ["A"]).json()["comm_id"]
    httpx.post(f"{first.url}/send", headers=auth(a), json={"comm_id": comm, "sender": "A", "type": "discussion",
                                                           "content": "before restart"}).raise_for_status()
    first.stop()
    second = server_factory()
    record = _record(second, a, comm)
    assert [m["content"] for m in record][-1] == "before restart" and record[-1]["seq"] == 2
    sent = httpx.post(f"{second.url}/send", headers=auth(a), json={"comm_id": comm, "sender": "A",
                                                                   "type": "discussion", "content": "after"}).json()
    assert sent["seq"] == 3


def test_openapi_docs_and_live_page(server):
    assert httpx.get(f"{server.url}/docs").status_code == 200
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/register", "/retrieve_assistant", "/teamup", "/fetch_chat_record/{comm_id}"} <= set(paths)
    page = httpx.get(f"{server.url}/")
    script = httpx.get(f"{server.url}/live.js").text
    # a sign-in form; the token never goes into a URL (issue 22); scripts only from this origin
    assert 'id="login"' in page.text and "/live.js" in page.text and "/api/overview" in script
    assert "?token=" not in page.text + script and "script-src 'self'" in page.headers["content-security-policy"]


def test_live_feed_pushes_only_visible_chats(server):
    a, b = register(server, "A"), register(server, "B")
    register(server, "C")
    comm_ab = _team(server, a, ["B"]).json()["comm_id"]
    comm_bc = _team(server, b, ["C"]).json()["comm_id"]
    live = server.url.replace("http://", "ws://") + "/live"

    async def viewer(ws, token):  # the token goes in the first frame, not the URL (issue 22)
        await ws.send(json.dumps({"op": "hello", "token": token}))
        return json.loads(await asyncio.wait_for(ws.recv(), 5))

    async def main():
        async with websockets.connect(live) as viewer_a, websockets.connect(live) as admin:
            assert (await viewer(viewer_a, a))["viewer"] == "A" and (await viewer(admin, server.admin_token))["op"]
            await asyncio.sleep(0.2)
            for comm, token, sender in ((comm_bc, b, "B"), (comm_ab, a, "A")):
                httpx.post(f"{server.url}/send", headers=auth(token), json={
                    "comm_id": comm, "sender": sender, "type": "discussion", "content": f"hello {comm[:4]}"})
            seen_a = json.loads(await asyncio.wait_for(viewer_a.recv(), 5))
            assert seen_a["message"]["comm_id"] == comm_ab  # the B–C message was not shown to A
            seen_admin = [json.loads(await asyncio.wait_for(admin.recv(), 5)) for _ in range(2)]
            assert {m["message"]["comm_id"] for m in seen_admin} == {comm_ab, comm_bc}
        async with websockets.connect(live) as bad:
            with pytest.raises(websockets.ConnectionClosed):
                await viewer(bad, "bad")

    run(main())


def test_search_can_skip_offline_agents(server):
    a = register(server, "A")
    register(server, "OfflineCalc", "arithmetic calculator")
    b = register(server, "OnlineCalc", "arithmetic calculator")

    async def main():
        async with websockets.connect(_ws(server)) as ws:
            await _hello(ws, "OnlineCalc", b)
            body = {"capabilities": ["arithmetic"], "k": 5}
            everyone = httpx.post(f"{server.url}/retrieve_assistant", json=body, headers=auth(a)).json()
            online = httpx.post(f"{server.url}/retrieve_assistant", json=dict(body, online_only=True),
                                headers=auth(a)).json()
            assert [p["name"] for p in everyone] == ["OfflineCalc", "OnlineCalc"]
            assert [p["name"] for p in online] == ["OnlineCalc"]

    run(main())
