"""The agent's link to the server: REST calls + a WebSocket that reconnects, resumes and never loses a message.

Guarantees (tested under forced reconnects and a killed server): every message in the agent's inbox reaches
``on_message`` exactly once and in inbox order (dedup by inbox id and by per-chat seq); every ``send`` is
retried from an outbox until the server acknowledges it with ``sent`` — the same ``msg_id`` makes the retry
idempotent, so it is stored once. Reconnects back off exponentially with jitter (the original gave up after
three tries, brief §6 bug 2).

Across process restarts (``kill -9`` included) the client resumes from its own record of what it handled,
:class:`~agents_kit.client.state.ClientState` (``state=``: a SQLite file path, or None for memory): a
message is marked handled, with the handler's return value, in one transaction, and a redelivered message is
handed to ``on_message`` at most once (by inbox id, per-chat seq and ``(sender, msg_id)``). A handler killed
before it returns runs again after the restart: make side effects outside the returned result idempotent.
With ``complete="manual"`` the handler only accepts a message and the application calls
:meth:`AgentConnection.complete` when it is done (messages of several chats may finish out of order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from agents_kit.client.state import ClientState
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

Handler = Callable[[int, AgentMessage], Awaitable[Any] | Any]  # a non-None return is stored as the result
_TLS_CONTEXT: Any = None


def _tls_context() -> Any:
    """One TLS context per process: httpx loads the CA bundle for every client otherwise (~30 ms of CPU each,
    30 s for a 1,000-agent load run)."""
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = httpx.create_ssl_context()
    return _TLS_CONTEXT


class ServerRejected(PaperkitsError):
    """The server refused a request (bad token, not a member, unknown chat...); the message says why."""


class AgentConnection:
    """One agent's REST + WebSocket session with the IoA server.

    ``state``: where the handled cursor is kept — a :class:`ClientState`, a file path (durable across restarts;
    ``agents_kit.client.state.default_state_path`` gives the agent's cache folder), or None / ``":memory:"``
    (lost with the process). ``complete``: ``"on_return"`` (a message is handled when ``on_message`` returns)
    or ``"manual"`` (when the application calls :meth:`complete`).

    Consent (issue 22; closed by default, settable as attributes before :meth:`start`). ``accept_invites``:
    how this client answers the team-up invites the server pushes: False (the default: decline every one at
    once — a declined invitee lets the initiator's chat start without it, where an unanswered one would hold it
    for the server's ``invite_ttl_s``), True (accept all), a collection of initiator names, a predicate taking
    the invite frame, or None (answer none: the application uses :meth:`invites` / :meth:`answer_invite`).
    ``accept_teams_from``: declared at registration, the agents whose team-ups add this one without an invite
    (``["*"]``: anyone; works while offline). ``registration_key``: for servers that need one.
    """

    def __init__(self, server_url: str, profile: AgentProfile, token: str | None = None,
                 on_message: Handler | None = None, reconnect_min_s: float = 0.05, reconnect_max_s: float = 5.0,
                 ack_every: int = 100, request_timeout_s: float = 30.0,
                 state: ClientState | str | Path | None = None, complete: str = "on_return", *,
                 accept_invites: Any = False, accept_teams_from: list[str] | None = None,
                 registration_key: str | None = None):
        if complete not in ("on_return", "manual"):
            raise ValueError(f"complete must be 'on_return' or 'manual', got {complete!r}")
        # several servers over one NATS backend (issue 19): "http://a:7788,http://b:7788" — a dropped connection or
        # a refused request moves on to the next one (behind a load balancer, give its one address)
        self.server_urls = [u.strip().rstrip("/") for u in str(server_url).split(",") if u.strip()]
        if not self.server_urls:
            raise ValueError(f"server_url {server_url!r} names no server")
        self.server_url = self.server_urls[0]
        self.profile, self.token, self.on_message = profile, token, on_message
        self.reconnect_min_s, self.reconnect_max_s, self.ack_every = reconnect_min_s, reconnect_max_s, ack_every
        self.request_timeout_s = request_timeout_s
        self.accept_invites, self.accept_teams_from = accept_invites, accept_teams_from
        self.registration_key = registration_key
        self._owns_state = not isinstance(state, ClientState)
        # a state file is opened by start(), so building a connection touches no disk
        self._state_path = None if not self._owns_state or state is None or str(state) == ":memory:" else state
        self.state = state if isinstance(state, ClientState) else ClientState()
        self.complete_mode = complete
        # highest inbox id delivered in this process: where a reconnect resumes (0: the server's acked cursor)
        self.last_inbox_id = self.state.cursor
        self.last_seq: dict[str, int] = {}
        # delivered but not yet complete, in inbox order (value None once done): the cursor passes done ids only
        self._inflight: dict[int, AgentMessage | None] = {}
        self._background: set[asyncio.Task] = set()
        self.stats = {"received": 0, "duplicates_dropped": 0, "reconnects": 0, "resent": 0}
        self.errors: list[dict[str, Any]] = []
        self._outbox: dict[str, str] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._ws: Any = None
        self._connected = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task | None = None
        self._unacked = 0
        self._http = httpx.AsyncClient(base_url=self.server_url, timeout=request_timeout_s, verify=_tls_context())

    # --- REST --------------------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, retries: int = 20, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        delay = 0.05
        for attempt in range(retries):
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:  # server restarting: retry with backoff (on the next server, if several)
                if attempt == retries - 1:
                    raise
                self._next_server()
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
        body |= {k: v for k, v in (("accept_teams_from", self.accept_teams_from),
                                   ("registration_key", self.registration_key)) if v is not None}
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

    async def invites(self) -> list[dict[str, Any]]:
        """Open team-up invites to this agent (``invite`` frames: comm_id, initiator, goal, members...)."""
        return await self._request("GET", "/invites")

    async def answer_invite(self, comm_id: str, accept: bool) -> None:
        """Accept or decline the invite to chat ``comm_id`` (its messages reach this agent only if accepted)."""
        await self._request("POST", f"/invites/{comm_id}", json={"accept": accept})

    def _wants(self, invite: dict[str, Any]) -> bool:
        rule = self.accept_invites
        if isinstance(rule, bool):
            return rule
        return bool(rule(invite)) if callable(rule) else invite.get("initiator") in rule

    # --- WebSocket ---------------------------------------------------------------------------------------
    async def start(self, timeout: float = 10.0) -> None:
        """Open the state file, register if needed, connect, and wait for the first welcome."""
        if self._state_path is not None and not self.state.durable:  # a corrupt file fails before registering
            self.state = ClientState(self._state_path)
            self.last_inbox_id = self.state.cursor
        if self.token is None:
            await self.register()
        if self.state.bind(self.profile.name, self.token):  # a new registration: its inbox ids start over
            self.last_inbox_id, self.last_seq, self._inflight = 0, {}, {}
        self._runner = asyncio.get_running_loop().create_task(self._run())
        waiter = asyncio.get_running_loop().create_task(self._connected.wait())
        done, _ = await asyncio.wait({waiter, self._runner}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            if self._runner in done and self._runner.exception() is not None:
                raise self._runner.exception()
            raise ServerRejected(f"could not connect to {self.server_url}/ws within {timeout} s")

    async def close(self) -> None:
        """Acknowledge what was handled (not merely delivered), close the socket and stop reconnecting."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(json.dumps({"op": "ack", "inbox_id": self.state.cursor}))
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        for task in self._background:
            task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        await self._http.aclose()
        if self._owns_state:
            self.state.close()

    def complete(self, inbox_id: int, result: Any = None) -> None:
        """Mark a delivered message handled, with ``result`` (JSON-serialisable) kept beside it, atomically.

        Called for you when ``on_message`` returns (``complete="on_return"``); with ``complete="manual"`` call
        it when the message's work is done. The cursor moves past a message only once every earlier one is done.
        """
        message = self._inflight.get(inbox_id)
        if message is None:
            raise ValueError(f"inbox entry {inbox_id} is not awaiting completion (never delivered, or done already)")
        if result is not None:  # checked before anything changes, so a bad result leaves the entry pending
            try:
                json.dumps(result)
            except (TypeError, ValueError) as err:
                raise TypeError(f"the result for inbox entry {inbox_id} is not JSON-serialisable ({err}); return "
                                "None or JSON data from on_message") from err
        self._inflight[inbox_id] = None
        self._advance((message.sender, message.msg_id, inbox_id, message.comm_id, message.seq), result)

    def _advance(self, handled: tuple[str, str, int, str, int | None] | None = None, result: Any = None) -> None:
        cursor = self.state.cursor
        while self._inflight:
            first = next(iter(self._inflight))
            if self._inflight[first] is not None:
                break
            del self._inflight[first]
            cursor = first
        if handled is None and cursor == self.state.cursor:
            return
        self.state.commit(cursor, handled, result)
        self._unacked += handled is not None
        if self._unacked >= self.ack_every and self._ws is not None:
            self._unacked = 0
            task = asyncio.get_running_loop().create_task(self._send_ack(self._ws, self.state.cursor))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _send_ack(self, ws: Any, inbox_id: int) -> None:
        with contextlib.suppress(Exception):  # a lost ack only means a fresh start replays a little more
            await ws.send(json.dumps({"op": "ack", "inbox_id": inbox_id}))

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

    def _next_server(self) -> None:
        """Move on to the next of several server URLs (no-op with one)."""
        if len(self.server_urls) > 1:
            self.server_url = self.server_urls[(self.server_urls.index(self.server_url) + 1) % len(self.server_urls)]
            self._http.base_url = self.server_url

    async def _run(self) -> None:
        backoff = self.reconnect_min_s
        while not self._closing:
            url = self.server_url.replace("http://", "ws://").replace("https://", "wss://") + "/ws"
            try:
                async with websockets.connect(url, max_size=None, ping_interval=20, ping_timeout=60,
                                              open_timeout=10) as ws:
                    # nothing delivered or handled yet (fresh state): resume after the server's acked cursor,
                    # not from 0, which replayed the whole inbox to a restarted client
                    await ws.send(json.dumps({"op": "hello", "agent": self.profile.name, "token": self.token,
                                              "resume_after": self.last_inbox_id or None}))
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
            self._next_server()
            self.stats["reconnects"] += 1
            await asyncio.sleep(backoff * (1 + random.random()))
            backoff = min(backoff * 2, self.reconnect_max_s)

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "deliver":
            inbox_id = int(frame["inbox_id"])
            message = AgentMessage(**frame["message"])
            if inbox_id <= self.state.cursor or inbox_id in self._inflight:  # this very entry again
                self.stats["duplicates_dropped"] += 1
                return
            self.last_inbox_id = max(self.last_inbox_id, inbox_id)
            if (message.seq <= self.last_seq.get(message.comm_id, 0)
                    or self.state.is_handled(message.sender, message.msg_id)):  # handled under another entry
                self.stats["duplicates_dropped"] += 1
                self._inflight[inbox_id] = None
                self._advance()
                return
            self.last_seq[message.comm_id] = message.seq
            self.stats["received"] += 1
            self._inflight[inbox_id] = message
            result = None
            if self.on_message is not None:
                result = self.on_message(inbox_id, message)
                if asyncio.iscoroutine(result):
                    result = await result
            if self.complete_mode == "on_return":
                self.complete(inbox_id, result)
        elif op == "sent":
            self._outbox.pop(frame["msg_id"], None)
            future = self._pending.get(frame["msg_id"])
            if future is not None and not future.done():
                future.set_result(SentFrame(**frame))
        elif op == "error":
            msg_id = frame.get("msg_id")
            self.errors.append(frame | {"at": time.time()})
            skipped = frame.get("inbox_id")  # a dead-lettered entry: the cursor passes it like a handled one
            if isinstance(skipped, int) and skipped > self.state.cursor and skipped not in self._inflight:
                self.last_inbox_id = max(self.last_inbox_id, skipped)
                self._inflight[skipped] = None
                self._advance()
            if msg_id:
                self._outbox.pop(msg_id, None)
                future = self._pending.get(msg_id)
                if future is not None and not future.done():
                    future.set_exception(ProtocolError(frame["code"], frame["detail"], msg_id))
        elif op == "invite" and self.accept_invites is not None and self._ws is not None:
            await self._ws.send(json.dumps({"op": "invite_reply", "comm_id": frame["comm_id"],
                                            "accept": self._wants(frame)}))
