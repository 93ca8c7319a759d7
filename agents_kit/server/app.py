"""The IoA server: REST (registry, search, team-up, history) + WebSocket routing + the live web page.

Authentication: ``POST /register`` returns a token; every other call carries ``Authorization: Bearer <token>``
(REST) or the token in the WebSocket ``hello`` frame. An agent can only send as itself and only read chats it
belongs to. An admin token (printed at start-up, or set in the config) may read everything (the live page).

WebSocket ``/ws`` contract (documented behaviour, tested): a bad or missing hello closes the socket with code
4401; after a good hello, a malformed / unknown-type / oversized / forbidden frame gets an ``error`` frame and
the connection stays open; nothing from a rejected frame is stored.

Security model (issue 22; README "IoA server security model"):

* consent: a team-up adds an agent directly only when its ``accept_teams_from`` admits the initiator; anyone
  else gets an invite (``invite`` frame, ``GET /invites``) and is a member only after accepting it
  (``invite_reply`` frame, ``POST /invites/{comm_id}``); the chat starts when every invitee answered or
  ``invite_ttl_s`` ran out. Nothing of a chat reaches an inbox without its owner's consent.
* keys: bound to a non-loopback address, creating an agent needs the registration key (generated and printed
  when not configured); the admin token is sent in a header or the live page's first WebSocket frame, never
  in a URL.
* limits: one set for every entry point (``protocol.MAX_*`` on the models both WebSocket frames and HTTP
  bodies are parsed into, plus ``max_frame_bytes`` on a whole frame or body: 413 before parsing); JSON that
  would nest too deeply, carry NaN or a lone surrogate is refused with 400 / ``bad_json``; an inbox entry too
  large for the client is dead-lettered (``undeliverable`` error frame) so it cannot block what follows.
* rate limits per client address: registrations and failed authentications answer 429 once spent (clients on
  loopback are exempt unless ``rate_limit_loopback``: behind a reverse proxy on the same host, turn it on).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import json
import logging
import re
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response

from agents_kit.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_INT,
    AckFrame,
    AgentMessage,
    AgentProfile,
    ChatInfo,
    ErrorFrame,
    HelloFrame,
    InviteAnswer,
    InviteFrame,
    InviteReplyFrame,
    InviteResultFrame,
    MessageType,
    PingFrame,
    ProtocolError,
    RegisterRequest,
    RegisterResponse,
    SearchRequest,
    SendFrame,
    TeamUpRequest,
    TeamUpResponse,
    loads_checked,
    new_id,
    parse_client_frame,
)
from agents_kit.server.registry import SearchBackend, bind_backend, search_registry
from agents_kit.server.routing import CLOSE_UNAUTHORIZED, Connection, Router
from agents_kit.server.store import Store

WEB_DIR = Path(__file__).resolve().parent / "web"
log = logging.getLogger(__name__)
CLOSE_RATE_LIMITED = 4429
# The live page and its assets: scripts and styles from this origin only (no inline code, nothing framed).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "Cache-Control": "no-store"}


@dataclasses.dataclass
class ServerConfig:
    """Server settings (``paperkits agents server --config``)."""

    db: str = "ioa_server.db"
    # storage backend (issue 19): "sqlite" (embedded, the file ``db``) or "nats://HOST:PORT[,nats://...]" (NATS
    # JetStream: several server processes serve the same agents; ``db`` is then unused, each process keeps a
    # temporary replica). Stream IOA_<nats_namespace>, buckets <nats_namespace>_agents / _cursors.
    backend: str = "sqlite"
    nats_namespace: str = "ioa"
    nats_replicas: int = 1  # copies of the stream and buckets (3 in a 3-node NATS cluster)
    nats_dedup_window_s: float = 120.0  # JetStream's Nats-Msg-Id window (older retries: the replica's index)
    nats_replica_dir: str = ""  # where each process keeps its replica (empty: the system's temporary folder)
    host: str = "127.0.0.1"
    port: int = 7788
    admin_token: str = ""  # empty: a random one is generated and printed at start-up
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_nesting_depth: int = 3  # chats nested deeper than this under a root chat are refused
    send_queue_limit: int = 10_000  # per-connection frames before a slow consumer is dropped
    search_k: int = 3  # the original's Milvus limit
    hello_timeout_s: float = 10.0
    # speed (issue 22): permessage-deflate costs CPU on both ends for every frame and saves nothing on loopback;
    # None: off on a loopback address, on elsewhere (where bandwidth may matter)
    ws_per_message_deflate: bool | None = None
    commit_delay_ms: float = 0.0  # the writer's wait for more messages before a commit (0: commit at once)
    commit_max_batch: int = 2000  # messages and acks per commit at most
    # security (issue 22): see the module docstring
    registration_key: str = ""  # empty: none on loopback; bound elsewhere, a random one is generated and printed
    invite_ttl_s: float = 600.0  # an unanswered team-up invite counts as declined after this long
    max_pending_invites: int = 256  # per invitee; further team-ups treat it as declined
    max_deliver_bytes: int = 1 << 20  # deliver frames above this (or the hello's max_frame_bytes) are dead-lettered
    register_per_min: float = 30.0  # new agents per client address
    auth_failures_per_min: float = 20.0  # failed authentications per client address, then 429
    rate_limit_loopback: bool = False  # apply the two rate limits to loopback clients too

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1024:
            raise ValueError("max_frame_bytes must be at least 1024")
        if self.max_nesting_depth < 0:
            raise ValueError("max_nesting_depth must be >= 0")
        if self.backend != "sqlite" and not self.backend.startswith(("nats://", "tls://")):
            raise ValueError(f"backend must be 'sqlite' or 'nats://HOST:PORT', got {self.backend!r}")


def make_store(config: ServerConfig) -> Store:
    """The backend ``config.backend`` names: the SQLite :class:`Store` or the JetStream ``NatsStore`` (the same
    interface; routing, teaming and the protocol are written once against it)."""
    if config.backend == "sqlite":
        return Store(config.db, commit_delay_ms=config.commit_delay_ms, max_batch=config.commit_max_batch)
    from agents_kit.server.nats_store import NatsStore

    return NatsStore(config.backend, namespace=config.nats_namespace, replicas=config.nats_replicas,
                     dedup_window_s=config.nats_dedup_window_s, replica_dir=config.nats_replica_dir or None)


class IoAServer:
    """Server state shared by the endpoints: store, search backend, router."""

    def __init__(self, config: ServerConfig, backend: SearchBackend | None = None):
        self.config = config
        self.store = make_store(config)
        self.backend = bind_backend(backend, self.store)  # default: SQLite FTS5 bm25() over the store's index
        self.router = Router(self.store, max_queue=config.send_queue_limit)
        self.admin_token = config.admin_token or secrets.token_urlsafe(18)
        self.registration_key = config.registration_key or ("" if is_loopback(config.host)
                                                            else secrets.token_urlsafe(18))
        self.started = time.time()
        exempt = (lambda client: False) if config.rate_limit_loopback else is_loopback
        self.registrations = RateLimiter(config.register_per_min, exempt)
        self.auth_failures = RateLimiter(config.auth_failures_per_min, exempt)
        # pending team-ups: waiters of /teamup, their outcomes, teams being settled, expiry timers
        self._team_events: dict[str, asyncio.Event] = {}
        self._outcomes: dict[str, tuple[list[str], list[str]]] = {}
        self._settling: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._timers_armed = False

    def caller(self, authorization: str | None, client: str = "") -> str:
        """The agent name for a bearer token (``"*admin*"`` for the admin token), else HTTP 401 (429 once the
        client's failed authentications are spent)."""
        if self.auth_failures.blocked(client):
            raise HTTPException(429, f"too many failed authentications from {client}; retry in "
                                     f"{self.auth_failures.retry_after(client):.0f} s",
                                headers={"Retry-After": str(int(self.auth_failures.retry_after(client)) + 1)})
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token and secrets.compare_digest(token, self.admin_token):
            return "*admin*"
        name = self.store.agent_for_token(token) if token else None
        if name is None:
            self.auth_failures.spend(client)
            raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer <token from /register>'")
        return name

    def visible(self, caller: str, comm_id: str) -> ChatInfo:
        """The chat, if ``caller`` may read it (404/403 otherwise)."""
        info = self.store.comm(comm_id)
        if info is None:
            raise HTTPException(404, f"chat {comm_id!r} does not exist")
        if caller != "*admin*" and caller not in info.members:
            raise HTTPException(403, f"{caller!r} is not a member of chat {comm_id!r}")
        return info

    async def team_up(self, sender: str, request: TeamUpRequest) -> TeamUpResponse:
        """Form a team by consent: members that pre-consented (``accept_teams_from``) join at once, the others
        are invited; the chat is created and its ``team_up`` message emitted (so every member learns it now,
        not lazily) when all invitees answered, at once when there are none."""
        await self.arm_timers()
        known = {p.name for p in self.store.agents()}
        unknown = [n for n in request.agent_names if n not in known]
        named = sorted({n for n in request.agent_names if n in known} - {sender})
        depth = 0
        if request.parent_comm_id:
            parent = self.visible(sender, request.parent_comm_id)
            depth = parent.depth + 1
            if depth > self.config.max_nesting_depth:
                raise HTTPException(422, f"nesting depth {depth} exceeds the server limit "
                                         f"{self.config.max_nesting_depth}; solve the sub-task without a sub-team")
        direct, invited, refused = [], [], []
        for name, (accept_from, allow_invites) in self.store.consent(named).items():
            if "*" in accept_from or sender in accept_from:
                direct.append(name)
            elif allow_invites and len(self.store.invites_for(name)) < self.config.max_pending_invites:
                invited.append(name)
            else:
                refused.append(name)
        comm_id = new_id()
        spec = {"team_name": request.team_name, "goal": request.goal, "parent_comm_id": request.parent_comm_id,
                "depth": depth, "team_up_depth": request.team_up_depth, "max_turns": request.max_turns,
                "direct": direct, "refused": refused}
        if not invited:
            members = sorted({sender, *direct})
            await self._start_team(comm_id, sender, spec, members, refused)
            return TeamUpResponse(comm_id=comm_id, agent_names=members, unknown=unknown, depth=depth,
                                  declined=refused)
        self.store.create_pending_team(comm_id, sender, spec, time.time() + self.config.invite_ttl_s, invited)
        event = self._team_events[comm_id] = asyncio.Event()
        self._later(self.config.invite_ttl_s, comm_id)
        pending = self.store.pending_team(comm_id)
        invite = self._invite_frame(comm_id, sender, spec, pending[2], pending[3]) if pending else ""
        for name in invited:
            conn = self.router.connections.get(name)
            if conn is not None and invite:
                conn.offer(invite, live=False)
        try:
            deadline = time.monotonic() + request.wait_s
            while not event.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), min(0.1, max(0.0, deadline - time.monotonic())))
                if not event.is_set() and self.store.pending_team(comm_id) is None:
                    break  # settled by another server over the same NATS backend (the last answer reached it)
        finally:
            self._team_events.pop(comm_id, None)
            outcome = self._outcomes.pop(comm_id, None)
        if outcome is None and self.store.pending_team(comm_id) is None:
            # settled elsewhere: the replica applied the chat, its team_up notice (members, declined) and the
            # pending team's removal in that order
            info, record = self.store.comm(comm_id), self.store.chat_record(comm_id)
            if info is not None and record:
                outcome = (info.members, sorted(record[0].extra.get("declined", [])))
        if outcome is not None:
            return TeamUpResponse(comm_id=comm_id, agent_names=outcome[0], unknown=unknown, depth=depth,
                                  declined=outcome[1])
        pending = self.store.pending_team(comm_id)
        statuses = pending[3] if pending else {}
        return TeamUpResponse(comm_id=comm_id, depth=depth, unknown=unknown, started=False,
                              agent_names=sorted({sender, *direct, *(a for a, s in statuses.items()
                                                                     if s == "accepted")}),
                              invited=sorted(a for a, s in statuses.items() if s == "pending"),
                              declined=sorted([*refused, *(a for a, s in statuses.items() if s == "declined")]))

    async def _start_team(self, comm_id: str, initiator: str, spec: dict[str, Any], members: list[str],
                          declined: list[str], announce_only: bool = False) -> None:
        if not announce_only:
            self.store.create_comm(comm_id, spec["team_name"], initiator, members, spec["goal"],
                                   spec["parent_comm_id"], spec["depth"])
        notice = AgentMessage(comm_id=comm_id, sender=initiator, type=MessageType.TEAM_UP, goal=spec["goal"],
                              team_members=self.store.agents(members), team_up_depth=spec["team_up_depth"],
                              max_turns=spec["max_turns"], parent_comm_id=spec["parent_comm_id"],
                              next_speaker=[initiator], extra={"declined": declined} if declined else {},
                              content=f"{initiator} formed team {spec['team_name'] or comm_id}")
        await self.router.route(initiator, notice, system=True)

    async def _settle(self, comm_id: str) -> None:
        """Start a pending team with the initiator, the pre-consented and the accepted members (idempotent:
        after a crash between creating the chat and announcing it, the restart only announces it)."""
        if comm_id in self._settling:
            return
        self._settling.add(comm_id)
        try:
            pending = self.store.pending_team(comm_id)
            if pending is None:
                return
            initiator, spec, _, statuses = pending
            members = sorted({initiator, *spec["direct"], *(a for a, s in statuses.items() if s == "accepted")})
            declined = sorted([*spec["refused"], *(a for a, s in statuses.items() if s != "accepted")])
            if self.store.comm(comm_id) is None:
                await self._start_team(comm_id, initiator, spec, members, declined)
            elif not self.store.chat_record(comm_id):
                await self._start_team(comm_id, initiator, spec, members, declined, announce_only=True)
            self.store.close_pending_team(comm_id)
            if comm_id in self._team_events:
                self._outcomes[comm_id] = (members, declined)
                self._team_events[comm_id].set()
        finally:
            self._settling.discard(comm_id)

    def _later(self, delay: float, comm_id: str) -> None:
        def fire() -> None:
            task = asyncio.get_running_loop().create_task(self._settle(comm_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        asyncio.get_running_loop().call_later(max(0.0, delay), fire)

    async def arm_timers(self) -> None:
        """Once per process: expiry timers for team-ups left pending by a previous run."""
        if self._timers_armed:
            return
        self._timers_armed = True
        now = time.time()
        for comm_id, expires_at in self.store.pending_teams():
            self._later(expires_at - now, comm_id)

    async def answer_invite(self, agent: str, comm_id: str, accept: bool, recorded: Any = None) -> None:
        """Record ``agent``'s answer, call ``recorded()`` (so the answer's receipt precedes the chat's first
        frame), and start the team on the last answer."""
        await self.arm_timers()
        remaining = None if comm_id in self._settling else self.store.answer_invite(comm_id, agent, accept)
        if remaining is None:
            raise ProtocolError("no_invite", f"{agent!r} has no open invite to chat {comm_id!r} (answered, "
                                             "expired, or the team already started)")
        if recorded is not None:
            recorded()
        if remaining == 0:
            await self._settle(comm_id)

    def _invite_frame(self, comm_id: str, initiator: str, spec: dict[str, Any], expires_at: float,
                      statuses: dict[str, str]) -> str:
        members = sorted({initiator, *spec["direct"], *(a for a, s in statuses.items() if s != "declined")})
        return InviteFrame(comm_id=comm_id, initiator=initiator, team_name=spec["team_name"], goal=spec["goal"],
                           members=members, parent_comm_id=spec["parent_comm_id"],
                           expires_at=expires_at).model_dump_json()

    def invites(self, agent: str) -> list[str]:
        """``agent``'s open invites as ``invite`` frames."""
        out = []
        for comm_id, initiator, spec, expires_at in self.store.invites_for(agent):
            pending = self.store.pending_team(comm_id)
            out.append(self._invite_frame(comm_id, initiator, spec, expires_at, pending[3] if pending else {}))
        return out

    def dead_letter(self, agent: str, frame: str, limit: int) -> str:
        """The ``undeliverable`` error frame that replaces a deliver frame too large for the client."""
        head = frame[:512]
        match = re.match(r'\{"op":"deliver","inbox_id":(\d+)', head)
        inbox_id = int(match.group(1)) if match else None
        ids = re.search(r'"msg_id":"([^"]{1,64})","comm_id":"([^"]{1,64})"', head)
        size = len(frame.encode("utf-8", "surrogatepass"))
        if inbox_id is not None:
            self.store.dead_letter(agent, inbox_id, f"{size} bytes > {limit}")
        # no msg_id field: clients fail a pending send on an error naming its msg_id, but this message is stored
        where = f" (message {ids.group(1)} of chat {ids.group(2)}: GET /fetch_chat_record reads it)" if ids else ""
        return ErrorFrame(code="undeliverable", inbox_id=inbox_id,
                          detail=f"inbox entry {inbox_id} is a {size}-byte frame, more than the {limit} bytes this "
                                 f"connection accepts (hello.max_frame_bytes); it was skipped{where} and delivery "
                                 "goes on").model_dump_json()


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class RateLimiter:
    """A token bucket per client address: ``per_min`` events a minute, in bursts of up to as many."""

    def __init__(self, per_min: float, exempt: Any = lambda client: False):
        self.rate, self.burst, self.exempt = per_min / 60.0, max(1.0, per_min), exempt
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()  # sync endpoints run in a thread pool

    def _level(self, client: str, now: float) -> float:
        level, at = self._buckets.get(client, (self.burst, now))
        return min(self.burst, level + (now - at) * self.rate)

    def blocked(self, client: str) -> bool:
        """True when ``client`` has no event left (nothing is spent)."""
        with self._lock:
            return not self.exempt(client) and self._level(client, time.monotonic()) < 1.0

    def spend(self, client: str) -> bool:
        """Spend one event; False (nothing spent) when none is left."""
        if self.exempt(client):
            return True
        with self._lock:
            now = time.monotonic()
            level = self._level(client, now)
            if len(self._buckets) > 10_000:  # forget clients whose bucket has refilled
                self._buckets = {c: b for c, b in self._buckets.items() if self._level(c, now) < self.burst}
            if level < 1.0:
                return False
            self._buckets[client] = (level - 1.0, now)
            return True

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` has an event again."""
        with self._lock:
            level = self._level(client, time.monotonic())
        return max(0.0, (1.0 - level) / self.rate) if self.rate > 0 else 60.0


class _GuardBodies:
    """ASGI middleware for HTTP bodies: 413 above ``limit`` bytes before anything parses them (Content-Length or
    the bytes actually received), 400 for JSON that :func:`loads_checked` refuses (deep nesting, NaN, lone
    surrogates), which FastAPI's own parser would turn into a 500 further in."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _refuse(send, 413, f"request body of {length.decode(errors='replace')} bytes exceeds the limit "
                                     f"of {self.limit} bytes (the server's max_frame_bytes)")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _refuse(send, 413, f"request body exceeds the limit of {self.limit} bytes "
                                         "(the server's max_frame_bytes)")
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body:
            try:
                loads_checked(body)
            except ProtocolError as err:
                await _refuse(send, 400, f"{err.code}: {err.detail}")
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(config: ServerConfig | None = None, backend: SearchBackend | None = None) -> FastAPI:
    """The FastAPI application (OpenAPI docs at ``/docs``)."""
    server = IoAServer(config or ServerConfig(), backend)
    app = FastAPI(title="IoA server", version="1", description=__doc__)
    app.state.ioa = server
    app.add_middleware(_GuardBodies, limit=server.config.max_frame_bytes)

    def caller(request: Request, authorization: str | None = Header(default=None)) -> str:
        return server.caller(authorization, _client(request))

    @app.get("/health")
    def health(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """Liveness; counts only for the admin token (``Authorization: Bearer <admin token>``)."""
        out: dict[str, Any] = {"ok": True, "protocol": "ioa/1"}
        if authorization and server.caller(authorization, _client(request)) == "*admin*":
            out.update(uptime_s=time.time() - server.started, online=len(server.router.connections),
                       delivered_live=server.router.delivered,
                       slow_consumer_drops=server.router.slow_consumer_drops, **server.store.stats(),
                       **server.store.security_stats())
        return out

    @app.post("/register", response_model=RegisterResponse)
    def register(request: RegisterRequest, http: Request) -> RegisterResponse:
        """Register an agent (or update its profile and consent, which needs its token)."""
        client = _client(http)
        updating = request.token is not None and server.store.authenticate(request.name, request.token)
        if not updating:
            if not server.registrations.spend(client):
                raise HTTPException(429, f"too many registrations from {client}; retry in "
                                         f"{server.registrations.retry_after(client):.0f} s",
                                    headers={"Retry-After": str(int(server.registrations.retry_after(client)) + 1)})
            if server.registration_key:
                if server.auth_failures.blocked(client):
                    raise HTTPException(429, f"too many failed authentications from {client}")
                if not secrets.compare_digest((request.registration_key or "").encode(),
                                              server.registration_key.encode()):
                    server.auth_failures.spend(client)
                    raise HTTPException(403, "this server needs a registration key to create agents: send "
                                             "registration_key (printed by the server at start-up, or its config)")
        try:
            token, created = server.store.register(AgentProfile(**request.model_dump(include={"name", "type",
                                                                                              "desc"})),
                                                   request.token)
        except PermissionError as err:
            server.auth_failures.spend(client)
            raise HTTPException(409, str(err)) from err
        accept_from, allow_invites = server.store.set_consent(request.name, request.accept_teams_from,
                                                              request.allow_invites)
        return RegisterResponse(name=request.name, token=token, created=created, accept_teams_from=accept_from,
                                allow_invites=allow_invites)

    @app.post("/retrieve_assistant", response_model=list[AgentProfile])
    def retrieve(request: SearchRequest, who: str = Depends(caller)) -> list[AgentProfile]:
        """Search agents by desired capabilities (top-k per query, union, dedup)."""
        return search_registry(server.backend, server.store, request.capabilities, k=request.k,
                               exclude=who if request.exclude_sender else None,
                               online=server.router.connections if request.online_only else None)

    @app.post("/query_assistant", response_model=list[AgentProfile])
    def query(names: list[str], who: str = Depends(caller)) -> list[AgentProfile]:
        """Exact profiles by name."""
        return server.store.agents(names)

    @app.post("/list_all_agents", response_model=list[AgentProfile])
    def list_all(who: str = Depends(caller)) -> list[AgentProfile]:
        """Every registered agent."""
        return server.store.agents()

    @app.post("/teamup", response_model=TeamUpResponse)
    async def teamup(request: TeamUpRequest, who: str = Depends(caller)) -> TeamUpResponse:
        """Create a group chat with the caller and the named agents."""
        if who == "*admin*":
            raise HTTPException(403, "the admin token cannot form teams; use an agent token")
        return await server.team_up(who, request)

    @app.get("/invites", response_model=list[InviteFrame])
    async def invites(who: str = Depends(caller)) -> list[InviteFrame]:
        """The caller's open team-up invites (also pushed as ``invite`` frames on its WebSocket)."""
        await server.arm_timers()
        return [InviteFrame.model_validate_json(frame) for frame in server.invites(who)]

    @app.post("/invites/{comm_id}", response_model=InviteResultFrame)
    async def answer_invite(comm_id: str, answer: InviteAnswer, who: str = Depends(caller)) -> InviteResultFrame:
        """Accept or decline an invite; the chat starts when every invitee has answered."""
        try:
            await server.answer_invite(who, comm_id, answer.accept)
        except ProtocolError as err:
            raise HTTPException(404, f"{err.code}: {err.detail}") from err
        return InviteResultFrame(comm_id=comm_id, accepted=answer.accept)

    @app.post("/send")
    async def send(message: AgentMessage, who: str = Depends(caller)) -> dict[str, Any]:
        """Post a message over HTTP (same rules as the WebSocket ``send`` frame)."""
        try:
            return (await server.router.route(who, message)).model_dump()
        except ProtocolError as err:
            status = {"forbidden": 403, "not_member": 403, "unknown_chat": 404, "msg_id_reused": 409,
                      "unavailable": 503}.get(err.code, 422)
            raise HTTPException(status, f"{err.code}: {err.detail}") from err

    @app.get("/chats", response_model=list[ChatInfo])
    def chats(who: str = Depends(caller)) -> list[ChatInfo]:
        """Chats the caller belongs to (all chats for the admin token)."""
        return server.store.comms(None if who == "*admin*" else who)

    @app.get("/fetch_chat_record/{comm_id}", response_model=list[AgentMessage])
    def chat_record(comm_id: str, after_seq: int = Query(default=0, ge=0, le=MAX_INT),
                    who: str = Depends(caller)) -> list[AgentMessage]:
        """A chat's messages in seq order (members and admin only)."""
        server.visible(who, comm_id)
        return server.store.chat_record(comm_id, after_seq)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        """The live page: a sign-in form (the token stays in the page's memory), then agents, chats, and a
        chat's messages as they arrive."""
        return HTMLResponse((WEB_DIR / "index.html").read_text(), headers=PAGE_HEADERS)

    @app.get("/live.js", include_in_schema=False)
    def page_script() -> Response:
        return Response((WEB_DIR / "live.js").read_text(), media_type="text/javascript", headers=PAGE_HEADERS)

    @app.get("/live.css", include_in_schema=False)
    def page_style() -> Response:
        return Response((WEB_DIR / "live.css").read_text(), media_type="text/css", headers=PAGE_HEADERS)

    @app.get("/api/overview")
    def overview(who: str = Depends(caller)) -> dict[str, Any]:
        """What the live page shows: agents and the caller's visible chats."""
        return {"caller": who, "agents": [p.model_dump(mode="json") for p in server.store.agents()],
                "chats": [c.model_dump(mode="json") for c in server.store.comms(None if who == "*admin*" else who)]}

    @app.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        """Push every new message the token may read (for the live page). The first frame authenticates:
        ``{"op": "hello", "token": "..."}`` (not the URL, which logs and browser history keep); the answer is
        ``{"op": "welcome", "viewer": ...}`` or a close with 4401 (4429 when rate limited)."""
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=server.config.hello_timeout_s)
            data = loads_checked(first) if len(first) <= 4096 else None
            token = data.get("token") if isinstance(data, dict) and data.get("op") == "hello" else None
            who = server.caller(f"Bearer {token}" if isinstance(token, str) else None, _client(websocket))
        except HTTPException as err:
            await websocket.close(CLOSE_RATE_LIMITED if err.status_code == 429 else CLOSE_UNAUTHORIZED)
            return
        except (ProtocolError, asyncio.TimeoutError, WebSocketDisconnect, KeyError):
            with contextlib.suppress(Exception):
                await websocket.close(CLOSE_UNAUTHORIZED)
            return
        await websocket.send_text(json.dumps({"op": "welcome", "viewer": who}))
        conn = Connection(who, websocket.send_text, lambda code: websocket.close(code), server.config.send_queue_limit)
        visible = None if who == "*admin*" else _LiveSet(server.store, who)
        server.router.viewers.append((visible, conn))
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            server.router.viewers = [(v, c) for v, c in server.router.viewers if c is not conn]
            conn.shutdown()

    @app.websocket("/ws")
    async def agent_socket(websocket: WebSocket) -> None:
        """The agent connection: hello → welcome + backlog → send/ack/ping frames."""
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=server.config.hello_timeout_s)
            client = _client(websocket)
            if server.auth_failures.blocked(client):
                raise ProtocolError("rate_limited", f"too many failed authentications from {client}; retry in "
                                                    f"{server.auth_failures.retry_after(client):.0f} s")
            hello = parse_client_frame(first, server.config.max_frame_bytes)
            if not isinstance(hello, HelloFrame) or not server.store.authenticate(hello.agent, hello.token):
                server.auth_failures.spend(client)
                raise ProtocolError("unauthorized", "first frame must be hello{agent, token} with the token "
                                                    "that /register returned")
        except (ProtocolError, asyncio.TimeoutError, WebSocketDisconnect, KeyError) as err:
            code, detail = (err.code, err.detail) if isinstance(err, ProtocolError) else ("unauthorized", "no hello")
            with contextlib.suppress(Exception):
                await websocket.send_text(server.router.error_frame(ProtocolError(code, detail)))
                await websocket.close(CLOSE_RATE_LIMITED if code == "rate_limited" else CLOSE_UNAUTHORIZED)
            return
        limit = hello.max_frame_bytes or server.config.max_deliver_bytes

        async def send_text(frame: str) -> None:
            # an inbox entry too large for this client would close its socket on every replay (1009) and block
            # everything after it: skip it with an error frame instead (cheap length test first)
            if len(frame) * 4 > limit and isinstance(frame, str) and frame.startswith('{"op":"deliver"') and \
                    len(frame.encode("utf-8", "surrogatepass")) > limit:
                frame = server.dead_letter(hello.agent, frame, limit)
            await websocket.send_text(frame)

        conn = Connection(hello.agent, send_text, lambda code: websocket.close(code),
                          server.config.send_queue_limit)
        await server.router.attach(conn, hello.resume_after)
        await server.arm_timers()
        for invite in server.invites(hello.agent):  # open invites, after the backlog
            conn.offer(invite, live=False)
        try:
            while True:
                event = await websocket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                if text is None:
                    conn.offer(server.router.error_frame(ProtocolError("bad_frame", "binary frames are not "
                               "accepted; send JSON text")), live=False)
                    continue
                try:
                    frame = parse_client_frame(text, server.config.max_frame_bytes)
                    if isinstance(frame, SendFrame):  # queued for the next group commit: keep reading
                        server.router.submit(hello.agent, frame.message, conn.reply)
                    elif isinstance(frame, AckFrame):
                        server.store.ack(hello.agent, frame.inbox_id)
                    elif isinstance(frame, PingFrame):
                        conn.offer('{"op":"pong"}', live=False)
                    elif isinstance(frame, InviteReplyFrame):
                        result = InviteResultFrame(comm_id=frame.comm_id, accepted=frame.accept).model_dump_json()
                        await server.answer_invite(hello.agent, frame.comm_id, frame.accept,
                                                   recorded=lambda result=result: conn.offer(result, live=False))
                    else:
                        raise ProtocolError("bad_frame", "hello was already received on this connection")
                except ProtocolError as err:
                    conn.offer(server.router.error_frame(err), live=False)
                except Exception:  # a bug or a storage error costs this frame, never the connection
                    log.exception("frame from %s failed", hello.agent)
                    conn.offer(server.router.error_frame(ProtocolError(
                        "internal", "the server failed on this frame; the connection stays open (resend it)")),
                        live=False)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            server.router.detach(conn)

    return app


def _client(connection: Request | WebSocket) -> str:
    """The peer address (the rate limits' key)."""
    return connection.client.host if connection.client else ""


class _LiveSet:
    """The chats a live-page viewer may see, re-read so chats created after it connected appear too."""

    def __init__(self, store: Store, agent: str):
        self.store, self.agent = store, agent

    def __contains__(self, comm_id: object) -> bool:
        return self.agent in self.store.members_cached(str(comm_id))


def _deflate(config: ServerConfig) -> bool:
    return not is_loopback(config.host) if config.ws_per_message_deflate is None else config.ws_per_message_deflate


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Run the server in a background thread (tests, notebooks, benchmarks); a context manager that stops it."""

    def __init__(self, config: ServerConfig | None = None, backend: SearchBackend | None = None):
        self.config = config or ServerConfig()
        if not self.config.port:
            self.config.port = free_port()
        self.app = create_app(self.config, backend)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host=self.config.host, port=self.config.port,
                                                     log_level="warning", ws_ping_interval=None, lifespan="off",
                                                     ws_per_message_deflate=_deflate(self.config)))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def admin_token(self) -> str:
        """The admin token (reads everything)."""
        return self.app.state.ioa.admin_token

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start and wait until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"IoA server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and join the thread; then close the database."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.state.ioa.store.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_server(config: ServerConfig, backend: SearchBackend | None = None) -> None:
    """Serve in the foreground until interrupted (``paperkits agents server``)."""
    app = create_app(config, backend)
    print(f"IoA server on http://{config.host}:{config.port}  (docs /docs, live page / : sign in with the admin "
          "token)", flush=True)
    print(f"admin token: {app.state.ioa.admin_token}", flush=True)
    if app.state.ioa.registration_key:
        print(f"registration key (needed to create agents): {app.state.ioa.registration_key}", flush=True)
    # start-up objects (FastAPI, pydantic schemas) leave the collector's view: a full collection under load
    # took 45 ms with them, 17 ms without (issue 22 latency tail)
    gc.collect()
    gc.freeze()
    # uvicorn re-raises SIGTERM after its graceful shutdown: exit through Python so the store is closed (the
    # SQLite writer flushed; the NATS replica and connection dropped)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning", ws_ping_interval=None,
                    ws_per_message_deflate=_deflate(config))
    finally:
        app.state.ioa.store.close()


class ServerProcess:
    """The server in its own process (benchmarks: CPU and memory are measured apart, and it can be SIGKILLed)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        if not self.config.port:
            self.config.port = free_port()
        if not self.config.admin_token:
            self.config.admin_token = secrets.token_urlsafe(18)
        self.proc: Any = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.config.host}:{self.config.port}"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        """Spawn ``python -m agents_kit.server.app CONFIG_JSON`` and wait for ``/health``."""
        import json
        import subprocess
        import sys

        import httpx

        self.proc = subprocess.Popen([sys.executable, "-m", "agents_kit.server.app",
                                      json.dumps(dataclasses.asdict(self.config))],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"IoA server exited: {self.proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"IoA server did not answer on {self.url} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL (a crash: no shutdown handlers run)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def rss_mb(self) -> float:
        """Resident memory of the server process (MiB; 0 when not running or unreadable)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # peak resident set
                    return int(line.split()[1]) / 1024.0
        except (OSError, AttributeError):
            pass
        return 0.0

    def io_bytes(self) -> dict[str, int]:
        """The server process's ``/proc/<pid>/io`` counters (``write_bytes``: what it sent towards storage;
        ``wchar``: what it passed to write()); empty when not running or unreadable."""
        try:
            text = Path(f"/proc/{self.proc.pid}/io").read_text()
        except (OSError, AttributeError):
            return {}
        return {key: int(value) for key, value in (line.split(": ") for line in text.splitlines())}

    def stop(self) -> None:
        """Terminate (then kill) the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # `python -m agents_kit.server.app '<ServerConfig as JSON>'` (ServerProcess)
    import json
    import sys

    run_server(ServerConfig(**json.loads(sys.argv[1])))
