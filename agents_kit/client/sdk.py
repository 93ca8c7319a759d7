"""The agent's link to the server: REST calls + a WebSocket that reconnects, resumes and never loses a message.

Guarantees (tested under forced reconnects and a killed server): every message in the agent's inbox reaches
``on_message`` exactly once and in inbox order (dedup by inbox id and by per-chat seq); every ``send`` is
retried from an outbox until the server acknowledges it with ``sent`` — the same ``msg_id`` makes the retry
idempotent, so it is stored once. Reconnects back off exponentially with jitter (the original gave up after
three tries, brief §6 bug 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

from agents_kit.protocol import (
    AgentMessage,
    AgentProfile,
    ChatInfo,
    ProtocolError,
    SentFrame,
    TeamUpRequest,
    TeamUpResponse,
)
from shared.errors import PaperkitsError

Handler = Callable[[int, AgentMessage], Awaitable[None] | None]


class ServerRejected(PaperkitsError):
    """The server refused a request (bad token, not a member, unknown chat...); the message says why."""


class AgentConnection:
    """One agent's REST + WebSocket session with the IoA server."""

    def __init__(self, server_url: str, profile: AgentProfile, token: str | None = None,
                 on_message: Handler | None = None, reconnect_min_s: float = 0.05, reconnect_max_s: float = 5.0,
                 ack_every: int = 100, request_timeout_s: float = 30.0):
        self.server_url = server_url.rstrip("/")
        self.profile, self.token, self.on_message = profile, token, on_message
        self.reconnect_min_s, self.reconnect_max_s, self.ack_every = reconnect_min_s, reconnect_max_s, ack_every
        self.request_timeout_s = request_timeout_s
        self.last_inbox_id = 0
        self.last_seq: dict[str, int] = {}
        self.stats = {"received": 0, "duplicates_dropped": 0, "reconnects": 0, "resent": 0}
        self.errors: list[dict[str, Any]] = []
        self._outbox: dict[str, str] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._ws: Any = None
        self._connected = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task | None = None
        self._unacked = 0
        self._http = httpx.AsyncClient(base_url=self.server_url, timeout=request_timeout_s)

    # --- REST --------------------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, retries: int = 20, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        delay = 0.05
        for attempt in range(retries):
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:  # server restarting: retry with backoff
                if attempt == retries - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if response.status_code >= 400:
                detail = response.json().get("detail") if response.headers.get("content-type", "").startswith(
                    "application/json") else response.text
                raise ServerRejected(f"{method} {path} -> HTTP {response.status_code}: {detail}")
            return response.json()
        raise ServerRejected(f"{method} {path}: no answer")  # pragma: no cover

    async def register(self) -> str:
        """Register (or update) this agent; keeps and returns the token."""
        body = self.profile.model_dump(mode="json") | {"token": self.token}
        data = await self._request("POST", "/register", json=body)
        self.token = data["token"]
        return self.token

    async def search(self, capabilities: list[str], k: int = 3, online_only: bool = False) -> list[AgentProfile]:
        """Registry search (top-k per capability, union, dedup; this agent excluded)."""
        data = await self._request("POST", "/retrieve_assistant", json={"capabilities": capabilities, "k": k,
                                                                         "online_only": online_only})
        return [AgentProfile(**p) for p in data]

    async def team_up(self, request: TeamUpRequest) -> TeamUpResponse:
        """Create a group chat with this agent and ``request.agent_names``."""
        return TeamUpResponse(**await self._request("POST", "/teamup", json=request.model_dump(mode="json")))

    async def chat_record(self, comm_id: str) -> list[AgentMessage]:
        """Every message of a chat this agent belongs to, in seq order."""
        return [AgentMessage(**m) for m in await self._request("GET", f"/fetch_chat_record/{comm_id}")]

    async def chats(self) -> list[ChatInfo]:
        """The chats this agent belongs to."""
        return [ChatInfo(**c) for c in await self._request("GET", "/chats")]

    # --- WebSocket ---------------------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        """Register if needed, connect, and wait for the first welcome."""
        if self.token is None:
            await self.register()
        self._runner = asyncio.get_running_loop().create_task(self._run())
        waiter = asyncio.get_running_loop().create_task(self._connected.wait())
        done, _ = await asyncio.wait({waiter, self._runner}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._runner in done and self._runner.exception() is not None:
                raise self._runner.exception()
            raise ServerRejected(f"could not connect to {self.server_url}/ws within {timeout} s")

    async def close(self) -> None:
        """Acknowledge what was processed, close the socket and stop reconnecting."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(json.dumps({"op": "ack", "inbox_id": self.last_inbox_id}))
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        await self._http.aclose()

    async def drop_connection(self) -> None:
        """Close the socket abruptly (fault injection); the session reconnects and resumes by itself."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close(code=4999)

    @property
    def connected(self) -> bool:
        """True while a socket is open and welcomed."""
        return self._connected.is_set()

    async def send(self, message: AgentMessage, timeout: float = 60.0) -> SentFrame:
        """Send and wait for the server's ``sent`` (retried across reconnects; idempotent by ``msg_id``)."""
        if message.sender != self.profile.name:
            message = message.model_copy(update={"sender": self.profile.name})
        frame = json.dumps({"op": "send", "message": message.model_dump(mode="json")})
        future = self._pending.get(message.msg_id)
        if future is None:
            future = self._pending[message.msg_id] = asyncio.get_running_loop().create_future()
        self._outbox[message.msg_id] = frame
        if self._ws is not None and self._connected.is_set():
            with contextlib.suppress(Exception):
                await self._ws.send(frame)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            if future.done():
                self._pending.pop(message.msg_id, None)

    async def _run(self) -> None:
        url = self.server_url.replace("http://", "ws://").replace("https://", "wss://") + "/ws"
        backoff = self.reconnect_min_s
        while not self._closing:
            try:
                async with websockets.connect(url, max_size=None, ping_interval=20, ping_timeout=60,
                                              open_timeout=10) as ws:
                    await ws.send(json.dumps({"op": "hello", "agent": self.profile.name, "token": self.token,
                                              "resume_after": self.last_inbox_id}))
                    welcome = json.loads(await ws.recv())
                    if welcome.get("op") != "welcome":
                        raise ServerRejected(f"server refused the connection: {welcome.get('detail', welcome)}")
                    self._ws = ws
                    self._connected.set()
                    backoff = self.reconnect_min_s
                    for frame in list(self._outbox.values()):  # resend everything not yet acknowledged
                        self.stats["resent"] += 1
                        await ws.send(frame)
                    async for raw in ws:
                        await self._handle(json.loads(raw))
            except ServerRejected:
                raise
            except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, asyncio.TimeoutError,
                    json.JSONDecodeError):
                pass
            finally:
                self._ws = None
                self._connected.clear()
            if self._closing:
                break
            self.stats["reconnects"] += 1
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, self.reconnect_max_s)

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "deliver":
            inbox_id = int(frame["inbox_id"])
            message = AgentMessage(**frame["message"])
            if inbox_id <= self.last_inbox_id or message.seq <= self.last_seq.get(message.comm_id, 0):
                self.stats["duplicates_dropped"] += 1
                return
            self.last_inbox_id = inbox_id
            self.last_seq[message.comm_id] = message.seq
            self.stats["received"] += 1
            if self.on_message is not None:
                result = self.on_message(inbox_id, message)
                if asyncio.iscoroutine(result):
                    await result
            self._unacked += 1
            if self._unacked >= self.ack_every and self._ws is not None:
                self._unacked = 0
                await self._ws.send(json.dumps({"op": "ack", "inbox_id": self.last_inbox_id}))
        elif op == "sent":
            self._outbox.pop(frame["msg_id"], None)
            future = self._pending.get(frame["msg_id"])
            if future is not None and not future.done():
                future.set_result(SentFrame(**frame))
        elif op == "error":
            msg_id = frame.get("msg_id")
            self.errors.append(frame | {"at": time.time()})
            if msg_id:
                self._outbox.pop(msg_id, None)
                future = self._pending.get(msg_id)
                if future is not None and not future.done():
                    future.set_exception(ProtocolError(frame["code"], frame["detail"], msg_id))
