"""Several IoA server processes over one NATS JetStream server (issue 19): load and faults.

* :func:`multi_node_load` — a fleet spread over ``n_servers`` processes (agent i starts on server i mod n),
  paced at an offered load, then closed loop: deliveries/s and p99 beside the SQLite backend's one process.
* :func:`multi_node_faults` — while every agent keeps sending: ``kill -9`` of one server process (its agents
  reconnect to the next server and resume from their cursor), and/or ``kill -9`` of nats-server itself,
  restarted on the same file store after ``nats_down_s``. The audit is :func:`traffic.audit` (lost / duplicated /
  out of order / acknowledged but not stored), read back from a surviving server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from agents_kit.server.app import ServerConfig, ServerProcess, ServerThread
from agents_kit.server.nats_server import NatsServer
from agents_kit.workloads.traffic import Fleet, TrafficSpec


@dataclasses.dataclass
class FaultPlan:
    """What happens during a fault run (seconds after sending starts; None: not at all)."""

    kill_server_after_s: float | None = 0.3  # SIGKILL the last server process (not restarted)
    kill_nats_after_s: float | None = None  # SIGKILL nats-server, restart it after nats_down_s
    nats_down_s: float = 0.3


class Cluster:
    """One ``nats-server -js`` (file storage under ``work``) and ``n_servers`` IoA servers on it, sharing one
    namespace and one admin token; a context manager that stops everything. The last ``processes`` servers
    (default: all) run as processes (SIGKILL-able, measured apart), the others in this process (threads: the
    test suite's survivors, which start in a fraction of a process's time)."""

    def __init__(self, n_servers: int, work: str | Path, namespace: str = "bench", processes: int | None = None,
                 **config: Any):
        self.work = Path(work)
        self.nats = NatsServer(self.work / "nats")
        admin = secrets.token_urlsafe(18)
        processes = n_servers if processes is None else max(0, min(n_servers, processes))
        configs = [ServerConfig(db=str(self.work / f"unused{i}.db"), port=0, backend=self.nats.url,
                                nats_namespace=namespace, nats_replica_dir=str(self.work / "replicas"),
                                admin_token=admin, **config) for i in range(n_servers)]
        self._configs, self._threads = configs, n_servers - processes
        self.servers: list[Any] = []

    def start(self) -> Cluster:
        self.nats.start()
        try:  # in parallel: a process start is mostly Python imports (a thread's app connects at construction)
            self.servers = [ServerThread(c) if i < self._threads else ServerProcess(c)
                            for i, c in enumerate(self._configs)]
            with concurrent.futures.ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(lambda server: server.start(timeout=60.0), self.servers))
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        self.nats.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def multi_node_load(servers: list[Any], spec: TrafficSpec, offered: float, seconds: float,
                          saturation_messages: int = 0) -> tuple[dict[str, Any], dict[str, Any] | None, dict]:
    """A fleet over ``servers`` (registered through the first): one paced phase at ``offered`` deliveries/s
    after a short warm-up, then optionally closed loop; returns (paced row, saturation row, audit)."""
    fleet = await Fleet(servers[0], spec, urls=[s.url for s in servers]).start()
    copies = sum(len(fleet.group_of[n]) for n in fleet.names)
    try:
        await fleet.phase(rate_per_agent=offered / copies, seconds=min(1.0, seconds))
        paced = await fleet.phase(rate_per_agent=offered / copies, seconds=seconds)
        saturation = await fleet.phase(saturation_messages) if saturation_messages else None
        audit = await fleet.finish()
    finally:
        await fleet.close()
    return paced, saturation, audit


async def multi_node_faults(cluster: Cluster, spec: TrafficSpec, plan: FaultPlan) -> dict[str, Any]:
    """Every agent sends ``spec.messages_per_agent`` (closed loop, paced by ``spec.send_interval_s``) while the
    faults of ``plan`` happen; the audit of what every member received against the stored chat records."""
    servers = cluster.servers
    fleet = await Fleet(servers[0], spec, urls=[s.url for s in servers]).start()
    events: list[tuple[str, float]] = []

    async def faults() -> None:
        start = time.monotonic()
        steps = sorted((t, what) for what, t in (("server", plan.kill_server_after_s),
                                                 ("nats", plan.kill_nats_after_s)) if t is not None)
        for at, what in steps:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            if what == "server":
                await asyncio.to_thread(servers[-1].kill)
            else:
                await asyncio.to_thread(cluster.nats.kill)
                await asyncio.sleep(plan.nats_down_s)
                await asyncio.to_thread(cluster.nats.start)
            events.append((what, time.monotonic() - start))

    task = asyncio.get_running_loop().create_task(faults())
    try:
        load = await fleet.phase(spec.messages_per_agent)
        await task
        result = await fleet.finish()
    finally:
        task.cancel()
        await fleet.close()
    result.update({k: load[k] for k in ("messages", "deliveries_per_s", "latency_p99_ms", "send_s")},
                  server_kills=float(sum(1 for w, _ in events if w == "server")),
                  nats_restarts=float(sum(1 for w, _ in events if w == "nats")))
    return result


def run_faults(plan: FaultPlan, spec: TrafficSpec | None = None, n_servers: int = 3,
               work: str | Path | None = None, processes: int | None = None) -> dict[str, Any]:
    """:func:`multi_node_faults` on a fresh :class:`Cluster` (a temporary folder unless ``work``); the server
    killed is the last one, always a process."""
    spec = spec or TrafficSpec(n_agents=12, group_size=3, messages_per_agent=30, send_interval_s=0.02,
                               timeout_s=120)
    with tempfile.TemporaryDirectory(prefix="ioa-multinode-") as tmp, \
            Cluster(n_servers, work or tmp, processes=max(1, processes or n_servers)) as cluster:
        return asyncio.run(multi_node_faults(cluster, spec, plan))
