"""The server's one repository class: agents, chats, members, messages and per-agent inboxes in SQLite (WAL).

Row-level writes in transactions replace the original's read-modify-write of pickled blobs (brief §6 bugs 5/6).
``synchronous=NORMAL`` in WAL mode survives a process crash (the kill tests): a commit is in the WAL file once
COMMIT returns, only an OS crash or power cut could lose it (brief §8.5).

Messages and acks go through one writer thread (group commit, issue 22): whatever queued while the previous
commit ran is written in one transaction, and a sender learns its message is stored only after that commit
returned. Per-chat seq and the store-wide inbox id are assigned in memory (recovered from the database at start)
in queue order, so commit order, seq order and inbox order agree.

This class's public methods are the storage backend interface the router, teaming and protocol code use (issue
19): ``server/nats_store.py``'s ``NatsStore`` implements it on NATS JetStream (several server processes over
the same agents), reusing this class as each process's local replica; ``app.make_store`` picks one by
``ServerConfig.backend``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents_kit.protocol import AgentMessage, AgentProfile, ChatInfo, ProtocolError
from agents_kit.server.tokens import tokenize
from shared.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (name TEXT PRIMARY KEY, type TEXT NOT NULL, desc TEXT NOT NULL,
    token_hash TEXT NOT NULL, created_at REAL NOT NULL, last_seen REAL);
CREATE TABLE IF NOT EXISTS comms (comm_id TEXT PRIMARY KEY, team_name TEXT NOT NULL, initiator TEXT NOT NULL,
    parent_comm_id TEXT, depth INTEGER NOT NULL, goal TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (comm_id TEXT NOT NULL, agent TEXT NOT NULL, PRIMARY KEY (comm_id, agent));
CREATE INDEX IF NOT EXISTS members_by_agent ON members(agent);
-- One row per message, whatever the team size: an agent's inbox is the messages of its chats in gseq order
-- (gseq is the inbox_id every member sees). Only the two indexes the queries need: chat order (chat record,
-- inbox, seq recovery; seq rises with gseq inside a chat) and the idempotency key (sender, msg_id).
CREATE TABLE IF NOT EXISTS messages (gseq INTEGER PRIMARY KEY, comm_id TEXT NOT NULL, seq INTEGER NOT NULL,
    sender TEXT NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages(comm_id, gseq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_sender ON messages(sender, msg_id);
CREATE TABLE IF NOT EXISTS cursors (agent TEXT PRIMARY KEY, acked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = "2"  # 2: one row per message (no per-member inbox rows), idempotency per (sender, msg_id)
# 1 KiB pages (set on a new file only): a message dirties ~3 scattered index pages per commit (random msg_ids,
# one page per chat), each written whole to the WAL and again at checkpoint; 4 KiB pages wrote 6x payload x
# recipients per message, 1 KiB pages 2.8x (issue 22, measured at 10k and 1M stored messages).
PAGE_SIZE = 1024
# WAL checkpoints run in their own thread and connection (PASSIVE: never blocking the writer), not inside a
# COMMIT holding the store lock; the checkpoint fsyncs there. The WAL file is cut back to this after a reset.
# Every 5 s (or 10,000 operations): pages rewritten by many commits in between are copied back once.
CHECKPOINT_INTERVAL_S = 5.0
CHECKPOINT_EVERY_OPS = 10_000
WAL_SIZE_LIMIT_BYTES = 64 << 20
SQLITE_MAX_INT = 2**63 - 1


def hash_token(token: str) -> str:
    """Tokens are stored hashed; a stolen database does not leak credentials."""
    return hashlib.sha256(token.encode()).hexdigest()


class Appended:
    """A message queued for (or found in) the store: what the router needs to fan it out and answer its sender.

    ``gseq`` is the inbox id every member sees; ``body`` the stored JSON (serialised once for all members);
    ``committed`` turns True when the commit holding it returned (``error`` set if it failed); ``replies`` and
    ``settled`` belong to the router (event-loop side).
    """

    __slots__ = ("message", "body", "gseq", "members", "committed", "error", "replies", "settled", "fanned",
                 "duplicate", "_cv")

    def __init__(self, message: AgentMessage, body: str, gseq: int, members: tuple[str, ...],
                 committed: threading.Condition, stored: bool = False):
        self.message, self.body, self.gseq, self.members = message, body, gseq, tuple(members)
        self.committed = stored
        self.error: BaseException | None = None
        self.replies: list[Callable[[Appended, bool], None]] = []
        self.settled = stored  # a message found already stored needs no fan-out
        # NATS backend: an entry that only answers its sender (the replica's own entry did the fan-out), and a
        # retry found to be a duplicate only after publishing (JetStream's Nats-Msg-Id de-duplication)
        self.fanned = False
        self.duplicate = False
        self._cv = committed  # the store's, notified once per batch (no per-message future)

    def wait(self, timeout: float | None = None) -> Appended:
        """Block until the commit holding this message returned (callers off the event loop)."""
        with self._cv:
            if not self._cv.wait_for(lambda: self.committed, timeout):
                raise TimeoutError(f"message {self.message.msg_id!r} not committed within {timeout} s")
        return self


_STOP = object()  # the writer's last queue item
_INSERT_SIZES = (256, 64, 16, 4, 1)  # a batch is inserted in chunks of these sizes (few cached statements)
_INSERT_SQL = {n: "INSERT INTO messages VALUES " + ",".join(["(?,?,?,?,?,?)"] * n) for n in _INSERT_SIZES}
_NOT_CONTENT = {"seq", "server_ts", "sent_at"}  # set by the server, or a clock a retry may legitimately renew


def _content(message: AgentMessage) -> dict[str, Any]:
    return message.model_dump(mode="json", exclude=_NOT_CONTENT)


def _bounded(value: int) -> int:
    """A cursor clamped to SQLite's integer range (a huge or negative one means "all" / "none", never an error)."""
    return max(0, min(int(value), SQLITE_MAX_INT))


class Store:
    """SQLite persistence for one server, thread-safe: messages and acks are committed in batches by the writer
    thread, every other write method is one transaction (under a lock)."""

    def __init__(self, path: str | Path, commit_delay_ms: float = 0.0, max_batch: int = 2000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            # the version is checked before the schema runs: an older layout must not half-apply this one
            has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if has_meta else None
            if row is not None and row[0] != SCHEMA_VERSION:
                raise DataError(f"{self.path} has schema {row[0]}, this server needs {SCHEMA_VERSION}; "
                                "use a new --db")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise DataError(f"{self.path} is not a usable IoA server database ({err}); "
                            "point --db at a new file or at one this server wrote") from err
        self._lock = threading.RLock()
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self._init_messages(commit_delay_ms, max_batch)
        self._init_consent()  # consent / invites / dead letters (the section at the end)

    def close(self) -> None:
        """Flush the writer queue, then close the database (the WAL is checkpointed by SQLite)."""
        self._stop_writer()
        with self._lock:
            self._db.close()
        self._close_readers()

    def _now(self) -> float:
        """The timestamp a replicated write stores (the NATS backend's replicas use the operation's own)."""
        return time.time()

    def _tx(self):
        # any committed transaction may have changed chat membership: drop the routing cache after it
        return _Transaction(self._db, self._lock, self._membership_changed)

    # --- agents ------------------------------------------------------------------------------------------
    def register(self, profile: AgentProfile, token: str | None) -> tuple[str, bool]:
        """Create an agent (new token) or update it when ``token`` matches; returns (token, created)."""
        with self._tx() as db:
            row = db.execute("SELECT token_hash FROM agents WHERE name=?", (profile.name,)).fetchone()
            if row is None:
                token = secrets.token_urlsafe(24)
                db.execute("INSERT INTO agents VALUES (?,?,?,?,?,NULL)", (profile.name, profile.type.value,
                           profile.desc, hash_token(token), time.time()))
                self._index_agent(db, profile)
                return token, True
            if token is None or not secrets.compare_digest(row[0], hash_token(token)):
                raise PermissionError(f"agent name {profile.name!r} is taken; re-register with its token or "
                                      "choose another name")
            db.execute("UPDATE agents SET type=?, desc=? WHERE name=?", (profile.type.value, profile.desc,
                                                                         profile.name))
            self._index_agent(db, profile)
            return token, False

    def authenticate(self, name: str, token: str) -> bool:
        """True when ``token`` belongs to agent ``name``."""
        with self._lock:
            row = self._db.execute("SELECT token_hash FROM agents WHERE name=?", (name,)).fetchone()
        return row is not None and secrets.compare_digest(row[0], hash_token(token or ""))

    def agent_for_token(self, token: str) -> str | None:
        """The agent a token belongs to (None when unknown)."""
        with self._lock:
            row = self._db.execute("SELECT name FROM agents WHERE token_hash=?", (hash_token(token),)).fetchone()
        return row[0] if row else None

    def touch(self, name: str) -> None:
        """Record that ``name`` was seen now."""
        with self._tx() as db:
            db.execute("UPDATE agents SET last_seen=? WHERE name=?", (time.time(), name))

    def agents(self, names: list[str] | None = None) -> list[AgentProfile]:
        """Profiles of ``names`` (all agents when None), in registration order."""
        with self._lock:
            rows = self._db.execute("SELECT name, type, desc FROM agents ORDER BY created_at, name").fetchall()
        profiles = [AgentProfile(name=n, type=t, desc=d) for n, t, d in rows]
        if names is None:
            return profiles
        wanted = set(names)
        return [p for p in profiles if p.name in wanted]

    # --- chats -------------------------------------------------------------------------------------------
    def create_comm(self, comm_id: str, team_name: str, initiator: str, members: list[str], goal: str,
                    parent_comm_id: str | None, depth: int) -> None:
        """Create a chat and its member list in one transaction."""
        with self._tx() as db:
            db.execute("INSERT INTO comms VALUES (?,?,?,?,?,?,?)", (comm_id, team_name, initiator, parent_comm_id,
                                                                   depth, goal, self._now()))
            db.executemany("INSERT OR IGNORE INTO members VALUES (?,?)", [(comm_id, m) for m in members])

    def comm(self, comm_id: str) -> ChatInfo | None:
        """A chat's metadata, or None."""
        with self._lock:
            row = self._db.execute("SELECT comm_id, team_name, initiator, parent_comm_id, depth, goal, created_at "
                                   "FROM comms WHERE comm_id=?", (comm_id,)).fetchone()
            if row is None:
                return None
            count = self._db.execute("SELECT COUNT(*) FROM messages WHERE comm_id=?", (comm_id,)).fetchone()[0]
        return ChatInfo(comm_id=row[0], team_name=row[1], initiator=row[2], parent_comm_id=row[3], depth=row[4],
                        goal=row[5], created_at=row[6], members=self.members(comm_id), messages=count)

    def members(self, comm_id: str) -> list[str]:
        """Member names of a chat (sorted)."""
        with self._lock:
            rows = self._db.execute("SELECT agent FROM members WHERE comm_id=? ORDER BY agent", (comm_id,)).fetchall()
        return [r[0] for r in rows]

    def comms(self, agent: str | None = None) -> list[ChatInfo]:
        """Chats ``agent`` belongs to (all chats when None), oldest first."""
        with self._lock:
            if agent is None:
                ids = [r[0] for r in self._db.execute("SELECT comm_id FROM comms ORDER BY created_at")]
            else:
                ids = [r[0] for r in self._db.execute(
                    "SELECT c.comm_id FROM comms c JOIN members m ON c.comm_id=m.comm_id WHERE m.agent=? "
                    "ORDER BY c.created_at", (agent,))]
        return [info for info in (self.comm(i) for i in ids) if info is not None]

    # --- messages and inboxes ----------------------------------------------------------------------------
    # Hot path (issue 22): the event loop calls ``prepare`` (dedup, seq, serialise, enqueue: no commit) and the
    # writer thread commits batches; reads use one connection per thread, so a WAL reader never waits for it.
    def _init_messages(self, commit_delay_ms: float, max_batch: int) -> None:
        self._readers = threading.local()
        self._reader_list: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._prep_lock = threading.Lock()  # dedup + seq/inbox id + enqueue are one step: queue order = id order
        self._pending: dict[tuple[str, str], Appended] = {}  # (sender, msg_id) queued, not yet committed
        self._seqs: dict[str, int] = {}  # comm_id -> last assigned seq (read from the database on first use)
        self._acked: dict[str, int] = {}
        self._members_cache: dict[str, tuple[str, ...]] = {}
        self._counts: dict[str, int] | None = None
        with self._lock:
            self._gseq = int(self._db.execute("SELECT COALESCE(MAX(gseq), 0) FROM messages").fetchone()[0])
        self.on_commit: Callable[[list[Appended]], None] | None = None  # called in the writer thread
        self.commits = 0  # transactions the writer committed, and the operations they held (benchmark)
        self.committed_ops = 0
        self._checkpoint_ops = 0
        self._delay = max(0.0, commit_delay_ms) / 1000.0
        self._max_batch = max(1, int(max_batch))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._committed_cv = threading.Condition()
        self._closed = False
        self._checkpoint_now = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ioa-store-writer", daemon=True)
        self._writer.start()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="ioa-store-checkpoint",
                                              daemon=True)
        self._checkpointer.start()

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            with self._readers_lock:
                self._reader_list.append(db)
        return db

    def _close_readers(self) -> None:
        with self._readers_lock:
            readers, self._reader_list = self._reader_list, []
        for db in readers:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _membership_changed(self) -> None:
        # replaced after the commit: a fill racing it writes into the discarded dict, never a stale entry here
        self._members_cache = {}

    def members_cached(self, comm_id: str) -> tuple[str, ...]:
        """Member names of a chat (sorted; empty for an unknown chat), read once and then kept in memory."""
        cache = self._members_cache
        members = cache.get(comm_id)
        if members is None:
            members = tuple(r[0] for r in self._reader().execute(
                "SELECT agent FROM members WHERE comm_id=? ORDER BY agent", (comm_id,)).fetchall())
            if members:
                cache[comm_id] = members
        return members

    def _known_duplicate(self, message: AgentMessage, members: tuple[str, ...]) -> Appended | None:
        """The entry already pending or stored under ``message``'s (sender, msg_id), or None; a different content
        under the same id raises ``msg_id_reused``. Callers hold ``_prep_lock`` (both backends share this rule)."""
        key = (message.sender, message.msg_id)
        entry = self._pending.get(key)
        if entry is None:
            row = self._reader().execute("SELECT gseq, body FROM messages WHERE sender=? AND msg_id=?",
                                         key).fetchone()
            if row is not None:
                entry = Appended(AgentMessage.model_validate_json(row[1]), row[1], row[0], members,
                                 self._committed_cv, stored=True)
        if entry is not None and _content(entry.message) != _content(message):
            raise ProtocolError("msg_id_reused", f"msg_id {message.msg_id!r} was already used by "
                                f"{message.sender!r} for a different message; resend the same message to "
                                "retry, or give a new message a new msg_id", message.msg_id)
        return entry

    def prepare(self, message: AgentMessage, members: tuple[str, ...] = ()) -> tuple[Appended, bool]:
        """Queue ``message`` for the next group commit, or find it already queued or stored.

        Returns (entry, duplicate). A new message gets its chat's next seq and the next inbox id and is
        serialised once, here; ``entry.committed`` turns True once the commit holding it returned. A known
        (sender, msg_id) is an idempotent retry: its entry comes back with ``duplicate=True`` — unless the
        content differs, which raises :class:`ProtocolError` ``msg_id_reused`` (nothing is stored, and the
        answer names no chat or seq of the first message).
        """
        key = (message.sender, message.msg_id)
        with self._prep_lock:
            if self._closed:
                raise ProtocolError("unavailable", "the server is shutting down; send again after it restarts",
                                    message.msg_id)
            entry = self._known_duplicate(message, members)
            if entry is not None:
                return entry, True
            seq = self._seqs.get(message.comm_id)
            if seq is None:
                row = self._reader().execute("SELECT seq FROM messages WHERE comm_id=? ORDER BY gseq DESC LIMIT 1",
                                             (message.comm_id,)).fetchone()
                seq = int(row[0]) if row else 0
            self._seqs[message.comm_id] = seq = seq + 1
            self._gseq += 1
            stored = message.model_copy(update={"seq": seq, "server_ts": time.time()})
            entry = Appended(stored, stored.model_dump_json(), self._gseq, members, self._committed_cv)
            self._pending[key] = entry
            self._queue.put(entry)
        return entry, False

    def append(self, message: AgentMessage) -> tuple[AgentMessage, list[tuple[str, int]], bool]:
        """Store ``message`` and wait until it is committed; returns (stored, [(member, inbox_id)], duplicate).

        The blocking form of :meth:`prepare` (tests, scripts); the server answers from the commit callback
        instead. A retry of a known (sender, msg_id) returns the stored message and no inbox entries.
        """
        members = self.members_cached(message.comm_id)
        entry, duplicate = self.prepare(message, members)
        entry.wait()
        if entry.error is not None:
            raise DataError(f"message {message.msg_id!r} was not stored: {entry.error}") from entry.error
        return entry.message, ([] if duplicate else [(m, entry.gseq) for m in members]), duplicate

    def _write_loop(self) -> None:
        while True:
            ops = [self._queue.get()]
            if self._delay and ops[0] is not _STOP:
                time.sleep(self._delay)  # linger so a light load still makes batches (fewer, fuller pages)
            while len(ops) < self._max_batch:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(op is _STOP for op in ops)
            self._commit([op for op in ops if op is not _STOP])
            if stop:
                return

    def _commit(self, ops: list[Any]) -> None:
        if not ops:
            return
        entries = [op for op in ops if type(op) is Appended]
        acks: dict[str, int] = {}
        for op in ops:
            if type(op) is tuple:  # (agent, inbox_id): cumulative, so only the highest per agent is written
                acks[op[0]] = max(op[1], acks.get(op[0], 0))
        error = None
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    start = 0
                    while start < len(entries):  # few multi-row statements: one GIL release each, not per row
                        size = next(n for n in _INSERT_SIZES if n <= len(entries) - start)
                        self._db.execute(_INSERT_SQL[size], [
                            x for e in entries[start:start + size]
                            for x in (e.gseq, e.message.comm_id, e.message.seq, e.message.sender, e.message.msg_id,
                                      e.body)])
                        start += size
                    if acks:
                        self._db.executemany("INSERT INTO cursors VALUES (?, ?) ON CONFLICT(agent) DO UPDATE "
                                             "SET acked=MAX(acked, excluded.acked)", list(acks.items()))
                    self._db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
                self.commits += 1
                self.committed_ops += len(ops)
                if self.committed_ops - self._checkpoint_ops >= CHECKPOINT_EVERY_OPS:
                    self._checkpoint_ops = self.committed_ops
                    self._checkpoint_now.set()
                if self._counts is not None:
                    self._counts["messages"] += len(entries)
                    self._counts["inbox"] += sum(len(e.members) for e in entries)
        except Exception as err:  # noqa: BLE001 - reported to each sender; the writer must keep running
            if len(ops) > 1:  # one bad operation must not fail its batch: commit each on its own
                for op in ops:
                    self._commit([op])
                return
            error = err
        with self._prep_lock:  # before the callback: a retry arriving now finds the committed row
            for e in entries:
                self._pending.pop((e.message.sender, e.message.msg_id), None)
        with self._committed_cv:
            for e in entries:
                e.error, e.committed = error, True
            self._committed_cv.notify_all()
        hook = self.on_commit
        if hook is not None and entries:
            with contextlib.suppress(Exception):
                hook(entries)

    def _checkpoint_loop(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            seen = None
            while not self._closed:
                self._checkpoint_now.wait(CHECKPOINT_INTERVAL_S)
                self._checkpoint_now.clear()
                with contextlib.suppress(sqlite3.Error):  # busy: the next round does it
                    version = db.execute("PRAGMA data_version").fetchone()[0]  # moves when another one commits
                    if version != seen and not self._closed:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        seen = version
        finally:
            db.close()

    def _stop_writer(self) -> None:
        with self._prep_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._writer.join()
        self._checkpoint_now.set()
        self._checkpointer.join()

    def chat_record(self, comm_id: str, after_seq: int = 0) -> list[AgentMessage]:
        """Messages of a chat in seq order."""
        rows = self._reader().execute("SELECT body FROM messages WHERE comm_id=? AND seq>? ORDER BY gseq",
                                      (comm_id, _bounded(after_seq))).fetchall()
        return [AgentMessage.model_validate_json(r[0]) for r in rows]

    def inbox_raw(self, agent: str, after: int, limit: int | None = None) -> list[tuple[int, str]]:
        """``agent``'s inbox entries after ``after`` as (inbox_id, message JSON): its chats' messages, in order."""
        return self._reader().execute(
            "SELECT gseq, body FROM messages WHERE comm_id IN (SELECT comm_id FROM members WHERE agent=?) "
            "AND gseq>? ORDER BY gseq LIMIT ?", (agent, _bounded(after), -1 if limit is None else limit)).fetchall()

    def inbox_after(self, agent: str, after: int, limit: int = 100_000) -> list[tuple[int, AgentMessage]]:
        """``agent``'s inbox entries with inbox_id > ``after``, in order."""
        return [(i, AgentMessage.model_validate_json(body)) for i, body in self.inbox_raw(agent, after, limit)]

    def ack(self, agent: str, inbox_id: int) -> None:
        """Move ``agent``'s acknowledged cursor forward (never back); written with the next group commit.

        Acks are cumulative, so a lost one (crash before its commit) only means a redelivery the client drops.
        """
        inbox_id = _bounded(inbox_id)
        with self._prep_lock:
            if self._closed or inbox_id <= self._acked_locked(agent):
                return
            self._acked[agent] = inbox_id
            self._queue.put((agent, inbox_id))

    def _acked_locked(self, agent: str) -> int:
        value = self._acked.get(agent)
        if value is None:
            row = self._reader().execute("SELECT acked FROM cursors WHERE agent=?", (agent,)).fetchone()
            value = self._acked[agent] = int(row[0]) if row else 0
        return value

    def acked(self, agent: str) -> int:
        """``agent``'s acknowledged cursor (0 when it never acked)."""
        with self._prep_lock:
            return self._acked_locked(agent)

    def stats(self) -> dict[str, Any]:
        """Counts for ``/health`` and ``/metrics``; ``inbox`` is deliveries stored (each message × its members)."""
        with self._lock:  # counted once with the writer held off, then kept by the writer
            if self._counts is None:
                self._counts = {
                    "messages": self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
                    "inbox": self._db.execute("SELECT COUNT(*) FROM messages m JOIN members b "
                                              "ON b.comm_id = m.comm_id").fetchone()[0]}
            counts = dict(self._counts)
        reader = self._reader()
        return {"agents": reader.execute("SELECT COUNT(*) FROM agents").fetchone()[0],
                "comms": reader.execute("SELECT COUNT(*) FROM comms").fetchone()[0], **counts,
                "commits": self.commits, "committed_ops": self.committed_ops}

    def dump(self) -> str:
        """A JSON dump of all chats (for debugging and the live page)."""
        return json.dumps({c.comm_id: [m.model_dump(mode="json") for m in self.chat_record(c.comm_id)]
                           for c in self.comms()})

    # --- agent search index (SQLite FTS5; ranked by registry.FTS5Search) ---------------------------------
    # A derived copy of ``agents``. Documents are tokens.tokenize(name + desc) joined by spaces, so FTS5's
    # unicode61 tokenizer sees exactly the Python BM25's tokens. ``agent_docs`` gives each name a stable
    # INTEGER PRIMARY KEY as FTS rowid (``agents``' implicit rowids may change under VACUUM), assigned in
    # registration order, which is the tie-break. ``register`` updates it inside its own transaction; in each
    # process the first use creates it, or rebuilds it when its size disagrees with ``agents`` (a database
    # written before the index existed).
    _search_synced = False

    @staticmethod
    def _search_doc(name: str, desc: str) -> str:
        return " ".join(tokenize(f"{name} {desc}"))

    def _sync_search_index(self, db: sqlite3.Connection, pending: str | None = None) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS agent_docs (docid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS agent_fts USING fts5(doc, tokenize='unicode61')")
        # ``pending`` is being registered right now and is not indexed yet: leave it out of both counts
        n_agents = db.execute("SELECT COUNT(*) FROM agents WHERE name IS NOT ?", (pending,)).fetchone()[0]
        n_docs = db.execute("SELECT COUNT(*) FROM agent_docs WHERE name IS NOT ?", (pending,)).fetchone()[0]
        if n_agents != n_docs:
            db.execute("DELETE FROM agent_docs")
            db.execute("DELETE FROM agent_fts")
            rows = db.execute("SELECT name, desc FROM agents ORDER BY created_at, name").fetchall()
            db.executemany("INSERT INTO agent_docs (docid, name) VALUES (?, ?)",
                           [(i, name) for i, (name, _) in enumerate(rows, 1)])
            db.executemany("INSERT INTO agent_fts (rowid, doc) VALUES (?, ?)",
                           [(i, self._search_doc(name, desc)) for i, (name, desc) in enumerate(rows, 1)])
        self._search_synced = True

    def _index_agent(self, db: sqlite3.Connection, profile: AgentProfile) -> None:
        """Add or refresh ``profile``'s search document, inside the caller's (``register``'s) transaction."""
        if not self._search_synced:
            self._sync_search_index(db, pending=profile.name)
        db.execute("INSERT INTO agent_docs (name) VALUES (?) ON CONFLICT(name) DO NOTHING", (profile.name,))
        docid = db.execute("SELECT docid FROM agent_docs WHERE name=?", (profile.name,)).fetchone()[0]
        db.execute("INSERT OR REPLACE INTO agent_fts (rowid, doc) VALUES (?, ?)",
                   (docid, self._search_doc(profile.name, profile.desc)))

    def search_agents(self, tokens: list[str], k: int, among: list[str] | None = None
                      ) -> list[tuple[AgentProfile, float]]:
        """The top ``k`` agents by FTS5 ``bm25()`` for documents holding any of ``tokens`` (only ``among`` when
        given), best first, as (profile, -bm25) pairs; ties in registration order."""
        tokens = [t for t in tokens if t]
        if not tokens or k < 1 or (among is not None and not among):
            return []
        if not self._search_synced:
            with self._tx() as db:
                self._sync_search_index(db)
        # each token is one quoted FTS5 string (quotes doubled), so nothing a user typed is query syntax
        params: list[Any] = [" OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)]
        narrow = ""
        if among is not None:
            narrow = " AND rowid IN (SELECT docid FROM agent_docs WHERE name IN (SELECT value FROM json_each(?)))"
            params.append(json.dumps(among))
        sql = ("SELECT a.name, a.type, a.desc, -h.score FROM (SELECT rowid AS docid, bm25(agent_fts) AS score "
               f"FROM agent_fts WHERE agent_fts MATCH ?{narrow} ORDER BY score, rowid LIMIT ?) AS h "
               "JOIN agent_docs d ON d.docid = h.docid JOIN agents a ON a.name = d.name ORDER BY h.score, h.docid")
        rows = self._reader().execute(sql, [*params, k]).fetchall()  # a WAL reader: never holds up the writer
        return [(AgentProfile(name=n, type=t, desc=d), float(score)) for n, t, d, score in rows]

    # --- consent, invites and dead letters (issue 22, security) ------------------------------------------
    # Own tables, created by ``_init_consent`` (IF NOT EXISTS: older databases gain them at start). A pending
    # team-up lives in ``pending_teams`` + ``invites`` until it is settled; only then does the chat exist, so
    # nothing of it reaches an invitee's inbox before the invitee said yes.
    _CONSENT_SCHEMA = """
    CREATE TABLE IF NOT EXISTS consent (agent TEXT PRIMARY KEY, accept_from TEXT NOT NULL,
        allow_invites INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS pending_teams (comm_id TEXT PRIMARY KEY, initiator TEXT NOT NULL, spec TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS invites (comm_id TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL,
        answered_at REAL, PRIMARY KEY (comm_id, agent));
    CREATE INDEX IF NOT EXISTS invites_by_agent ON invites(agent, status);
    CREATE TABLE IF NOT EXISTS dead_letters (agent TEXT NOT NULL, inbox_id INTEGER NOT NULL, reason TEXT NOT NULL,
        ts REAL NOT NULL, PRIMARY KEY (agent, inbox_id));
    """

    def _init_consent(self) -> None:
        with self._lock:
            self._db.executescript(self._CONSENT_SCHEMA)

    def set_consent(self, agent: str, accept_from: list[str] | None, allow_invites: bool | None
                    ) -> tuple[list[str], bool]:
        """Update ``agent``'s team-up consent (None keeps a field); returns (accept_from, allow_invites)."""
        current = self.consent([agent])[agent]
        new = (sorted(set(accept_from)) if accept_from is not None else current[0],
               current[1] if allow_invites is None else bool(allow_invites))
        if new != current or accept_from is not None or allow_invites is not None:
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO consent VALUES (?,?,?)", (agent, json.dumps(new[0]), int(new[1])))
        return new

    def consent(self, names: list[str]) -> dict[str, tuple[list[str], bool]]:
        """(accept_from, allow_invites) per name; agents that never declared one: ([], True) = invite only."""
        with self._lock:
            rows = self._db.execute("SELECT agent, accept_from, allow_invites FROM consent WHERE agent IN "
                                    "(SELECT value FROM json_each(?))", (json.dumps(names),)).fetchall()
        out: dict[str, tuple[list[str], bool]] = {n: ([], True) for n in names}
        out.update({agent: (json.loads(accept), bool(allow)) for agent, accept, allow in rows})
        return out

    def create_pending_team(self, comm_id: str, initiator: str, spec: dict[str, Any], expires_at: float,
                            invitees: list[str]) -> None:
        """A team-up waiting for ``invitees`` to answer (one transaction)."""
        with self._tx() as db:
            db.execute("INSERT INTO pending_teams VALUES (?,?,?,?,?)", (comm_id, initiator, json.dumps(spec),
                                                                       self._now(), expires_at))
            db.executemany("INSERT INTO invites VALUES (?,?,'pending',NULL)", [(comm_id, a) for a in invitees])

    def pending_team(self, comm_id: str) -> tuple[str, dict[str, Any], float, dict[str, str]] | None:
        """(initiator, spec, expires_at, {invitee: status}) of a pending team-up, or None."""
        with self._lock:
            row = self._db.execute("SELECT initiator, spec, expires_at FROM pending_teams WHERE comm_id=?",
                                   (comm_id,)).fetchone()
            if row is None:
                return None
            statuses = dict(self._db.execute("SELECT agent, status FROM invites WHERE comm_id=?", (comm_id,)))
        return row[0], json.loads(row[1]), float(row[2]), statuses

    def pending_teams(self) -> list[tuple[str, float]]:
        """(comm_id, expires_at) of every pending team-up."""
        with self._lock:
            return [(c, float(e)) for c, e in self._db.execute("SELECT comm_id, expires_at FROM pending_teams")]

    def invites_for(self, agent: str) -> list[tuple[str, str, dict[str, Any], float]]:
        """``agent``'s unanswered invites: (comm_id, initiator, spec, expires_at), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.comm_id, p.initiator, p.spec, p.expires_at FROM invites i JOIN pending_teams p "
                "ON p.comm_id=i.comm_id WHERE i.agent=? AND i.status='pending' ORDER BY p.created_at",
                (agent,)).fetchall()
        return [(c, i, json.loads(s), float(e)) for c, i, s, e in rows]

    def answer_invite(self, comm_id: str, agent: str, accept: bool) -> int | None:
        """Record an answer; returns how many invitees of the team still have to answer (None: no such invite)."""
        with self._tx() as db:
            cur = db.execute("UPDATE invites SET status=?, answered_at=? WHERE comm_id=? AND agent=? AND "
                             "status='pending'", ("accepted" if accept else "declined", self._now(), comm_id, agent))
            if cur.rowcount == 0:
                return None
            return db.execute("SELECT COUNT(*) FROM invites WHERE comm_id=? AND status='pending'",
                              (comm_id,)).fetchone()[0]

    def close_pending_team(self, comm_id: str) -> None:
        """The team is settled: unanswered invites expire, the pending entry goes."""
        with self._tx() as db:
            db.execute("UPDATE invites SET status='expired', answered_at=? WHERE comm_id=? AND status='pending'",
                       (self._now(), comm_id))
            db.execute("DELETE FROM pending_teams WHERE comm_id=?", (comm_id,))

    def dead_letter(self, agent: str, inbox_id: int, reason: str) -> None:
        """Record that ``agent``'s inbox entry ``inbox_id`` could not be delivered and was skipped."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO dead_letters VALUES (?,?,?,?)", (agent, inbox_id, reason, self._now()))

    def security_stats(self) -> dict[str, int]:
        """Counts for the admin's ``/health``: pending invites and dead letters."""
        with self._lock:
            return {"pending_invites": self._db.execute("SELECT COUNT(*) FROM invites WHERE status='pending'"
                                                        ).fetchone()[0],
                    "dead_letters": self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]}


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, after: Callable[[], None] | None = None):
        self.db, self.lock, self.after = db, lock, after

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
        if self.after is not None and exc_type is None:
            self.after()
