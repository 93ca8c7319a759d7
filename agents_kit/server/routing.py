"""Message routing: store first, then fan out to every online member through bounded per-connection queues.

A send is validated and queued for the store's next group commit without waiting (``Router.submit``); when the
commit returns, the writer thread hands the batch to the event loop, which fans every message out and only then
answers its sender with ``sent`` — an acknowledged message is always durable. Fan-out runs in commit order, and
commit order is inbox order. Attaching a connection (read its backlog, make it live) is one synchronous step on
the loop, and the connection remembers the last inbox id its backlog held, so a batch committed before that
read but fanned out after it is not pushed twice: a message is either in the replayed backlog or pushed live,
never both and never neither. A failed or slow member never affects the sender or other members (the original
disconnected the *sender* when a member was offline, brief §6 bug 1): a connection whose queue overflows is
closed and that agent replays from its inbox when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from agents_kit.protocol import AgentMessage, ErrorFrame, MessageType, ProtocolError, SentFrame, WelcomeFrame
from agents_kit.server.store import Appended, Store

Reply = Callable[[SentFrame | ProtocolError], None]

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
        self.floor = 0  # the last inbox id of the replayed backlog: live pushes at or below it are skipped
        self.writer = asyncio.get_running_loop().create_task(self._drain())

    def reply(self, result: SentFrame | ProtocolError) -> None:
        """Answer a ``send`` frame: ``sent`` once durable, or the error."""
        if isinstance(result, ProtocolError):
            self.offer(ErrorFrame(code=result.code, detail=result.detail, msg_id=result.msg_id).model_dump_json(),
                       live=False)
        else:
            self.offer(result.model_dump_json(), live=False)

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
        self.delivered = 0
        self.slow_consumer_drops = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        store.on_commit = self._committed

    def _bind(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def _committed(self, entries: list[Appended]) -> None:
        """Writer thread: hand a committed batch to the event loop (one wake-up per batch)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped between the test and the call
                loop.call_soon_threadsafe(self._fan_out, entries)

    async def attach(self, conn: Connection, resume_after: int | None) -> int:
        """Replay the backlog after ``resume_after`` (or the acked cursor) and make ``conn`` live."""
        self._bind()
        # one synchronous step: no fan-out can run between reading the backlog and going live
        after = self.store.acked(conn.agent) if resume_after is None else max(0, resume_after)
        backlog = self.store.inbox_raw(conn.agent, after)
        old = self.connections.get(conn.agent)
        if old is not None and old is not conn:
            old.shutdown(CLOSE_REPLACED)
        self.connections[conn.agent] = conn
        conn.floor = backlog[-1][0] if backlog else after
        welcome = WelcomeFrame(agent=conn.agent, server_time=asyncio.get_running_loop().time(),
                               replay=len(backlog))
        conn.offer(welcome.model_dump_json(), live=False)
        for inbox_id, body in backlog:
            conn.offer(deliver_frame(inbox_id, body), live=False)
        self.store.touch(conn.agent)
        return len(backlog)

    def detach(self, conn: Connection) -> None:
        """Forget ``conn`` if it is still the agent's current connection."""
        if self.connections.get(conn.agent) is conn:
            del self.connections[conn.agent]
        conn.shutdown()

    def submit(self, authenticated: str, message: AgentMessage, reply: Reply, system: bool = False) -> None:
        """Validate ``message`` and queue it for the next group commit; ``reply`` gets the ``sent`` frame once
        it is durable (or a :class:`ProtocolError`). Validation errors raise at once. Must run on the loop."""
        self._bind()
        if message.sender != authenticated:
            raise ProtocolError("forbidden", f"authenticated as {authenticated!r} but message.sender is "
                                             f"{message.sender!r}; an agent may only send as itself", message.msg_id)
        if message.type is MessageType.TEAM_UP and not system:
            raise ProtocolError("forbidden", "team_up messages are emitted by the server; call POST /teamup",
                                message.msg_id)
        members = self.store.members_cached(message.comm_id)
        if not members:
            raise ProtocolError("unknown_chat", f"chat {message.comm_id!r} does not exist; create it with "
                                                "POST /teamup", message.msg_id)
        if authenticated not in members:
            raise ProtocolError("not_member", f"{authenticated!r} is not a member of chat {message.comm_id!r}",
                                message.msg_id)
        entry, duplicate = self.store.prepare(message, members)

        def answer(done: Appended, duplicate: bool = duplicate) -> None:
            if isinstance(done.error, ProtocolError):  # e.g. msg_id_reused, found only after publishing (NATS)
                reply(done.error)
            elif done.error is not None:
                reply(ProtocolError("unavailable", f"the message was not stored ({done.error}); send it again",
                                    message.msg_id))
            else:
                reply(SentFrame(msg_id=done.message.msg_id, comm_id=done.message.comm_id, seq=done.message.seq,
                                duplicate=duplicate or done.duplicate))

        if entry.settled:  # already stored (a retry after the commit's callback ran): answer now
            answer(entry)
        else:  # queued: answered by _fan_out, which runs on this loop after the commit
            entry.replies.append(answer)

    async def route(self, authenticated: str, message: AgentMessage, system: bool = False) -> SentFrame:
        """Validate, store (idempotently) and fan out ``message``; returns the ``sent`` acknowledgement."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()

        def reply(result: SentFrame | ProtocolError) -> None:
            if not future.done():
                future.set_result(result)

        self.submit(authenticated, message, reply, system)
        result = await future
        if isinstance(result, ProtocolError):
            raise result
        return result

    def _fan_out(self, entries: list[Appended]) -> None:
        """Event loop: push a committed batch to online members and viewers, then answer the senders."""
        for entry in entries:
            entry.settled = True
            if entry.error is None and not entry.fanned:  # fanned: only its sender is answered here (NATS)
                frame = deliver_frame(entry.gseq, entry.body)  # inbox id = gseq: one frame for every member
                for member in entry.members or self.store.members_cached(entry.message.comm_id):
                    conn = self.connections.get(member)
                    if conn is None or entry.gseq <= conn.floor:
                        continue  # offline (it replays on connect), or already in the backlog it replayed
                    if conn.offer(frame):
                        self.delivered += 1
                    elif conn.overflowed and self.connections.get(member) is conn:
                        self.slow_consumer_drops += 1
                        del self.connections[member]
                if self.viewers:  # the live page's frame only when someone watches
                    live = f'{{"op":"message","message":{entry.body}}}'
                    for visible, viewer in list(self.viewers):
                        if visible is None or entry.message.comm_id in visible:
                            viewer.offer(live)
            replies, entry.replies = entry.replies, []
            for answer in replies:
                answer(entry)

    def error_frame(self, err: ProtocolError) -> str:
        """The ``error`` frame for a rejected client frame."""
        return ErrorFrame(code=err.code, detail=err.detail, msg_id=err.msg_id).model_dump_json()
