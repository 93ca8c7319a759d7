"""Client durability under ``kill -9``: a receiving agent's *client process* is killed mid-stream and restarted.

Feeder agents (in this process) keep sending into their chats with one receiver; the receiver runs
``python -m agents_kit.workloads.client_faults`` (a real client process, :class:`AgentConnection` with a state
file) and is SIGKILLed ``kills`` times at random moments while messages keep arriving, then runs once more to
drain its inbox. Its handler writes a line to a log when it starts on a message (a side effect outside the
commit) and returns ``{comm_id, seq}``, which the client commits with the handled mark.

Audit against the server's chat records (every message stored in the receiver's chats):

* ``lost`` — messages with no handled record; ``handled_twice`` — messages with more than one;
  ``out_of_order`` — a chat's records not in seq order. The handled records are the committed results in the
  state file (``durable_state``); with the state in memory (``memory_state``, the negative control: what a
  client without a durable cursor does) nothing committed survives a kill, so its records are the handler log.
* ``handler_reruns`` — messages the handler started more than once (the log): a handler killed before its
  commit runs again, so a durable client may show up to one per kill; side effects outside the returned
  result must be idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from agents_kit.client.sdk import AgentConnection
from agents_kit.client.state import ClientState, read_handled
from agents_kit.protocol import AgentMessage, AgentProfile, MessageType, TeamUpRequest, new_id

ARMS = ("durable_state", "memory_state")


@dataclasses.dataclass
class ClientFaultSpec:
    """One run: ``feeders`` chats into one receiver whose client is killed ``kills`` times mid-stream."""

    kills: int = 5
    feeders: int = 2
    send_interval_s: float = 0.01  # per feeder: messages keep arriving through every kill
    up_s: tuple[float, float] = (0.15, 0.5)  # the client runs a uniform random time in this range, then dies
    down_s: float = 0.05  # dead this long before the restart (messages pile up in its inbox)
    handler_work_s: float = 0.002  # the handler's own work, so kills also land inside it
    durable: bool = True  # False: the negative control (state in memory)
    ack_every: int = 100
    drain_timeout_s: float = 60.0
    seed: int = 0


# --- the client process --------------------------------------------------------------------------------------
async def _client_main(config: dict[str, Any]) -> None:
    log_fd = os.open(config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    work_s = float(config["handler_work_s"])

    async def on_message(inbox_id: int, message: AgentMessage) -> dict[str, Any]:
        os.write(log_fd, f"{message.comm_id} {message.seq}\n".encode())  # unbuffered: survives kill -9
        if work_s:
            await asyncio.sleep(work_s)
        return {"comm_id": message.comm_id, "seq": message.seq}

    # every handled record is kept (no pruning) so the audit can read all of them back
    state = ClientState(config["state"], keep_ids=10**9)
    conn = AgentConnection(config["url"], AgentProfile(name=config["agent"]), token=config["token"],
                           on_message=on_message, state=state, ack_every=int(config["ack_every"]),
                           reconnect_min_s=0.02, reconnect_max_s=0.2)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await conn.start(timeout=30)
    sys.stdout.write(f"ready {conn.state.cursor}\n")
    sys.stdout.flush()
    await stop.wait()
    await conn.close()
    state.close()
    os.close(log_fd)


class _ClientProcess:
    def __init__(self, config: dict[str, Any]):
        self.config, self.proc = config, None

    async def start(self, timeout: float = 60.0) -> int:
        """Spawn and wait for ``ready``; returns the cursor the client resumed from."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agents_kit.workloads.client_faults", json.dumps(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line.startswith(b"ready"):
            err = (await self.proc.stderr.read()).decode()[-2000:]
            raise RuntimeError(f"client process did not start: {err}")
        return int(line.split()[1])

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                await self.kill()


# --- the run -------------------------------------------------------------------------------------------------
def _audit(expected: set[tuple[str, int]], records: list[tuple[str, int]], started: list[tuple[str, int]]
           ) -> dict[str, int]:
    counts = Counter(records)
    by_comm: dict[str, list[int]] = defaultdict(list)
    for comm, seq in records:
        by_comm[comm].append(seq)
    return {"lost": len(expected - set(counts)), "handled_twice": sum(1 for c in counts.values() if c > 1),
            "out_of_order": sum(1 for seqs in by_comm.values() for a, b in zip(seqs, seqs[1:]) if b <= a),
            "handler_reruns": sum(1 for c in Counter(started).values() if c > 1),
            "unexpected": len(set(counts) - expected)}


async def run_client_faults(url: str, admin_token: str, work: str | Path, spec: ClientFaultSpec) -> dict[str, Any]:
    """Run ``spec`` against a running server; returns the audit, kill counts and sizes (see the module doc)."""
    import httpx

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    tag = new_id()[:6]
    receiver, feeders = f"durable{tag}", [f"feeder{tag}_{i}" for i in range(spec.feeders)]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        tokens = {}
        for name in [receiver, *feeders]:
            # the receiver consents to the feeders' team-ups up front: it is offline when they form
            consent = {"accept_teams_from": feeders} if name == receiver else {}
            response = await http.post("/register", json={"name": name, "desc": "client fault workload", **consent})
            response.raise_for_status()
            tokens[name] = response.json()["token"]
    state = str(work / f"{receiver}.state.sqlite") if spec.durable else None
    log_path = work / f"{receiver}.handler.log"
    client = _ClientProcess({"url": url, "agent": receiver, "token": tokens[receiver], "state": state,
                             "log": str(log_path), "handler_work_s": spec.handler_work_s,
                             "ack_every": spec.ack_every})
    conns = {n: AgentConnection(url, AgentProfile(name=n), token=tokens[n]) for n in feeders}
    await asyncio.gather(*(c.start(timeout=30) for c in conns.values()))
    comms = {n: (await conns[n].team_up(TeamUpRequest(agent_names=[receiver], goal="client faults"))).comm_id
             for n in feeders}
    sending = asyncio.Event()
    sending.set()
    sent = 0

    async def feeder(name: str) -> None:
        nonlocal sent
        i = 0
        while sending.is_set():
            await conns[name].send(AgentMessage(comm_id=comms[name], sender=name, type=MessageType.DISCUSSION,
                                                content=f"{i}"))
            sent, i = sent + 1, i + 1
            await asyncio.sleep(spec.send_interval_s * (0.5 + rng.random()))

    start = time.time()
    feeding = [asyncio.get_running_loop().create_task(feeder(n)) for n in feeders]
    kills_mid_stream, resumed_from = 0, []
    try:
        for _ in range(spec.kills):
            resumed_from.append(await client.start())
            await asyncio.sleep(rng.uniform(*spec.up_s))
            before = sent
            await client.kill()
            await asyncio.sleep(spec.down_s)
            # mid-stream: messages kept arriving around the kill (the feeders were still sending after it)
            kills_mid_stream += sent > before and not any(t.done() for t in feeding)
        resumed_from.append(await client.start())
        await asyncio.sleep(rng.uniform(*spec.up_s))
    except BaseException:
        await client.stop()
        raise
    finally:
        sending.clear()
        failed = [e for e in await asyncio.gather(*feeding, return_exceptions=True) if isinstance(e, Exception)]
    if failed:  # a feeder that stopped early would make a quiet run look clean
        await client.stop()
        raise RuntimeError(f"a feeder failed: {failed[0]!r}") from failed[0]
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        expected: set[tuple[str, int]] = set()
        for comm in comms.values():
            response = await http.get(f"/fetch_chat_record/{comm}")
            response.raise_for_status()
            expected |= {(comm, m["seq"]) for m in response.json()}

    def records() -> list[tuple[str, int]]:
        if spec.durable:
            return [(r["result"]["comm_id"], r["result"]["seq"]) for r in read_handled(state)]
        return _log(log_path)

    deadline = time.time() + spec.drain_timeout_s
    while len(set(records()) & expected) < len(expected) and time.time() < deadline:
        await asyncio.sleep(0.05)
    await client.stop()
    elapsed = time.time() - start
    for conn in conns.values():
        await conn.close()
    result = _audit(expected, records(), _log(log_path))
    result.update(messages=len(expected), kills=spec.kills, kills_mid_stream=kills_mid_stream,
                  restarts=len(resumed_from), resumed_from_nonzero=sum(1 for c in resumed_from if c > 0),
                  seconds=elapsed)
    return result


def _log(path: Path) -> list[tuple[str, int]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:  # a line cut by the kill mid-write is no record
            out.append((parts[0], int(parts[1])))
    return out


def client_faults(spec: ClientFaultSpec, work: str | Path | None = None) -> dict[str, Any]:
    """Start a server process on loopback (temporary database), run ``spec`` against it, stop it."""
    from agents_kit.server.app import ServerConfig, ServerProcess

    with tempfile.TemporaryDirectory(prefix="ioa-client-faults-") as tmp:
        folder = Path(work) if work is not None else Path(tmp)
        with ServerProcess(ServerConfig(db=str(folder / "server.db"), port=0)) as server:
            return asyncio.run(run_client_faults(server.url, server.config.admin_token, folder / "client", spec))


# --- the benchmark's rows --------------------------------------------------------------------------------
BENCH_SPEC = ClientFaultSpec(kills=5, feeders=4, send_interval_s=0.01, up_s=(0.3, 1.2), down_s=0.2)


def bench_rows(seeds: list[int], spec: ClientFaultSpec = BENCH_SPEC, rows_store: Any = None) -> list[dict[str, Any]]:
    """Rows ``part="client_faults"``, one per (arm, seed): the durable client and the in-memory control."""
    rows = []
    for seed in seeds:
        for arm in ARMS:
            cached = rows_store.get(part="client_faults", arm=arm, seed=seed) if rows_store is not None else None
            if cached is not None:
                rows.append(cached)
                continue
            result = client_faults(dataclasses.replace(spec, durable=arm == "durable_state", seed=seed))
            row = {"part": "client_faults", "arm": arm, "seed": seed, **{k: float(v) for k, v in result.items()}}
            rows.append(rows_store.add(row, part="client_faults", arm=arm, seed=seed) if rows_store is not None
                        else row)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One descriptive sentence on the client kill runs (numbers only; the guarantee is 0 lost / 0 twice)."""
    durable = [r for r in rows if r.get("part") == "client_faults" and r["arm"] == "durable_state"]
    memory = [r for r in rows if r.get("part") == "client_faults" and r["arm"] == "memory_state"]
    if not durable:
        return ""

    def total(group: list[dict[str, Any]], key: str) -> int:
        return int(sum(r[key] for r in group))

    seeds = f"{len(durable)} seed{'s' if len(durable) != 1 else ''}"
    text = (f"A client process SIGKILLed {total(durable, 'kills')} times mid-stream ({seeds}, "
            f"{total(durable, 'messages')} messages) with its state file lost {total(durable, 'lost')} messages and "
            f"handled {total(durable, 'handled_twice')} twice ({total(durable, 'handler_reruns')} handler runs cut "
            f"by a kill were redone)")
    if memory:
        text += (f"; with the cursor in memory the same kills lost {total(memory, 'lost')} and handled "
                 f"{total(memory, 'handled_twice')} twice")
    return text + "."


if __name__ == "__main__":  # the client process: `python -m agents_kit.workloads.client_faults '<config JSON>'`
    asyncio.run(_client_main(json.loads(sys.argv[1])))
