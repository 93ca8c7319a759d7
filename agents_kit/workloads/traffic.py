"""Load and fault workloads: many agents in group chats on a real server, counting lost/duplicated/reordered
messages against the server's own log (brief §8.5).

Truth: every message the server acknowledged with ``sent`` must be in the store exactly once, and every agent
must hand its application each message of each of its chats exactly once and in seq order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import statistics
import time
from collections import defaultdict
from typing import Any

import httpx

from agents_kit.client.sdk import AgentConnection
from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, TeamUpRequest, new_id


@dataclasses.dataclass
class TrafficSpec:
    """One traffic run: ``n_agents`` in groups of ``group_size``, each agent sending ``messages_per_agent``."""

    n_agents: int = 50
    group_size: int = 4
    messages_per_agent: int = 10
    payload_bytes: int = 64
    send_interval_s: float = 0.0  # pacing between an agent's messages (fault runs: keep traffic flowing)
    chaos_fraction: float = 0.0  # share of connections dropped every chaos_interval_s
    chaos_interval_s: float = 0.3
    kill_server_after_s: float | None = None  # SIGKILL + restart the server once, this long into sending
    timeout_s: float = 120.0
    seed: int = 0


class _Recorder:
    def __init__(self) -> None:
        self.received: dict[str, list[tuple[str, int, str]]] = defaultdict(list)  # agent -> (comm, seq, msg_id)
        self.latency_ms: list[float] = []
        self.latency_by_agent: dict[str, list[float]] = defaultdict(list)
        self.last_receive = 0.0

    def handler(self, agent: str):
        def on_message(inbox_id: int, message: AgentMessage) -> None:
            now = time.time()
            self.received[agent].append((message.comm_id, message.seq, message.msg_id))
            if message.sender != agent and message.type is MessageType.DISCUSSION:
                self.latency_ms.append((now - message.sent_at) * 1000.0)
                self.latency_by_agent[agent].append(self.latency_ms[-1])
            self.last_receive = now
        return on_message


def audit(records: dict[str, list[AgentMessage]], membership: dict[str, list[str]],
          received: dict[str, list[tuple[str, int, str]]], acked: set[str]) -> dict[str, int]:
    """Lost / duplicated / out-of-order deliveries and acknowledged-but-unstored sends."""
    stored_ids = [m.msg_id for msgs in records.values() for m in msgs]
    lost = duplicated = out_of_order = 0
    for agent, comms in membership.items():
        got = received.get(agent, [])
        by_comm: dict[str, list[int]] = defaultdict(list)
        for comm, seq, _ in got:
            by_comm[comm].append(seq)
        for comm in comms:
            expected = {m.seq for m in records.get(comm, [])}
            seqs = by_comm.get(comm, [])
            duplicated += len(seqs) - len(set(seqs))
            lost += len(expected - set(seqs))
            out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    return {"lost": lost, "duplicated": duplicated, "out_of_order": out_of_order,
            "acked_not_stored": len(acked - set(stored_ids)), "stored_twice": len(stored_ids) - len(set(stored_ids))}


async def _register_all(url: str, names: list[str], descs: list[str]) -> dict[str, str]:
    tokens = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for name, desc in zip(names, descs):
            response = await http.post("/register", json={"name": name, "desc": desc})
            response.raise_for_status()
            tokens[name] = response.json()["token"]
    return tokens


async def _records(url: str, admin: str, comm_ids: list[str]) -> dict[str, list[AgentMessage]]:
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as http:
        out = {}
        for comm in comm_ids:
            response = await http.get(f"/fetch_chat_record/{comm}")
            response.raise_for_status()
            out[comm] = [AgentMessage(**m) for m in response.json()]
        return out


async def run_traffic(server: Any, spec: TrafficSpec) -> dict[str, Any]:
    """Run one traffic spec against ``server`` (a :class:`~agents_kit.server.app.ServerProcess`)."""
    rng = random.Random(spec.seed)
    run_tag = new_id()[:6]
    names = [f"load{run_tag}_{i:04d}" for i in range(spec.n_agents)]
    tokens = await _register_all(server.url, names, ["load-test agent"] * len(names))
    recorder = _Recorder()
    conns = {n: AgentConnection(server.url, AgentProfile(name=n), token=tokens[n], on_message=recorder.handler(n),
                                reconnect_min_s=0.05, reconnect_max_s=1.0) for n in names}
    await asyncio.gather(*(c.start(timeout=30) for c in conns.values()))
    groups = [names[i:i + spec.group_size] for i in range(0, len(names), spec.group_size)]
    membership: dict[str, list[str]] = defaultdict(list)
    comm_of: dict[str, str] = {}
    for group in groups:
        response = await conns[group[0]].team_up(TeamUpRequest(agent_names=group[1:], goal="load test"))
        for member in group:
            membership[member].append(response.comm_id)
            comm_of[member] = response.comm_id
    acked: set[str] = set()
    payload = "x" * spec.payload_bytes
    stop = asyncio.Event()

    async def sender(name: str) -> None:
        group = next(g for g in groups if name in g)
        for i in range(spec.messages_per_agent):
            message = AgentMessage(comm_id=comm_of[name], sender=name, type=MessageType.DISCUSSION,
                                   content=f"{i} {payload}", next_speaker=[rng.choice(group)])
            sent = await conns[name].send(message, timeout=spec.timeout_s)
            acked.add(sent.msg_id)
            if spec.send_interval_s:
                await asyncio.sleep(spec.send_interval_s * (0.5 + rng.random()))

    async def chaos() -> None:
        while not stop.is_set():
            await asyncio.sleep(spec.chaos_interval_s)
            for name in rng.sample(names, max(1, int(spec.chaos_fraction * len(names)))):
                await conns[name].drop_connection()

    async def killer() -> None:
        await asyncio.sleep(spec.kill_server_after_s or 0)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.start)

    loop = asyncio.get_running_loop()
    chaos_task = loop.create_task(chaos()) if spec.chaos_fraction > 0 else None
    kill_task = loop.create_task(killer()) if spec.kill_server_after_s is not None else None
    start = time.time()
    try:
        await asyncio.wait_for(asyncio.gather(*(sender(n) for n in names)), spec.timeout_s)
    finally:
        stop.set()
        if chaos_task is not None:
            chaos_task.cancel()
        await asyncio.gather(*[t for t in (chaos_task, kill_task) if t is not None], return_exceptions=True)
    comm_ids = sorted({c for cs in membership.values() for c in cs})
    records = await _records(server.url, server.config.admin_token, comm_ids)
    expected = sum(len(records[c]) for cs in membership.values() for c in cs)
    deadline = time.time() + 30
    while sum(len(v) for v in recorder.received.values()) < expected and time.time() < deadline:
        await asyncio.sleep(0.05)
    elapsed = max(recorder.last_receive - start, 1e-6)
    result = audit(records, membership, recorder.received, acked)
    discussion = sum(1 for msgs in records.values() for m in msgs if m.type is MessageType.DISCUSSION)
    lat = sorted(recorder.latency_ms) or [0.0]
    result.update(
        messages=discussion, deliveries=sum(len(v) for v in recorder.received.values()),
        deliveries_per_s=sum(len(v) for v in recorder.received.values()) / elapsed,
        latency_p50_ms=statistics.median(lat), latency_p99_ms=lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        reconnects=sum(c.stats["reconnects"] for c in conns.values()),
        resent=sum(c.stats["resent"] for c in conns.values()),
        duplicates_filtered=sum(c.stats["duplicates_dropped"] for c in conns.values()),
        server_rss_mb=server.rss_mb(), wall_s=time.time() - start)
    await asyncio.gather(*(c.close() for c in conns.values()))
    return result


async def offline_member(server: Any, n_messages: int = 50) -> dict[str, Any]:
    """A member is offline while the chat talks; the sender must stay connected, the member must get all later."""
    tag = new_id()[:6]
    a, b = f"online{tag}", f"offline{tag}"
    tokens = await _register_all(server.url, [a, b], ["sender", "late member"])
    recorder = _Recorder()
    sender = AgentConnection(server.url, AgentProfile(name=a), token=tokens[a], on_message=recorder.handler(a))
    await sender.start()
    comm = (await sender.team_up(TeamUpRequest(agent_names=[b]))).comm_id
    acked = set()
    for i in range(n_messages):
        acked.add((await sender.send(AgentMessage(comm_id=comm, sender=a, type=MessageType.DISCUSSION,
                                                  content=str(i), next_speaker=[b]))).msg_id)
    late = AgentConnection(server.url, AgentProfile(name=b), token=tokens[b], on_message=recorder.handler(b))
    await late.start()
    records = await _records(server.url, server.config.admin_token, [comm])
    deadline = time.time() + 20
    while len(recorder.received[b]) < len(records[comm]) and time.time() < deadline:
        await asyncio.sleep(0.02)
    result = audit(records, {a: [comm], b: [comm]}, recorder.received, acked)
    result["sender_disconnects"] = sender.stats["reconnects"]
    await sender.close()
    await late.close()
    return result


async def slow_consumer(server: Any, n_messages: int = 400, payload_bytes: int = 16_384) -> dict[str, Any]:
    """One member stops reading: its server queue overflows, it is dropped, others are unaffected, and it
    replays everything when it reads again. Needs a server with a small ``send_queue_limit``."""
    tag = new_id()[:6]
    names = [f"fast{tag}_{i}" for i in range(3)] + [f"slow{tag}"]
    tokens = await _register_all(server.url, names, ["member"] * 4)
    recorder = _Recorder()
    fast = {n: AgentConnection(server.url, AgentProfile(name=n), token=tokens[n], on_message=recorder.handler(n))
            for n in names[:3]}
    await asyncio.gather(*(c.start() for c in fast.values()))
    comm = (await fast[names[0]].team_up(TeamUpRequest(agent_names=names[1:]))).comm_id
    # the slow member: a hand-made WebSocket client with a tiny receive buffer that never reads
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((server.config.host, server.config.port))
    raw.sendall(_handshake(server.config.host, server.config.port))
    await asyncio.sleep(0.1)
    raw.sendall(_masked_text_frame(f'{{"op":"hello","agent":"{names[3]}","token":"{tokens[names[3]]}",'
                                   f'"resume_after":0}}'))
    acked = set()
    payload = "y" * payload_bytes
    for i in range(n_messages):
        sender = names[i % 3]
        acked.add((await fast[sender].send(AgentMessage(comm_id=comm, sender=sender, type=MessageType.DISCUSSION,
                                                        content=f"{i} {payload}", next_speaker=[names[3]]))).msg_id)
    records = await _records(server.url, server.config.admin_token, [comm])
    deadline = time.time() + 20
    while min(len(recorder.received[n]) for n in names[:3]) < len(records[comm]) and time.time() < deadline:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=server.url) as http:
        dropped = (await http.get("/health")).json()["slow_consumer_drops"]
    raw.close()  # the server stopped writing to it; closing lets the server release the socket
    late = AgentConnection(server.url, AgentProfile(name=names[3]), token=tokens[names[3]],
                           on_message=recorder.handler(names[3]))
    await late.start()
    deadline = time.time() + 30
    while len(recorder.received[names[3]]) < len(records[comm]) and time.time() < deadline:
        await asyncio.sleep(0.02)
    result = audit(records, {n: [comm] for n in names}, recorder.received, acked)
    lat = sorted(x for n in names[:3] for x in recorder.latency_by_agent[n]) or [0.0]
    result.update(slow_member_dropped=int(dropped > 0), others_latency_p99_ms=lat[min(len(lat) - 1, int(0.99 * len(lat)))])
    await asyncio.gather(*(c.close() for c in fast.values()), late.close())
    return result


def _handshake(host: str, port: int) -> bytes:
    import base64
    import os

    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _masked_text_frame(text: str) -> bytes:
    import os
    import struct

    data, mask = text.encode(), os.urandom(4)
    header = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else
                              bytes([0x80 | 126]) + struct.pack("!H", len(data)))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


