"""Fixtures: a real IoA server on 127.0.0.1 (random free port, temporary SQLite file), stopped after each test."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agents_kit.server.app import ServerConfig, ServerThread


def run(coro, timeout: float = 30.0):
    """Run a coroutine with a hard timeout (no test can hang)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def server_factory(tmp_path):
    """Start servers on demand (same db file across restarts); all are stopped at teardown."""
    started: list[ServerThread] = []

    def start(**options) -> ServerThread:
        config = ServerConfig(db=str(tmp_path / "server.db"), port=0, **options)
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
