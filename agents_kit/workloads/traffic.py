"""Load and fault workloads: many agents in group chats on a real server, counting lost/duplicated/reordered
messages against the server's own log (brief §8.5).

Truth: every message the server acknowledged with ``sent`` must be in the store exactly once, and every agent
must hand its application each message of each of its chats exactly once and in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import random
import socket
import sqlite3
import statistics
import time
import uuid
from collections import defaultdict
from pathlib import Path
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
    rate_per_agent: float = 0.0  # > 0: open loop, Poisson sends at this mean rate per agent (messages/s)
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
        self.discussion_deliveries = 0  # every member's copy, the sender's own included

    def handler(self, agent: str):
        def on_message(inbox_id: int, message: AgentMessage) -> None:
            now = time.time()
            self.received[agent].append((message.comm_id, message.seq, message.msg_id))
            if message.type is MessageType.DISCUSSION:
                self.discussion_deliveries += 1
                if message.sender != agent:
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
            # the harness teams its own agents up: they pre-consent to any team-up (no invite round trips)
            response = await http.post("/register", json={"name": name, "desc": desc, "accept_teams_from": ["*"]})
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


class Fleet:
    """``n_agents`` registered, connected and teamed up in groups of ``group_size`` on one server; reused by
    several load phases (setting up 1,000 agents costs seconds), audited once at the end."""

    def __init__(self, server: Any, spec: TrafficSpec, urls: list[str] | None = None):
        self.server, self.spec, self.rng = server, spec, random.Random(spec.seed)
        # several servers over one NATS backend: agent i starts on urls[i % len(urls)] and fails over to the next
        self.urls = list(urls or [server.url])
        tag = new_id()[:6]
        self.names = [f"load{tag}_{i:04d}" for i in range(spec.n_agents)]
        self.recorder = _Recorder()
        self.conns: dict[str, AgentConnection] = {}
        self.groups = [self.names[i:i + spec.group_size] for i in range(0, len(self.names), spec.group_size)]
        if len(self.groups) > 1 and len(self.groups[-1]) == 1:  # nobody to talk to: join the previous team
            last = self.groups.pop()
            self.groups[-1] += last
        self.group_of = {name: group for group in self.groups for name in group}
        self.membership: dict[str, list[str]] = defaultdict(list)
        self.comm_of: dict[str, str] = {}
        self.acked: set[str] = set()

    async def start(self) -> Fleet:
        tokens = await _register_all(self.server.url, self.names, ["load-test agent"] * len(self.names))
        k = len(self.urls)
        self.conns = {n: AgentConnection(",".join(self.urls[i % k:] + self.urls[:i % k]), AgentProfile(name=n),
                                         token=tokens[n], on_message=self.recorder.handler(n),
                                         reconnect_min_s=0.05, reconnect_max_s=1.0)
                      for i, n in enumerate(self.names)}
        await asyncio.gather(*(c.start(timeout=60) for c in self.conns.values()))
        for group in self.groups:
            response = await self.conns[group[0]].team_up(TeamUpRequest(agent_names=group[1:], goal="load test"))
            for member in group:
                self.membership[member].append(response.comm_id)
                self.comm_of[member] = response.comm_id
        return self

    def _message(self, name: str, i: int, sent_at: float | None = None) -> AgentMessage:
        fields = {"sent_at": sent_at} if sent_at is not None else {}
        return AgentMessage(comm_id=self.comm_of[name], sender=name, type=MessageType.DISCUSSION,
                            content=f"{i} {'x' * self.spec.payload_bytes}",
                            next_speaker=[self.rng.choice(self.group_of[name])], **fields)

    async def phase(self, messages_per_agent: int = 0, rate_per_agent: float = 0.0,
                    seconds: float = 0.0) -> dict[str, Any]:
        """One load phase; ``rate_per_agent`` > 0: open loop for ``seconds`` (default messages_per_agent /
        rate): Poisson sends at that mean rate per agent, not waiting for acknowledgements; latency counts from
        the *scheduled* send time, so a client falling behind is measured, not hidden. Otherwise closed loop:
        each agent sends ``messages_per_agent``, the next once ``sent`` came back.
        Deliveries count every member's copy, the sender's own included; latency only the other members'."""
        spec, loop = self.spec, asyncio.get_running_loop()
        recorder = self.recorder
        # one process plays every agent, so its heap is hundreds of clients' (the recorder keeps every delivery):
        # take that out of the collector's view first, or a full collection stalls all agents (~90 ms seen)
        gc.collect()
        gc.freeze()
        recorder.latency_ms, recorder.discussion_deliveries = [], 0
        expected = sent_messages = 0
        start_wall, start_mono = time.time(), loop.time()

        async def closed(name: str) -> None:
            nonlocal expected, sent_messages
            for i in range(messages_per_agent):
                sent = await self.conns[name].send(self._message(name, i), timeout=spec.timeout_s)
                self.acked.add(sent.msg_id)
                expected += len(self.group_of[name])
                sent_messages += 1
                if spec.send_interval_s:
                    await asyncio.sleep(spec.send_interval_s * (0.5 + self.rng.random()))

        async def paced(name: str) -> None:
            nonlocal expected, sent_messages
            due, i = start_mono + self.rng.expovariate(rate_per_agent), 0
            sends = []
            while due < end:
                i += 1
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                message = self._message(name, i, sent_at=start_wall + (due - start_mono))
                sends.append(loop.create_task(self.conns[name].send(message, timeout=spec.timeout_s)))
                due += self.rng.expovariate(rate_per_agent)
            for sent in await asyncio.gather(*sends):
                self.acked.add(sent.msg_id)
                expected += len(self.group_of[name])
                sent_messages += 1

        end = start_mono + (seconds or messages_per_agent / max(rate_per_agent, 1e-9))
        worker = paced if rate_per_agent > 0 else closed
        await asyncio.wait_for(asyncio.gather(*(worker(n) for n in self.names)), spec.timeout_s)
        sent_done = loop.time()
        deadline = time.time() + 30
        while recorder.discussion_deliveries < expected and time.time() < deadline:
            await asyncio.sleep(0.01)
        elapsed = max(recorder.last_receive - start_wall, 1e-6)
        lat = sorted(recorder.latency_ms) or [0.0]
        others = len(recorder.latency_ms)
        return {"messages": sent_messages, "deliveries": recorder.discussion_deliveries,
                "deliveries_per_s": recorder.discussion_deliveries / elapsed,
                "deliveries_to_others_per_s": others / elapsed,
                "offered_deliveries_per_s": rate_per_agent * sum(len(self.group_of[n]) for n in self.names),
                "latency_p50_ms": statistics.median(lat),
                "latency_p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
                "send_s": sent_done - start_mono, "phase_s": elapsed}

    async def finish(self) -> dict[str, Any]:
        """The audit over every phase (lost / duplicated / out of order / acknowledged but unstored)."""
        comm_ids = sorted({c for cs in self.membership.values() for c in cs})
        records = await _records(self.server.url, self.server.config.admin_token, comm_ids)
        expected = sum(len(records[c]) for cs in self.membership.values() for c in cs)
        deadline = time.time() + 30
        while sum(len(v) for v in self.recorder.received.values()) < expected and time.time() < deadline:
            await asyncio.sleep(0.05)
        result = audit(records, self.membership, self.recorder.received, self.acked)
        bodies = [len(m.model_dump_json()) for msgs in records.values() for m in msgs
                  if m.type is MessageType.DISCUSSION]
        result.update(reconnects=sum(c.stats["reconnects"] for c in self.conns.values()),
                      resent=sum(c.stats["resent"] for c in self.conns.values()),
                      duplicates_filtered=sum(c.stats["duplicates_dropped"] for c in self.conns.values()),
                      body_bytes=sum(bodies) / max(1, len(bodies)))
        return result

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns.values()))


async def run_traffic(server: Any, spec: TrafficSpec) -> dict[str, Any]:
    """Run one traffic spec against ``server`` (a :class:`~agents_kit.server.app.ServerProcess`)."""
    fleet = await Fleet(server, spec).start()
    rng, names, conns = fleet.rng, fleet.names, fleet.conns
    stop = asyncio.Event()

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
        load = await fleet.phase(spec.messages_per_agent, spec.rate_per_agent)
    finally:
        stop.set()
        if chaos_task is not None:
            chaos_task.cancel()
        await asyncio.gather(*[t for t in (chaos_task, kill_task) if t is not None], return_exceptions=True)
    result = await fleet.finish()
    result.update(load, server_rss_mb=server.rss_mb(), wall_s=time.time() - start,
                  deliveries=sum(len(v) for v in fleet.recorder.received.values()))  # team_up notices too
    await fleet.close()
    return result


async def load_sweep(server: Any, spec: TrafficSpec, offered: list[float], seconds: float,
                     saturation_messages: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]:
    """One fleet, several phases: a paced phase of ``seconds`` per offered deliveries/s (lowest first: the
    latency-vs-load curve), then optionally a closed-loop phase (every agent sends ``saturation_messages`` as
    fast as acknowledgements allow: the capacity). Returns (paced rows, saturation row, audit over all)."""
    fleet = await Fleet(server, spec).start()
    copies = sum(len(fleet.group_of[n]) for n in fleet.names)  # deliveries per message sent by every agent once
    try:
        # warm-up, not reported: the first phase on fresh connections paid one-off costs (p99 ×20 at the lowest load)
        await fleet.phase(rate_per_agent=min(offered) / copies, seconds=min(1.0, seconds))
        paced = [await fleet.phase(rate_per_agent=load / copies, seconds=seconds) for load in sorted(offered)]
        for row in paced:
            row["server_rss_mb"] = server.rss_mb()
        saturation = None
        if saturation_messages:
            saturation = await fleet.phase(saturation_messages)
            saturation["server_rss_mb"] = server.rss_mb()
        result = await fleet.finish()
    finally:
        await fleet.close()
    return paced, saturation, result


def knee(rows: list[dict[str, Any]], p99_limit_ms: float, keep_up: float = 0.95) -> float:
    """The highest offered load that the server kept up with (achieved ≥ ``keep_up`` × offered) within the p99
    limit, before the first load that broke either (0 when even the lowest did)."""
    best = 0.0
    for row in sorted(rows, key=lambda r: r["offered_deliveries_per_s"]):
        if row["latency_p99_ms"] > p99_limit_ms or row["deliveries_per_s"] < keep_up * row["offered_deliveries_per_s"]:
            break
        best = row["offered_deliveries_per_s"]
    return best


def prefill(db: str | Path, n_messages: int, n_chats: int = 2000, group_size: int = 5, payload_bytes: int = 64,
            seed: int = 0) -> None:
    """Write ``n_messages`` stored messages straight into a new server database (random msg_ids, round-robin
    chats), so storage costs can be measured at a realistic database size without sending them all."""
    from agents_kit.server.store import Store

    Store(db).close()  # the schema
    rng = random.Random(seed)
    chats = [(f"fill{c:05d}", [f"filler{c:05d}_{m}" for m in range(group_size)]) for c in range(n_chats)]
    seqs = [0] * n_chats
    template = AgentMessage(comm_id="c", sender="s", type=MessageType.DISCUSSION, content="x" * payload_bytes,
                            seq=1, server_ts=1.0).model_dump(mode="json")
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: random index inserts stay in memory
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO comms VALUES (?, 'fill', ?, NULL, 0, 'fill', 0)",
                         [(c, members[0]) for c, members in chats])
        conn.executemany("INSERT INTO members VALUES (?, ?)", [(c, m) for c, members in chats for m in members])
        rows = []
        for gseq in range(1, n_messages + 1):
            chat = rng.randrange(n_chats)
            seqs[chat] += 1
            comm, members = chats[chat]
            msg_id, sender = uuid.UUID(int=rng.getrandbits(128)).hex, rng.choice(members)
            body = json.dumps(template | {"msg_id": msg_id, "comm_id": comm, "sender": sender, "seq": seqs[chat]},
                              separators=(",", ":"))
            rows.append((gseq, comm, seqs[chat], sender, msg_id, body))
            if len(rows) == 50_000:
                conn.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", rows)
                rows = []
        conn.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def write_amplification(server: Any, spec: TrafficSpec, offered: float, seconds: float) -> dict[str, Any]:
    """Bytes the server process wrote per stored message (``/proc/<pid>/io``) during one paced phase, against
    payload × recipients (the stored message JSON times the members who receive it)."""
    fleet = await Fleet(server, spec).start()
    before, commits = server.io_bytes(), await _commit_stats(server)
    load = await fleet.phase(rate_per_agent=offered / sum(len(fleet.group_of[n]) for n in fleet.names),
                             seconds=seconds)
    after, commits_after = server.io_bytes(), await _commit_stats(server)
    result = await fleet.finish()
    await fleet.close()
    messages = max(1, load["messages"])
    payload = result["body_bytes"] * spec.group_size
    written = {key: (after.get(key, 0) - before.get(key, 0)) / messages for key in ("write_bytes", "wchar")}
    result.update(load, write_bytes_per_message=written["write_bytes"], wchar_per_message=written["wchar"],
                  payload_x_recipients_bytes=payload, write_amplification=written["write_bytes"] / payload,
                  server_rss_mb=server.rss_mb(), ops_per_commit=(commits_after[1] - commits[1]) /
                  max(1, commits_after[0] - commits[0]))
    return result


async def _commit_stats(server: Any) -> tuple[int, int]:
    """(commits, operations committed) of the server's writer so far (admin ``/health``)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        health = (await http.get("/health", headers={"Authorization": f"Bearer {server.config.admin_token}"})).json()
    return int(health.get("commits", 0)), int(health.get("committed_ops", 0))


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
        admin = {"Authorization": f"Bearer {server.config.admin_token}"}  # /health shows counts to the admin only
        dropped = (await http.get("/health", headers=admin)).json()["slow_consumer_drops"]
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


