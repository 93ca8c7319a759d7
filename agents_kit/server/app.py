"""The IoA server: REST (registry, search, team-up, history) + WebSocket routing + the live web page.

Authentication: ``POST /register`` returns a token; every other call carries ``Authorization: Bearer <token>``
(REST) or the token in the WebSocket ``hello`` frame. An agent can only send as itself and only read chats it
belongs to. An admin token (printed at start-up, or set in the config) may read everything (the live page).

WebSocket ``/ws`` contract (documented behaviour, tested): a bad or missing hello closes the socket with code
4401; after a good hello, a malformed / unknown-type / oversized / forbidden frame gets an ``error`` frame and
the connection stays open; nothing from a rejected frame is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from agents_kit.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    AckFrame,
    AgentMessage,
    AgentProfile,
    ChatInfo,
    HelloFrame,
    MessageType,
    PingFrame,
    ProtocolError,
    RegisterRequest,
    RegisterResponse,
    SearchRequest,
    SendFrame,
    TeamUpRequest,
    TeamUpResponse,
    new_id,
    parse_client_frame,
)
from agents_kit.server.registry import BM25Search, SearchBackend, search
from agents_kit.server.routing import CLOSE_UNAUTHORIZED, Connection, Router
from agents_kit.server.store import Store

WEB_DIR = Path(__file__).resolve().parent / "web"


@dataclasses.dataclass
class ServerConfig:
    """Server settings (``paperkits agents server --config``)."""

    db: str = "ioa_server.db"
    host: str = "127.0.0.1"
    port: int = 7788
    admin_token: str = ""  # empty: a random one is generated and printed at start-up
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_nesting_depth: int = 3  # chats nested deeper than this under a root chat are refused
    send_queue_limit: int = 10_000  # per-connection frames before a slow consumer is dropped
    search_k: int = 3  # the original's Milvus limit
    hello_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_frame_bytes < 1024:
            raise ValueError("max_frame_bytes must be at least 1024")
        if self.max_nesting_depth < 0:
            raise ValueError("max_nesting_depth must be >= 0")


class IoAServer:
    """Server state shared by the endpoints: store, search backend, router."""

    def __init__(self, config: ServerConfig, backend: SearchBackend | None = None):
        self.config = config
        self.store = Store(config.db)
        self.backend = backend or BM25Search()
        self.router = Router(self.store, max_queue=config.send_queue_limit)
        self.admin_token = config.admin_token or secrets.token_urlsafe(18)
        self.started = time.time()

    def caller(self, authorization: str | None) -> str:
        """The agent name for a bearer token (``"*admin*"`` for the admin token), else HTTP 401."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token and secrets.compare_digest(token, self.admin_token):
            return "*admin*"
        name = self.store.agent_for_token(token) if token else None
        if name is None:
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
        """Create a chat, then emit a ``team_up`` message so every member learns it now (not lazily)."""
        known = {p.name for p in self.store.agents()}
        unknown = [n for n in request.agent_names if n not in known]
        names = sorted({n for n in request.agent_names if n in known} | {sender})
        depth = 0
        if request.parent_comm_id:
            parent = self.visible(sender, request.parent_comm_id)
            depth = parent.depth + 1
            if depth > self.config.max_nesting_depth:
                raise HTTPException(422, f"nesting depth {depth} exceeds the server limit "
                                         f"{self.config.max_nesting_depth}; solve the sub-task without a sub-team")
        comm_id = new_id()
        self.store.create_comm(comm_id, request.team_name, sender, names, request.goal, request.parent_comm_id,
                               depth)
        notice = AgentMessage(comm_id=comm_id, sender=sender, type=MessageType.TEAM_UP, goal=request.goal,
                              team_members=self.store.agents(names), team_up_depth=request.team_up_depth,
                              max_turns=request.max_turns, parent_comm_id=request.parent_comm_id,
                              next_speaker=[sender], content=f"{sender} formed team {request.team_name or comm_id}")
        await self.router.route(sender, notice, system=True)
        return TeamUpResponse(comm_id=comm_id, agent_names=names, unknown=unknown, depth=depth)


def create_app(config: ServerConfig | None = None, backend: SearchBackend | None = None) -> FastAPI:
    """The FastAPI application (OpenAPI docs at ``/docs``)."""
    server = IoAServer(config or ServerConfig(), backend)
    app = FastAPI(title="IoA server", version="1", description=__doc__)
    app.state.ioa = server

    def caller(authorization: str | None = Header(default=None)) -> str:
        return server.caller(authorization)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and counts."""
        return {"ok": True, "protocol": "ioa/1", "uptime_s": time.time() - server.started,
                "online": len(server.router.connections), "delivered_live": server.router.delivered,
                "slow_consumer_drops": server.router.slow_consumer_drops, **server.store.stats()}

    @app.post("/register", response_model=RegisterResponse)
    def register(request: RegisterRequest) -> RegisterResponse:
        """Register an agent (or update its profile, which needs its token)."""
        try:
            token, created = server.store.register(AgentProfile(**request.model_dump(exclude={"token"})),
                                                   request.token)
        except PermissionError as err:
            raise HTTPException(409, str(err)) from err
        return RegisterResponse(name=request.name, token=token, created=created)

    @app.post("/retrieve_assistant", response_model=list[AgentProfile])
    def retrieve(request: SearchRequest, who: str = Depends(caller)) -> list[AgentProfile]:
        """Search agents by desired capabilities (top-k per query, union, dedup)."""
        profiles = server.store.agents()
        if request.online_only:
            profiles = [p for p in profiles if p.name in server.router.connections]
        return search(server.backend, request.capabilities, profiles, k=request.k,
                      exclude=who if request.exclude_sender else None)

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

    @app.post("/send")
    async def send(message: AgentMessage, who: str = Depends(caller)) -> dict[str, Any]:
        """Post a message over HTTP (same rules as the WebSocket ``send`` frame)."""
        try:
            return (await server.router.route(who, message)).model_dump()
        except ProtocolError as err:
            raise HTTPException(403 if err.code in ("forbidden", "not_member") else 404 if err.code ==
                                "unknown_chat" else 422, f"{err.code}: {err.detail}") from err

    @app.get("/chats", response_model=list[ChatInfo])
    def chats(who: str = Depends(caller)) -> list[ChatInfo]:
        """Chats the caller belongs to (all chats for the admin token)."""
        return server.store.comms(None if who == "*admin*" else who)

    @app.get("/fetch_chat_record/{comm_id}", response_model=list[AgentMessage])
    def chat_record(comm_id: str, after_seq: int = 0, who: str = Depends(caller)) -> list[AgentMessage]:
        """A chat's messages in seq order (members and admin only)."""
        server.visible(who, comm_id)
        return server.store.chat_record(comm_id, after_seq)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        """The live page: agents, chats, and a chat's messages as they arrive (open with ?token=...)."""
        return (WEB_DIR / "index.html").read_text()

    @app.get("/api/overview")
    def overview(who: str = Depends(caller)) -> dict[str, Any]:
        """What the live page shows: agents and the caller's visible chats."""
        return {"caller": who, "agents": [p.model_dump(mode="json") for p in server.store.agents()],
                "chats": [c.model_dump(mode="json") for c in server.store.comms(None if who == "*admin*" else who)]}

    @app.websocket("/live")
    async def live(websocket: WebSocket, token: str = Query(default="")) -> None:
        """Push every new message the token may read (for the live page)."""
        await websocket.accept()
        try:
            who = server.caller(f"Bearer {token}")
        except HTTPException:
            await websocket.close(CLOSE_UNAUTHORIZED)
            return
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
            hello = parse_client_frame(first, server.config.max_frame_bytes)
            if not isinstance(hello, HelloFrame) or not server.store.authenticate(hello.agent, hello.token):
                raise ProtocolError("unauthorized", "first frame must be hello{agent, token} with the token "
                                                    "that /register returned")
        except (ProtocolError, asyncio.TimeoutError, WebSocketDisconnect, KeyError) as err:
            code, detail = (err.code, err.detail) if isinstance(err, ProtocolError) else ("unauthorized", "no hello")
            with contextlib.suppress(Exception):
                await websocket.send_text(server.router.error_frame(ProtocolError(code, detail)))
                await websocket.close(CLOSE_UNAUTHORIZED)
            return
        conn = Connection(hello.agent, websocket.send_text, lambda code: websocket.close(code),
                          server.config.send_queue_limit)
        await server.router.attach(conn, hello.resume_after)
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
                    if isinstance(frame, SendFrame):
                        sent = await server.router.route(hello.agent, frame.message)
                        conn.offer(sent.model_dump_json(), live=False)
                    elif isinstance(frame, AckFrame):
                        server.store.ack(hello.agent, frame.inbox_id)
                    elif isinstance(frame, PingFrame):
                        conn.offer('{"op":"pong"}', live=False)
                    else:
                        raise ProtocolError("bad_frame", "hello was already received on this connection")
                except ProtocolError as err:
                    conn.offer(server.router.error_frame(err), live=False)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            server.router.detach(conn)

    return app


class _LiveSet:
    """The chats a live-page viewer may see, re-read so chats created after it connected appear too."""

    def __init__(self, store: Store, agent: str):
        self.store, self.agent = store, agent

    def __contains__(self, comm_id: object) -> bool:
        return self.agent in self.store.members(str(comm_id))


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
                                                     log_level="warning", ws_ping_interval=None, lifespan="off"))
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
    print(f"IoA server on http://{config.host}:{config.port}  (docs /docs, live page /?token=<admin token>)",
          flush=True)
    print(f"admin token: {app.state.ioa.admin_token}", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", ws_ping_interval=None)


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
