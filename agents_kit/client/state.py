"""The client's own record of what it has handled: a processed cursor and the recently handled message ids.

The server keeps every agent's inbox and resumes a connection after the inbox id the client names in its
``hello``; this record is what the client names. With a ``path`` it is a small SQLite file (WAL), so a client
restarted after ``kill -9`` resumes where it stopped instead of replaying its inbox; without one it lives in
memory (tests, ephemeral agents: a new process then resumes after the server's acknowledged cursor, and up to
``ack_every`` messages handled just before a crash are handed to it again).

Each handled message is committed in one transaction with the cursor and, when the handler returned one, its
result: a crash either keeps all three or none, so a result is never recorded twice and never without its mark.
Handled ids are keyed by ``(sender, msg_id)`` (ids are unique per sender, not across agents) and kept for the
last ``keep_ids`` messages at or below the cursor; ids above the cursor (handled out of order, ``complete=
"manual"``) are never pruned, so a redelivery after a restart is always recognised.

Files: a missing file is a fresh start (created); a file that is not a client state database, or one written
for another agent, is a :class:`~shared.errors.DataError` naming the file (delete it to start fresh); a file
bound to another token (the agent was registered anew, e.g. on a new server database, whose inbox ids start
over) is reset with a warning, since its cursor would skip the new inbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.errors import DataError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1), inbox_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS handled (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,
    msg_id TEXT NOT NULL, inbox_id INTEGER NOT NULL, comm_id TEXT NOT NULL, seq INTEGER, result TEXT);
CREATE INDEX IF NOT EXISTS handled_by_id ON handled(sender, msg_id);
"""
SCHEMA_VERSION = "1"
MEMORY = ":memory:"


def default_state_path(server_url: str, agent: str) -> Path:
    """``<paperkits cache>/agents/<host>_<port>/<agent>.state.sqlite`` (next to the agent's token file)."""
    from shared.paths import cache_dir

    where = urlparse(server_url)
    return cache_dir("agents", f"{where.hostname}_{where.port}") / f"{agent}.state.sqlite"


def _token_digest(token: str) -> str:
    # salted differently from the server's token hash: the state file never holds what the server stores
    return hashlib.sha256(f"ioa-client-state:{token}".encode()).hexdigest()


class ClientState:
    """Processed cursor + recently handled ``(sender, msg_id)``; durable in SQLite when ``path`` is given.

    ``path=None`` (or ``":memory:"``) keeps it in memory. ``keep_ids`` bounds the handled ids kept below the
    cursor. ``fsync=True`` makes each commit survive a power cut too (``synchronous=FULL``); the default
    survives a process crash, which is what ``kill -9`` tests.
    """

    def __init__(self, path: str | Path | None = None, keep_ids: int = 10_000, fsync: bool = False):
        if keep_ids < 1:
            raise ValueError("keep_ids must be >= 1")
        self.path = None if path is None or str(path) == MEMORY else Path(path).expanduser()
        self.keep_ids = keep_ids
        self.cursor = 0
        self._ids: OrderedDict[tuple[str, str], int] = OrderedDict()  # (sender, msg_id) -> inbox_id, oldest first
        self._results: dict[tuple[str, str], Any] = {}  # memory mode only
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._commits = 0
        if self.path is not None:
            self._open(fsync)

    @property
    def durable(self) -> bool:
        """True when backed by a file."""
        return self.path is not None

    # --- opening ---------------------------------------------------------------------------------------
    def _open(self, fsync: bool) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_exclusive()
        fix = f"delete {self.path} to start fresh (the agent then resumes after the server's acknowledged cursor)"
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.executescript(SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if "schema" not in meta:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif meta["schema"] != SCHEMA_VERSION:
                raise DataError(f"{self.path} is a client state file of schema {meta['schema']}, this client "
                                f"needs {SCHEMA_VERSION}; {fix}")
            row = self._db.execute("SELECT inbox_id FROM cursor WHERE id=1").fetchone()
            self.cursor = int(row[0]) if row else 0
            # ids above the cursor first (never pruned), then the newest below it
            rows = self._db.execute("SELECT sender, msg_id, inbox_id FROM handled ORDER BY id").fetchall()
        except sqlite3.DatabaseError as err:
            self.close()
            raise DataError(f"{self.path} is not a usable IoA client state file ({err}); {fix}") from err
        except DataError:
            self.close()
            raise
        for sender, msg_id, inbox_id in rows:
            self._ids[(sender, msg_id)] = int(inbox_id)

    def _lock_exclusive(self) -> None:
        """One process per state file: a second client of the same agent would interleave two cursors."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows: no advisory lock, documented single-process use)
            return
        assert self.path is not None
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel when the process dies
        except OSError as err:
            os.close(fd)
            raise DataError(f"{self.path} is in use by another client process; run one client per agent, or "
                            f"give this one its own state file") from err
        self._lock_fd = fd

    def bind(self, agent: str, token: str) -> bool:
        """Tie the state to ``agent`` and its token; returns True when it was reset (a new registration)."""
        digest = _token_digest(token)
        if self._db is None:
            return False
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("agent", agent) != agent:
            raise DataError(f"{self.path} holds the state of agent {meta['agent']!r}, not {agent!r}; give each agent "
                            "its own state file")
        reset = "token" in meta and meta["token"] != digest
        if reset:
            log.warning("%s was written for another registration of %r (new server database?): starting fresh",
                        self.path, agent)
        with self._tx() as db:
            if reset:
                db.execute("DELETE FROM handled")
                db.execute("DELETE FROM cursor")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('agent', ?)", (agent,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('token', ?)", (digest,))
        if reset:
            self.cursor = 0
            self._ids.clear()
        return reset

    # --- handling ----------------------------------------------------------------------------------------
    def is_handled(self, sender: str, msg_id: str) -> bool:
        """True when this message (by sender and id) was already handled."""
        return (sender, msg_id) in self._ids

    def commit(self, cursor: int, handled: tuple[str, str, int, str, int | None] | None = None,
               result: Any = None) -> None:
        """Record ``handled`` = (sender, msg_id, inbox_id, comm_id, seq) with its result and move the cursor, atomically.

        ``result`` must be JSON-serialisable (it is checked before anything is written).
        """
        text = None if result is None else json.dumps(result)
        if self._db is not None:
            with self._tx() as db:
                if handled is not None:
                    db.execute("INSERT INTO handled (sender, msg_id, inbox_id, comm_id, seq, result) "
                               "VALUES (?,?,?,?,?,?)", (*handled, text))
                if cursor > self.cursor:
                    db.execute("INSERT INTO cursor VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET inbox_id=?",
                               (cursor, cursor))
                self._commits += 1
                if self._commits % max(1, self.keep_ids // 10) == 0:
                    self._prune_db(db, max(cursor, self.cursor))
        if handled is not None:
            key = (handled[0], handled[1])
            self._ids[key] = handled[2]
            if self._db is None and result is not None:
                self._results[key] = result
        self.cursor = max(self.cursor, cursor)
        if len(self._ids) > 2 * self.keep_ids:
            self._prune_memory()

    def _below_cursor(self) -> list[tuple[str, str]]:
        return [key for key, inbox_id in self._ids.items() if inbox_id <= self.cursor]

    def _prune_memory(self) -> None:
        below = self._below_cursor()
        for key in below[:max(0, len(below) - self.keep_ids)]:
            del self._ids[key]
            self._results.pop(key, None)

    def _prune_db(self, db: sqlite3.Connection, cursor: int) -> None:
        db.execute("DELETE FROM handled WHERE inbox_id<=? AND id NOT IN (SELECT id FROM handled WHERE inbox_id<=? "
                   "ORDER BY id DESC LIMIT ?)", (cursor, cursor, self.keep_ids))

    def result(self, sender: str, msg_id: str) -> Any:
        """The stored result of a handled message (None when it returned none or was pruned)."""
        if self._db is None:
            return self._results.get((sender, msg_id))
        row = self._db.execute("SELECT result FROM handled WHERE sender=? AND msg_id=? ORDER BY id DESC LIMIT 1",
                               (sender, msg_id)).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    def close(self) -> None:
        """Close the file and release its lock (idempotent)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _tx(self):
        return _Transaction(self._db)


def read_handled(path: str | Path) -> list[dict[str, Any]]:
    """Every handled record in a state file, in handling order (read-only; for audits while a client runs)."""
    path = Path(path)
    if not path.is_file():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT sender, msg_id, inbox_id, comm_id, seq, result FROM handled ORDER BY id").fetchall()
    finally:
        db.close()
    return [{"sender": s, "msg_id": m, "inbox_id": i, "comm_id": c, "seq": q,
             "result": None if r is None else json.loads(r)} for s, m, i, c, q, r in rows]


class _Transaction:
    def __init__(self, db: sqlite3.Connection | None):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        assert self.db is not None
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.db is not None
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
