"""The IoA store on NATS JetStream: several server processes serve the same agents (issue 19).

The backend interface is :class:`~agents_kit.server.store.Store`'s public methods (routing, teaming and the
protocol are written once against it); this class implements it with JetStream holding everything durable:

* record: one stream ``IOA_<ns>`` (file storage, ``replicas`` copies in a cluster) with subjects
  ``<ns>.rec.<comm_id>`` (messages, published with ``Nats-Msg-Id`` = a hash of (sender, msg_id), so a retry to
  any server inside the duplicate window is stored once) and ``<ns>.ctl`` (chat, consent, invite and
  dead-letter operations). The stream sequence is the inbox id; a chat's ``seq`` is assigned by counting the
  chat's messages in stream order, so every server assigns the same one without coordination (a duplicate
  older than the window is recognised by (sender, msg_id) in stream order and skipped, identically everywhere).
* registry: a JetStream key-value bucket ``<ns>_agents`` (one key per agent; first registration is a
  ``create``, a profile update a compare-and-set ``update``, so two servers cannot both hand out one name);
  cursors (cumulative acks) in the bucket ``<ns>_cursors``.
* every server keeps a local SQLite replica (a temporary file, rebuilt from the stream at start) fed by an
  ordered consumer and a key-value watcher: the SQLite :class:`Store` code answers reads (inbox, chat record,
  FTS5 search, consent) and its commit callback drives the router's fan-out to this server's connections, so
  the SQLite backend's replay rule (backlog or live push, never both, never neither) holds per server.

Consistency: a write (message, control operation, registration) returns only after JetStream acknowledged it
*and* this server's replica applied it (read-your-writes; a sender's ``sent`` means stored in JetStream).
Other servers see it once their replica applied it (milliseconds); reads that could wrongly answer "unknown"
(a token, a chat's members, the agent list) first catch up with the stream's last sequence.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from agents_kit.protocol import AgentMessage, AgentProfile, ProtocolError
from agents_kit.server.store import Appended, Store, _bounded, _content, hash_token
from shared.errors import ConfigError, DataError

log = logging.getLogger(__name__)
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
HEARTBEAT_S = 0.5  # consumer idle heartbeat: a stalled consumer (nats-server restarted) is noticed after ~2 of them
# the replicated control operations: each is applied by every replica with the SQLite Store's own method
_CTL_OPS = ("create_comm", "set_consent", "create_pending_team", "answer_invite", "close_pending_team",
            "dead_letter")


def _key(name: str) -> str:
    """A KV key / subject token for ``name``: itself when it is plain, else ``x.<hex>`` (never collides)."""
    return name if _TOKEN.fullmatch(name) else "x." + name.encode("utf-8", "surrogatepass").hex()


def _msg_id(message: AgentMessage) -> str:
    return hashlib.sha256(json.dumps([message.sender, message.msg_id]).encode()).hexdigest()


class NatsStore(Store):
    """JetStream-backed store (``paperkits agents server --backend nats://HOST:PORT``)."""

    def __init__(self, url: str, namespace: str = "ioa", replicas: int = 1, dedup_window_s: float = 120.0,
                 publish_timeout_s: float = 10.0, connect_timeout_s: float = 10.0,
                 replica_dir: str | Path | None = None):
        try:
            import nats  # noqa: F401
        except ImportError as err:
            raise ConfigError("the NATS backend needs nats-py: pip install 'paperkits[agents]'") from err
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(f"nats_namespace {namespace!r} must be 1-32 characters of [A-Za-z0-9_-]")
        if replicas < 1 or replicas > 5:
            raise ConfigError(f"nats_replicas must be 1..5 (JetStream's limit), got {replicas}")
        self.url, self.ns, self.replicas = url, namespace, int(replicas)
        self.stream = f"IOA_{namespace}"
        self._dedup_window_s, self._publish_timeout_s = float(dedup_window_s), float(publish_timeout_s)
        if replica_dir is not None:
            Path(replica_dir).mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.mkdtemp(prefix="ioa-replica-", dir=replica_dir)
        self._op_ts: float | None = None
        self._applied = 0  # the last record-stream sequence the replica applied
        self._agents_applied = 0  # the last registry revision the replica applied
        self._applied_cv = threading.Condition()
        self._waiting: dict[int, list[Appended]] = {}  # stream seq -> entries published here, awaiting the replica
        self._results: OrderedDict[int, Any] = OrderedDict()  # ctl seq -> result (or exception) of applying it
        self._chat_seqs: dict[str, int] = {}
        self._nats_closed = False
        super().__init__(Path(self._tmp) / "replica.db")
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ioa-nats-apply")
        self._nloop = asyncio.new_event_loop()
        self._nthread = threading.Thread(target=self._nloop.run_forever, name="ioa-nats", daemon=True)
        self._nthread.start()
        try:
            self._call(self._start(connect_timeout_s), connect_timeout_s + 30)
        except Exception as err:
            self.close()
            raise ConfigError(f"cannot use NATS JetStream at {url}: {err!r} (start nats-server -js, or check "
                              "--backend)") from err

    # --- the NATS side (its own event loop thread) ----------------------------------------------------------
    def _call(self, coro: Any, timeout: float | None = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._nloop).result(timeout)

    async def _start(self, connect_timeout_s: float) -> None:
        import nats
        from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        # reconnects forever once connected (nats-server restarting), but the first connect fails in time
        servers = [u.strip() for u in self.url.split(",") if u.strip()]  # a NATS cluster: any of its nodes
        self._nc = await asyncio.wait_for(nats.connect(
            servers, connect_timeout=connect_timeout_s, max_reconnect_attempts=-1, reconnect_time_wait=0.25,
            allow_reconnect=True, error_cb=self._nats_error, disconnected_cb=self._nats_disconnected,
            reconnected_cb=self._nats_reconnected), connect_timeout_s)
        self._js = self._nc.jetstream(timeout=5.0)
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(
                name=self.stream, subjects=[f"{self.ns}.rec.*", f"{self.ns}.ctl"], storage=StorageType.FILE,
                num_replicas=self.replicas, duplicate_window=self._dedup_window_s))
        buckets = []
        for bucket in (f"{self.ns}_agents", f"{self.ns}_cursors"):
            try:
                buckets.append(await self._js.key_value(bucket))
            except NotFoundError:
                buckets.append(await self._js.create_key_value(KeyValueConfig(
                    bucket=bucket, history=1, storage=StorageType.FILE, replicas=self.replicas)))
        self._agents_kv, self._cursors_kv = buckets
        self._inq: asyncio.Queue = asyncio.Queue()
        # ordered consumers (the stream, and the registry bucket's stream: a watcher of our own, as nats-py's KV
        # watcher took ~20 s to resume after a nats-server restart): missed heartbeats make them resume from the
        # last sequence they delivered, so a restart costs about two heartbeats
        self._sub = await self._js.subscribe(f"{self.ns}.>", stream=self.stream, cb=self._on_record,
                                             ordered_consumer=True, deliver_policy=DeliverPolicy.ALL,
                                             idle_heartbeat=HEARTBEAT_S)
        self._agents_sub = await self._js.subscribe(
            f"$KV.{self.ns}_agents.>", stream=f"KV_{self.ns}_agents", cb=self._on_agent, ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, idle_heartbeat=HEARTBEAT_S)
        self._tasks = [asyncio.get_running_loop().create_task(self._apply_loop())]
        last = (await self._js.stream_info(self.stream)).state.last_seq
        agents_last = (await self._js.stream_info(f"KV_{self.ns}_agents")).state.last_seq
        while self._applied < last or self._agents_applied < agents_last:  # caught up before serving
            await asyncio.sleep(0.01)

    async def _on_record(self, msg: Any) -> None:
        self._inq.put_nowait((msg.metadata.sequence.stream, msg.subject, msg.data))

    async def _apply_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._inq.get()]
            while len(batch) < 2000 and not self._inq.empty():
                batch.append(self._inq.get_nowait())
            try:
                await loop.run_in_executor(self._pool, self._apply, batch)
            except Exception:  # noqa: BLE001 - a replica bug must not stop the server from applying what follows
                log.exception("applying records %s..%s failed", batch[0][0], batch[-1][0])

    async def _on_agent(self, msg: Any) -> None:
        deleted = (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._apply_agent,
                                                         b"" if deleted else msg.data, msg.metadata.sequence.stream)

    async def _nats_error(self, err: Exception) -> None:
        log.debug("nats: %r", err)  # reconnect attempts while nats-server is down: not errors of this server

    async def _nats_disconnected(self) -> None:
        if not self._nats_closed:
            log.warning("disconnected from NATS at %s; reconnecting (sends wait up to %.0f s)", self.url,
                        self._publish_timeout_s)

    async def _nats_reconnected(self) -> None:
        log.warning("reconnected to NATS at %s", self.url)

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> Any:
        """Publish until JetStream acknowledges (retries keep ``Nats-Msg-Id``, so a lost ack stores nothing
        twice) or ``publish_timeout_s`` ran out."""
        deadline = time.monotonic() + self._publish_timeout_s
        while True:
            try:
                return await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id},
                                              timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            except Exception:
                if time.monotonic() >= deadline or self._nats_closed:
                    raise
                await asyncio.sleep(0.1)

    async def _publish_message(self, entry: Appended) -> None:
        message = entry.message
        try:
            ack = await self._publish(f"{self.ns}.rec.{_key(message.comm_id)}", entry.body.encode(),
                                      _msg_id(message))
        except Exception as err:  # noqa: BLE001 - reported to the sender as "unavailable"
            self._settle_entries([entry], error=err)
            return
        entry.duplicate, entry.gseq = bool(ack.duplicate), int(ack.seq)
        with self._applied_cv:
            if ack.seq > self._applied:
                self._waiting.setdefault(ack.seq, []).append(entry)
                return
        self._settle_entries([entry])

    async def _shutdown(self) -> None:
        self._nats_closed = True  # (a start that failed half-way has only some of these)
        for task in getattr(self, "_tasks", []):
            task.cancel()
        for sub in (getattr(self, "_sub", None), getattr(self, "_agents_sub", None)):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        if getattr(self, "_nc", None) is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # nats-py's heartbeat checks and unanswered publishes: end them before the loop stops
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # --- the replica (one applier thread) ---------------------------------------------------------------
    def _apply(self, batch: list[tuple[int, str, bytes]]) -> None:
        run: list[tuple[int, bytes]] = []
        for seq, subject, data in batch:
            if subject == f"{self.ns}.ctl":
                self._apply_messages(run)
                run = []
                self._apply_ctl(seq, data)
            else:
                run.append((seq, data))
        self._apply_messages(run)

    def _apply_ctl(self, seq: int, data: bytes) -> None:
        try:
            op = json.loads(data)
            if op.get("op") not in _CTL_OPS:
                raise DataError(f"unknown control operation {op.get('op')!r}")
            self._op_ts = float(op["ts"])
            result: Any = getattr(Store, op["op"])(self, *op["args"])
        except Exception as err:  # noqa: BLE001 - the same on every replica; raised to the server that wrote it
            result = err
        finally:
            self._op_ts = None
        with self._applied_cv:
            self._results[seq] = result
            while len(self._results) > 10_000:
                self._results.popitem(last=False)
            self._applied = seq
            self._applied_cv.notify_all()

    def _apply_messages(self, run: list[tuple[int, bytes]]) -> None:
        if not run:
            return
        entries, rows, seen = [], [], set()
        reader = self._reader()
        for gseq, data in run:
            try:
                message = AgentMessage.model_validate_json(data)
            except ValueError:  # not written by an IoA server: skipped the same way by every replica
                log.warning("record %s of %s is not an IoA message; skipped", gseq, self.stream)
                continue
            key = (message.sender, message.msg_id)
            if key in seen or reader.execute("SELECT 1 FROM messages WHERE sender=? AND msg_id=?",
                                             key).fetchone():
                continue  # a duplicate older than JetStream's window: the first copy in stream order counts
            seen.add(key)
            seq = self._chat_seqs.get(message.comm_id)
            if seq is None:
                row = reader.execute("SELECT MAX(seq) FROM messages WHERE comm_id=?", (message.comm_id,)).fetchone()
                seq = int(row[0] or 0)
            self._chat_seqs[message.comm_id] = seq = seq + 1
            stored = message.model_copy(update={"seq": seq})
            body = stored.model_dump_json()
            rows.append((gseq, message.comm_id, seq, message.sender, message.msg_id, body))
            entries.append(Appended(stored, body, gseq, Store.members_cached(self, message.comm_id),
                                    self._committed_cv, stored=False))
        if rows:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        self._db.execute("ROLLBACK")
                    self._chat_seqs.clear()
                    raise
                self.commits += 1
                self.committed_ops += len(rows)
                if self._counts is not None:
                    self._counts["messages"] += len(entries)
                    self._counts["inbox"] += sum(len(e.members) for e in entries)
        with self._applied_cv:
            self._applied = run[-1][0]
            waiting = [e for gseq, _ in run for e in self._waiting.pop(gseq, [])]
            self._applied_cv.notify_all()
        with self._committed_cv:
            for entry in entries:
                entry.committed = True
            self._committed_cv.notify_all()
        hook = self.on_commit
        if hook is not None and entries:
            with contextlib.suppress(Exception):
                hook(entries)  # this server's fan-out, in stream (= inbox) order
        if waiting:
            self._settle_entries(waiting)

    def _settle_entries(self, entries: list[Appended], error: BaseException | None = None) -> None:
        """Answer entries published here: from the replica's row of their (sender, msg_id) (so a duplicate gets
        the first copy's seq), or with ``error``."""
        reader = self._reader()
        for entry in entries:
            message = entry.message
            entry.fanned = True  # the replica's own entry fanned it out (or it failed)
            entry.error = error
            if error is None:
                row = reader.execute("SELECT gseq, body FROM messages WHERE sender=? AND msg_id=?",
                                     (message.sender, message.msg_id)).fetchone()
                if row is None:
                    entry.error = DataError("the stored message is missing from the replica")
                else:
                    stored = AgentMessage.model_validate_json(row[1])
                    if _content(stored) != _content(message):
                        entry.error = ProtocolError(
                            "msg_id_reused", f"msg_id {message.msg_id!r} was already used by {message.sender!r} "
                            "for a different message; resend the same message to retry, or give a new message a "
                            "new msg_id", message.msg_id)
                    else:
                        # JetStream's window said so, or the replica kept an older copy of this (sender, msg_id)
                        entry.duplicate = entry.duplicate or (entry.gseq != 0 and int(row[0]) != entry.gseq)
                        entry.message, entry.body, entry.gseq = stored, row[1], int(row[0])
        with self._prep_lock:
            for entry in entries:
                key = (entry.message.sender, entry.message.msg_id)
                if self._pending.get(key) is entry:
                    del self._pending[key]
        with self._committed_cv:
            for entry in entries:
                entry.committed = True
            self._committed_cv.notify_all()
        hook = self.on_commit
        if hook is not None:
            with contextlib.suppress(Exception):
                hook(entries)

    def _apply_agent(self, value: bytes, revision: int) -> None:
        data = None
        try:
            if value:  # empty: a delete or purge marker (this server never writes one)
                data = json.loads(value)
                profile = AgentProfile(name=data["name"], type=data["type"], desc=data["desc"])
        except (ValueError, KeyError, TypeError):  # not written by an IoA server: skipped by every replica
            log.warning("registry revision %s is not an IoA agent; skipped", revision)
            data = None
        if data is not None:
            self._upsert_agent(data, profile)
        with self._applied_cv:
            self._agents_applied = max(self._agents_applied, revision)
            self._applied_cv.notify_all()

    def _upsert_agent(self, data: dict[str, Any], profile: AgentProfile) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO agents VALUES (?,?,?,?,?,NULL) ON CONFLICT(name) DO UPDATE SET type=excluded.type,"
                       " desc=excluded.desc, token_hash=excluded.token_hash",
                       (profile.name, profile.type.value, profile.desc, data["token_hash"], data["created_at"]))
            self._index_agent(db, profile)

    def _now(self) -> float:
        return time.time() if self._op_ts is None else self._op_ts

    def _wait_applied(self, seq: int, registry: bool = False, timeout: float = 30.0) -> None:
        with self._applied_cv:
            if not self._applied_cv.wait_for(
                    lambda: (self._agents_applied if registry else self._applied) >= seq, timeout):
                raise DataError(f"this server's replica did not reach {'registry revision' if registry else 'record'}"
                                f" {seq} within {timeout} s")

    def _catch_up(self, registry: bool = False) -> None:
        """Wait until the replica applied what the stream (or the registry bucket) holds right now."""
        stream = f"KV_{self.ns}_agents" if registry else self.stream
        info = self._call(self._js.stream_info(stream))
        self._wait_applied(info.state.last_seq, registry)

    def _ctl(self, op: str, *args: Any) -> Any:
        """Append a control operation and return what applying it gave (raising what it raised)."""
        data = json.dumps({"op": op, "args": args, "ts": time.time()}).encode()
        ack = self._call(self._publish(f"{self.ns}.ctl", data, secrets.token_hex(16)),
                         self._publish_timeout_s + 5)
        self._wait_applied(ack.seq)
        with self._applied_cv:
            result = self._results.pop(ack.seq, None)
        if isinstance(result, BaseException):
            raise result
        return result

    # --- the backend interface: writes go to JetStream ------------------------------------------------------
    def close(self) -> None:
        """Stop consuming, close the NATS connection, close and delete the replica."""
        if getattr(self, "_nloop", None) is not None and self._nloop.is_running():
            with contextlib.suppress(Exception):
                self._call(self._shutdown(), 10)
            self._nloop.call_soon_threadsafe(self._nloop.stop)
            self._nthread.join(10)
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=True)
        with contextlib.suppress(Exception):
            super().close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def register(self, profile: AgentProfile, token: str | None) -> tuple[str, bool]:
        """Create the agent's key (``create``: fails if the name exists) or update it (compare-and-set on its
        revision, with its token); returns (token, created) once this replica applied it."""
        token, created, revision = self._call(self._register(profile, token))
        self._wait_applied(revision, registry=True)
        return token, created

    async def _register(self, profile: AgentProfile, token: str | None) -> tuple[str, bool, int]:
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        key = _key(profile.name)
        for _ in range(20):
            try:
                current = await self._agents_kv.get(key)
            except KeyNotFoundError:
                current = None
            if current is None:
                new_token = secrets.token_urlsafe(24)
                value = {"name": profile.name, "type": profile.type.value, "desc": profile.desc,
                         "token_hash": hash_token(new_token), "created_at": time.time()}
                try:
                    return new_token, True, await self._agents_kv.create(key, json.dumps(value).encode())
                except KeyWrongLastSequenceError:
                    continue  # registered meanwhile (elsewhere): check the token against it
            data = json.loads(current.value)
            if token is None or not secrets.compare_digest(data["token_hash"], hash_token(token)):
                raise PermissionError(f"agent name {profile.name!r} is taken; re-register with its token or "
                                      "choose another name")
            data.update(type=profile.type.value, desc=profile.desc)
            try:
                return token, False, await self._agents_kv.update(key, json.dumps(data).encode(),
                                                                  last=current.revision)
            except KeyWrongLastSequenceError:
                continue
        raise DataError(f"registering {profile.name!r} kept conflicting with concurrent updates")

    def authenticate(self, name: str, token: str) -> bool:
        """True when ``token`` belongs to ``name`` (a miss first catches up with the registry)."""
        if super().authenticate(name, token):
            return True
        self._catch_up(registry=True)
        return super().authenticate(name, token)

    def agent_for_token(self, token: str) -> str | None:
        """The agent a token belongs to (a miss first catches up with the registry)."""
        name = super().agent_for_token(token)
        if name is None:
            self._catch_up(registry=True)
            name = super().agent_for_token(token)
        return name

    def agents(self, names: list[str] | None = None) -> list[AgentProfile]:
        """Profiles, after catching up with the registry (an agent registered on another server is known)."""
        self._catch_up(registry=True)
        return super().agents(names)

    def members_cached(self, comm_id: str) -> tuple[str, ...]:
        """Members of a chat; an unknown chat first catches up with the stream (created on another server)."""
        members = super().members_cached(comm_id)
        if not members:
            self._catch_up()
            members = super().members_cached(comm_id)
        return members

    def comm(self, comm_id: str):  # noqa: ANN201 - ChatInfo | None, as Store.comm
        """A chat's metadata (an unknown one first catches up with the stream)."""
        info = super().comm(comm_id)
        if info is None:
            self._catch_up()
            info = super().comm(comm_id)
        return info

    def inbox_raw(self, agent: str, after: int, limit: int | None = None) -> list[tuple[int, str]]:
        """``agent``'s backlog, after catching up with the stream: an agent reconnecting here gets everything
        acknowledged anywhere before (what is applied later is pushed live, above the backlog's floor)."""
        self._catch_up()
        return super().inbox_raw(agent, after, limit)

    def create_comm(self, *args: Any) -> None:
        """Replicated: see :meth:`Store.create_comm`."""
        return self._ctl("create_comm", *args)

    def set_consent(self, *args: Any) -> tuple[list[str], bool]:
        """Replicated: see :meth:`Store.set_consent`."""
        accept_from, allow = self._ctl("set_consent", *args)
        return list(accept_from), bool(allow)

    def create_pending_team(self, *args: Any) -> None:
        """Replicated: see :meth:`Store.create_pending_team`."""
        return self._ctl("create_pending_team", *args)

    def answer_invite(self, *args: Any) -> int | None:
        """Replicated: see :meth:`Store.answer_invite` (decided in stream order, the same on every server)."""
        return self._ctl("answer_invite", *args)

    def close_pending_team(self, *args: Any) -> None:
        """Replicated: see :meth:`Store.close_pending_team`."""
        return self._ctl("close_pending_team", *args)

    def dead_letter(self, *args: Any) -> None:
        """Replicated: see :meth:`Store.dead_letter`."""
        return self._ctl("dead_letter", *args)

    def prepare(self, message: AgentMessage, members: tuple[str, ...] = ()) -> tuple[Appended, bool]:
        """Publish ``message`` (not waiting); ``entry.committed`` turns True once JetStream stored it and this
        replica applied it (its seq is set then). Duplicates known here answer at once, as in :class:`Store`;
        one found only by JetStream's ``Nats-Msg-Id`` window is answered as a duplicate when applied."""
        key = (message.sender, message.msg_id)
        with self._prep_lock:
            if self._closed or self._nats_closed:
                raise ProtocolError("unavailable", "the server is shutting down; send again after it restarts",
                                    message.msg_id)
            entry = self._known_duplicate(message, members)
            if entry is not None:
                return entry, True
            # seq 0 in the stream: every replica assigns the chat seq in stream order
            stored = message.model_copy(update={"seq": 0, "server_ts": time.time()})
            entry = Appended(stored, stored.model_dump_json(), 0, members, self._committed_cv)
            self._pending[key] = entry
        asyncio.run_coroutine_threadsafe(self._publish_message(entry), self._nloop)
        return entry, False

    def ack(self, agent: str, inbox_id: int) -> None:
        """Move ``agent``'s cursor forward in the cursors bucket (not waiting; cumulative, so a lost ack only
        means a redelivery the client drops)."""
        inbox_id = _bounded(inbox_id)
        with self._prep_lock:
            if self._closed or inbox_id <= self._acked.get(agent, 0):
                return
            self._acked[agent] = inbox_id
        asyncio.run_coroutine_threadsafe(self._put_cursor(agent, inbox_id), self._nloop)

    async def _put_cursor(self, agent: str, inbox_id: int) -> None:
        for _ in range(3):
            if self._acked.get(agent, 0) > inbox_id:
                return  # a later ack is on its way
            try:
                await self._cursors_kv.put(_key(agent), str(inbox_id).encode())
                return
            except Exception:  # noqa: BLE001 - NATS restarting: try again shortly, else the client replays more
                await asyncio.sleep(0.2)

    def acked(self, agent: str) -> int:
        """``agent``'s cursor as the bucket holds it (the agent may have acked on another server)."""
        from nats.js.errors import KeyNotFoundError

        async def get() -> int:
            try:
                entry = await self._cursors_kv.get(_key(agent))
            except KeyNotFoundError:
                return 0
            return int(entry.value or 0)

        value = self._call(get())
        with self._prep_lock:
            value = self._acked[agent] = max(value, self._acked.get(agent, 0))
        return value

    def stats(self) -> dict[str, Any]:
        """As :meth:`Store.stats`, plus the backend and the stream position this replica applied."""
        return {**super().stats(), "backend": "nats", "applied_seq": self._applied}
