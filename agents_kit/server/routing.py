"""Message routing: store first, then fan out to every online member through bounded per-connection queues.

One asyncio lock serialises "append to store + enqueue to connections" and "replay backlog + attach", so an
agent's deliveries are always in inbox order and a message is either in the replayed backlog or pushed live,
never both and never neither. A failed or slow member never affects the sender or other members (the
original disconnected the *sender* when a member was offline, brief §6 bug 1): a connection whose queue
overflows is closed and that agent replays from its inbox when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from agents_kit.protocol import AgentMessage, ErrorFrame, MessageType, ProtocolError, SentFrame, WelcomeFrame
from agents_kit.server.store import Store

CLOSE_REPLACED = 4000  # the same agent connected again
CLOSE_SLOW_CONSUMER = 4008  # the send queue overflowed; reconnect and replay
CLOSE_UNAUTHORIZED = 4401


class Connection:
    """One authenticated WebSocket: a queue drained by a writer task."""

    def __init__(self, agent: str, send_text: Callable, close: Callable, max_queue: int):
        self.agent, self._send_text, self._close, self.max_queue = agent, send_text, close, max_queue
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.overflowed = False
        self.writer = asyncio.get_running_loop().create_task(self._drain())

    def offer(self, frame: str, live: bool = True) -> bool:
        """Queue a frame; a live push to a full queue closes the connection (it will replay)."""
        if self.closed:
            return False
        if live and self.queue.qsize() >= self.max_queue:
            self.overflowed = True
            self.shutdown(CLOSE_SLOW_CONSUMER)
            return False
        self.queue.put_nowait(frame)
        return True

    def shutdown(self, code: int = 1000) -> None:
        """Stop the writer and close the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.writer.cancel()
        asyncio.get_running_loop().create_task(self._safe_close(code))

    async def _safe_close(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await self._close(code)

    async def _drain(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                await self._send_text(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket died; the agent replays on reconnect
            self.closed = True


def deliver_frame(inbox_id: int, message_json: str) -> str:
    """A ``deliver`` frame built from pre-serialised message JSON (one serialisation per message, not per member)."""
    return f'{{"op":"deliver","inbox_id":{inbox_id},"message":{message_json}}}'


class Router:
    """Owns the online connections and the live-page viewers; routes stored messages to them."""

    def __init__(self, store: Store, max_queue: int = 10_000):
        self.store, self.max_queue = store, max_queue
        self.connections: dict[str, Connection] = {}
        self.viewers: list[tuple[set[str] | None, Connection]] = []  # (visible comm ids or None = all, conn)
        self.lock = asyncio.Lock()
        self.delivered = 0
        self.slow_consumer_drops = 0

    async def attach(self, conn: Connection, resume_after: int | None) -> int:
        """Replay the backlog after ``resume_after`` (or the acked cursor) and make ``conn`` live."""
        async with self.lock:
            after = self.store.acked(conn.agent) if resume_after is None else resume_after
            backlog = self.store.inbox_after(conn.agent, after)
            old = self.connections.get(conn.agent)
            if old is not None and old is not conn:
                old.shutdown(CLOSE_REPLACED)
            self.connections[conn.agent] = conn
            welcome = WelcomeFrame(agent=conn.agent, server_time=asyncio.get_running_loop().time(),
                                   replay=len(backlog))
            conn.offer(welcome.model_dump_json(), live=False)
            for inbox_id, message in backlog:
                conn.offer(deliver_frame(inbox_id, message.model_dump_json()), live=False)
        self.store.touch(conn.agent)
        return len(backlog)

    def detach(self, conn: Connection) -> None:
        """Forget ``conn`` if it is still the agent's current connection."""
        if self.connections.get(conn.agent) is conn:
            del self.connections[conn.agent]
        conn.shutdown()

    async def route(self, authenticated: str, message: AgentMessage, system: bool = False) -> SentFrame:
        """Validate, store (idempotently) and fan out ``message``; returns the ``sent`` acknowledgement."""
        if message.sender != authenticated:
            raise ProtocolError("forbidden", f"authenticated as {authenticated!r} but message.sender is "
                                             f"{message.sender!r}; an agent may only send as itself", message.msg_id)
        if message.type is MessageType.TEAM_UP and not system:
            raise ProtocolError("forbidden", "team_up messages are emitted by the server; call POST /teamup",
                                message.msg_id)
        members = self.store.members(message.comm_id)
        if not members:
            raise ProtocolError("unknown_chat", f"chat {message.comm_id!r} does not exist; create it with "
                                                "POST /teamup", message.msg_id)
        if authenticated not in members:
            raise ProtocolError("not_member", f"{authenticated!r} is not a member of chat {message.comm_id!r}",
                                message.msg_id)
        async with self.lock:
            stored, rows, duplicate = self.store.append(message)
            if rows:
                body = stored.model_dump_json()
                for member, inbox_id in rows:
                    conn = self.connections.get(member)
                    if conn is None:
                        continue  # offline: the inbox row is the delivery; it replays on connect
                    if conn.offer(deliver_frame(inbox_id, body)):
                        self.delivered += 1
                    elif conn.overflowed and self.connections.get(member) is conn:
                        self.slow_consumer_drops += 1
                        del self.connections[member]
                live = json.dumps({"op": "message", "message": json.loads(body)})
                for visible, viewer in list(self.viewers):
                    if visible is None or stored.comm_id in visible:
                        viewer.offer(live)
        return SentFrame(msg_id=stored.msg_id, comm_id=stored.comm_id, seq=stored.seq, duplicate=duplicate)

    def error_frame(self, err: ProtocolError) -> str:
        """The ``error`` frame for a rejected client frame."""
        return ErrorFrame(code=err.code, detail=err.detail, msg_id=err.msg_id).model_dump_json()
