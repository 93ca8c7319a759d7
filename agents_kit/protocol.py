"""The IoA wire protocol, version ``ioa/1``: pydantic models for messages, WebSocket frames and REST bodies.

Every field of the original ``AgentMessage`` (brief §2.6) is kept; reliability fields are added (brief §8.2):
a client-chosen ``msg_id`` (idempotency key), a server-assigned per-chat ``seq`` (total order), timestamps and
the protocol version. Message types are strings on the wire; :func:`to_legacy` / :func:`from_legacy` read and
write the original integer-enum format so recorded IoA traffic can be replayed.

Security (issue 22): the ``MAX_*`` limits below bound every field on every entry point; :func:`loads_checked`
parses untrusted JSON; team-ups need consent, carried by :class:`InviteFrame` (server→client) and
:class:`InviteReplyFrame` (client→server), or declared beforehand in ``RegisterRequest.accept_teams_from``.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from shared.errors import PaperkitsError

PROTOCOL_VERSION = "ioa/1"
# Frames above this size are rejected with ``too_large`` (the connection is kept); configurable on the server.
DEFAULT_MAX_FRAME_BYTES = 256 * 1024

# --- limits: one set for every entry point ------------------------------------------------------------------
# WebSocket frames and HTTP bodies are parsed by the same models, so these bounds hold whichever way a message
# or a team-up arrives; the byte limit on a whole frame / HTTP body is the server's ``max_frame_bytes``.
MAX_CONTENT_CHARS = 131_072  # message content and task conclusions
MAX_TEXT_CHARS = 16_384  # goal, task description / abstract, updated plan
MAX_TEAM_NAME_CHARS = 256
MAX_TEAM_SIZE = 128  # members of one chat, the initiator included
MAX_EXTRA_BYTES = 65_536  # ``extra`` serialised as JSON
MAX_JSON_DEPTH = 32  # nesting inside ``extra``
MAX_INT = 2**63 - 1  # SQLite INTEGER: larger ids and cursors raised OverflowError deep in the server
_Name = Annotated[str, Field(min_length=1, max_length=128)]


class ProtocolError(PaperkitsError):
    """A frame or message broke the protocol; ``code`` is the machine-readable reason sent back to the peer."""

    def __init__(self, code: str, detail: str, msg_id: str | None = None):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.msg_id = code, detail, msg_id


class MessageType(str, enum.Enum):
    """What a group-chat message does; the five LLM-facing states plus task notices and system events."""

    DISCUSSION = "discussion"
    SYNC_TASK_ASSIGN = "sync_task_assign"
    ASYNC_TASK_ASSIGN = "async_task_assign"
    INFORM_TASK_PROGRESS = "inform_task_progress"
    INFORM_TASK_RESULT = "inform_task_result"
    PAUSE = "pause"
    CONCLUDE_GROUP_DISCUSSION = "conclude_group_discussion"
    CONCLUSION = "conclusion"
    # Server-emitted at team-up so every member learns the chat eagerly (fixes the original's lazy creation).
    TEAM_UP = "team_up"


# The types a decision policy may choose for a turn (the original prompt's ``message_type`` values).
TURN_TYPES = (MessageType.DISCUSSION, MessageType.SYNC_TASK_ASSIGN, MessageType.ASYNC_TASK_ASSIGN,
              MessageType.PAUSE, MessageType.CONCLUDE_GROUP_DISCUSSION)


class AgentKind(str, enum.Enum):
    """Registry ``type``: a proxy for a person (decomposes, coordinates) or for a tool/software/device."""

    HUMAN_ASSISTANT = "Human Assistant"
    THING_ASSISTANT = "Thing Assistant"


class TaskStatus(str, enum.Enum):
    """Task lifecycle; status only moves forward (brief §2.5); FAILED is terminal like COMPLETED."""

    TO_START = "to_start"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


STATUS_PRIORITY = {TaskStatus.TO_START: 0, TaskStatus.IN_PROGRESS: 1, TaskStatus.COMPLETED: 2,
                   TaskStatus.FAILED: 2}


class AgentProfile(BaseModel):
    """A registry entry as other agents see it."""

    name: str = Field(min_length=1, max_length=128)
    type: AgentKind = AgentKind.THING_ASSISTANT
    desc: str = Field(default="", max_length=8192)


def new_id() -> str:
    """A fresh uuid4 hex id (message ids, task ids)."""
    return uuid.uuid4().hex


class AgentMessage(BaseModel):
    """One group-chat message: header (who, where, order) + payload (what). Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    protocol: Literal["ioa/1"] = PROTOCOL_VERSION
    msg_id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    comm_id: str = Field(min_length=1, max_length=64)
    sender: str = Field(min_length=1, max_length=128)
    seq: int | None = Field(default=None, ge=0, le=MAX_INT)  # assigned by the server
    # finite only: a NaN was stored as null and then failed to load, breaking the chat's history for good
    sent_at: float = Field(default_factory=time.time, allow_inf_nan=False)
    server_ts: float | None = Field(default=None, allow_inf_nan=False)  # assigned by the server
    state: str = Field(default="communication", max_length=64)
    parent_comm_id: str | None = Field(default=None, max_length=64)
    type: MessageType
    content: str = Field(default="", max_length=MAX_CONTENT_CHARS)
    next_speaker: list[_Name] = Field(default_factory=list, max_length=MAX_TEAM_SIZE)
    goal: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    team_members: list[AgentProfile] = Field(default_factory=list, max_length=MAX_TEAM_SIZE)
    team_up_depth: int | None = Field(default=None, ge=0, le=MAX_INT)
    max_turns: int | None = Field(default=None, ge=0, le=MAX_INT)
    task_id: str | None = Field(default=None, max_length=64)
    task_desc: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    task_abstract: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    task_conclusion: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)
    task_status: TaskStatus | None = None
    triggers: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_TEAM_SIZE)
    updated_plan: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _bounded_extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            check_depth(value, MAX_JSON_DEPTH, "extra")
            size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
            if size > MAX_EXTRA_BYTES:
                raise ValueError(f"extra is {size} bytes as JSON; the limit is {MAX_EXTRA_BYTES}")
        return value


def check_depth(value: Any, limit: int, what: str) -> None:
    """Raise ValueError when containers in ``value`` nest deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    raise ValueError(f"{what} nests deeper than {limit} levels")
                stack.append((child, depth + 1))


# --- WebSocket frames ----------------------------------------------------------------------------------------
class HelloFrame(BaseModel):
    """client→server, first frame: authenticate and ask for every inbox entry after ``resume_after``."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["hello"]
    agent: str = Field(max_length=128)
    token: str = Field(max_length=512)
    resume_after: int | None = Field(default=None, ge=0, le=MAX_INT)  # None: after the server's acked cursor
    protocol: Literal["ioa/1"] = PROTOCOL_VERSION
    # The largest frame this client accepts (its WebSocket max_size). An inbox entry whose deliver frame is
    # larger is dead-lettered: an ``error`` frame with code ``undeliverable`` and its ``inbox_id`` replaces it,
    # and delivery goes on (unset: the server's ``max_deliver_bytes``, 1 MiB like the websockets default).
    max_frame_bytes: int | None = Field(default=None, ge=1024, le=MAX_INT)


class SendFrame(BaseModel):
    """client→server: post one message to a chat the sender is a member of."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["send"]
    message: AgentMessage


class AckFrame(BaseModel):
    """client→server: every inbox entry up to ``inbox_id`` has been processed."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["ack"]
    inbox_id: int = Field(ge=0, le=MAX_INT)


class PingFrame(BaseModel):
    """client→server heartbeat."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["ping"]


class InviteReplyFrame(BaseModel):
    """client→server: accept or decline the team-up invite for chat ``comm_id`` (see :class:`InviteFrame`)."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["invite_reply"]
    comm_id: str = Field(min_length=1, max_length=64)
    accept: bool


# discriminated on ``op`` so a bad frame's error names the field that is wrong for *its* kind of frame
ClientFrame = Annotated[HelloFrame | SendFrame | AckFrame | PingFrame | InviteReplyFrame, Field(discriminator="op")]
_CLIENT_FRAME = TypeAdapter(ClientFrame)


class WelcomeFrame(BaseModel):
    """server→client after a good hello; ``replay`` entries follow as deliver frames."""

    op: Literal["welcome"] = "welcome"
    agent: str
    server_time: float
    replay: int
    protocol: str = PROTOCOL_VERSION


class DeliverFrame(BaseModel):
    """server→client: one inbox entry (``inbox_id`` is per-agent, increasing)."""

    op: Literal["deliver"] = "deliver"
    inbox_id: int
    message: AgentMessage


class SentFrame(BaseModel):
    """server→client: the message is durably stored with ``seq`` (``duplicate`` when the msg_id was known)."""

    op: Literal["sent"] = "sent"
    msg_id: str
    comm_id: str
    seq: int
    duplicate: bool = False


class ErrorFrame(BaseModel):
    """server→client: a rejected frame; ``msg_id`` names the message when there was one."""

    op: Literal["error"] = "error"
    code: str
    detail: str
    msg_id: str | None = None
    inbox_id: int | None = None  # code ``undeliverable``: the inbox entry that was skipped (dead-lettered)


class InviteFrame(BaseModel):
    """server→client: ``initiator`` invites this agent to a team; answer with ``invite_reply`` (or
    ``POST /invites/{comm_id}``). Pending invites are sent again after every ``welcome``. Nothing of the
    chat reaches the agent's inbox unless it accepts."""

    op: Literal["invite"] = "invite"
    comm_id: str
    initiator: str
    team_name: str
    goal: str
    members: list[str]  # everyone named so far (accepted, pre-consented and still invited)
    parent_comm_id: str | None = None
    expires_at: float


class InviteResultFrame(BaseModel):
    """server→client: the answer to an ``invite_reply`` was recorded."""

    op: Literal["invite_result"] = "invite_result"
    comm_id: str
    accepted: bool


def parse_client_frame(text: str | bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> ClientFrame:
    """Validate one client frame or raise :class:`ProtocolError` (``too_large``, ``bad_json``, ``bad_frame``)."""
    if isinstance(text, str):  # isascii() is O(1): most frames skip the encode
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    else:
        size = len(text)
    if size > max_bytes:
        raise ProtocolError("too_large", f"frame of {size} bytes exceeds the limit of {max_bytes} bytes; "
                                         "send shorter content or raise the server's max_frame_bytes")
    data = loads_checked(text)
    msg_id = None
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        msg_id = data["message"].get("msg_id") if isinstance(data["message"].get("msg_id"), str) else None
    try:
        return _CLIENT_FRAME.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError("bad_frame", f"{where}: {first['msg']}", msg_id=msg_id) from err


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# built once: json.loads with keyword arguments would build a new decoder for every frame
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def loads_checked(text: str | bytes) -> Any:
    """``json.loads`` for untrusted frames and HTTP bodies, or :class:`ProtocolError` ``bad_json``.

    Besides syntax it refuses what plain ``json.loads`` lets through and the server then chokes on: nesting
    deep enough to raise RecursionError, NaN / Infinity / out-of-range numbers, and lone UTF-16 surrogates
    (``"\\ud800"``) that cannot be encoded as UTF-8 for SQLite or the wire.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")  # RFC 8259: JSON exchanged between systems is UTF-8
        data = _DECODER.decode(text)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):  # rare: only then pay for the full check
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError as err:
        raise ProtocolError("bad_json", "JSON is nested too deeply") from err
    except UnicodeError as err:
        raise ProtocolError("bad_json", f"text is not valid UTF-8 (lone surrogate or bad bytes: {err.reason})") \
            from err
    except ValueError as err:  # json.JSONDecodeError and the number checks
        raise ProtocolError("bad_json", f"not valid JSON ({err})") from err
    return data


# --- REST bodies ---------------------------------------------------------------------------------------------
class RegisterRequest(AgentProfile):
    """``POST /register``: name, type, desc (+ the token when re-registering an existing name).

    Consent (who may put this agent in a chat): ``accept_teams_from`` names the agents whose team-ups add it
    directly (``"*"``: anyone); anyone else's team-up sends it an invite it must accept, or is refused when
    ``allow_invites`` is false. Unset fields keep their stored value (new agents: ``[]`` and ``true``, i.e.
    every team-up needs the agent's yes). ``registration_key``: required to create an agent when the server
    has one (always when it listens on a non-loopback address).
    """

    token: str | None = Field(default=None, max_length=512)
    registration_key: str | None = Field(default=None, max_length=512)
    accept_teams_from: list[_Name] | None = Field(default=None, max_length=1024)
    allow_invites: bool | None = None


class RegisterResponse(BaseModel):
    """The agent's token (keep it: it is the only way to connect or re-register as this name)."""

    name: str
    token: str
    created: bool
    accept_teams_from: list[str] = Field(default_factory=list)
    allow_invites: bool = True


class SearchRequest(BaseModel):
    """``POST /retrieve_assistant``: free-text capabilities; top-k per query, unioned and deduplicated."""

    capabilities: list[Annotated[str, Field(max_length=MAX_TEXT_CHARS)]] = Field(min_length=1, max_length=64)
    k: int = Field(default=3, ge=1, le=100)
    exclude_sender: bool = True
    # Only agents connected right now (the paper lists an agent "status"; the original code never tracked it).
    online_only: bool = False


class TeamUpRequest(BaseModel):
    """``POST /teamup``: create a group chat (the sender is always a member).

    Members join by consent: an agent whose ``accept_teams_from`` admits the sender is added at once, any
    other is invited. The chat starts (its ``team_up`` message is sent) when every invitee has answered or
    the server's ``invite_ttl_s`` ran out; the call waits up to ``wait_s`` for that.
    """

    agent_names: list[_Name] = Field(min_length=1, max_length=MAX_TEAM_SIZE - 1)
    team_name: str = Field(default="", max_length=MAX_TEAM_NAME_CHARS)
    goal: str = Field(default="", max_length=MAX_TEXT_CHARS)
    parent_comm_id: str | None = Field(default=None, max_length=64)
    team_up_depth: int | None = Field(default=None, ge=0, le=MAX_INT)
    max_turns: int | None = Field(default=None, ge=0, le=MAX_INT)
    wait_s: float = Field(default=10.0, ge=0.0, le=25.0)


class TeamUpResponse(BaseModel):
    """The new chat id and its members (unknown names are reported, not silently dropped).

    ``started`` is false while invitees (``invited``) have not answered; the chat's ``team_up`` message
    arrives when they have. ``declined``: invitees that said no, did not answer in time, or accept no invites.
    """

    comm_id: str
    agent_names: list[str]
    unknown: list[str] = Field(default_factory=list)
    depth: int
    started: bool = True
    invited: list[str] = Field(default_factory=list)
    declined: list[str] = Field(default_factory=list)


class InviteAnswer(BaseModel):
    """``POST /invites/{comm_id}``: accept or decline a team-up invite."""

    accept: bool


class ChatInfo(BaseModel):
    """A chat's metadata."""

    comm_id: str
    team_name: str
    initiator: str
    parent_comm_id: str | None
    depth: int
    goal: str
    members: list[str]
    created_at: float
    messages: int = 0


# --- the original integer-enum format (brief §2.6) ----------------------------------------------------------
LEGACY_TYPE_CODES = {MessageType.DISCUSSION: 4, MessageType.SYNC_TASK_ASSIGN: 5, MessageType.ASYNC_TASK_ASSIGN: 6,
                     MessageType.INFORM_TASK_RESULT: 7, MessageType.INFORM_TASK_PROGRESS: 8, MessageType.PAUSE: 9,
                     MessageType.CONCLUDE_GROUP_DISCUSSION: 10, MessageType.CONCLUSION: 11}
_LEGACY_CODE_TYPES = {code: kind for kind, code in LEGACY_TYPE_CODES.items()}
_LEGACY_FIELDS = ("sender", "comm_id", "goal", "team_up_depth", "max_turns", "content", "task_id", "task_desc",
                  "task_abstract", "task_conclusion", "triggers", "updated_plan")


def to_legacy(message: AgentMessage) -> dict[str, Any]:
    """The original IoA ``AgentMessage`` dict (integer enums, ``state`` DISCUSSION=1)."""
    if message.type not in LEGACY_TYPE_CODES:
        raise ProtocolError("no_legacy_type", f"type {message.type.value!r} has no code in the original protocol")
    out: dict[str, Any] = {field: getattr(message, field) for field in _LEGACY_FIELDS}
    out.update(state=1, type=LEGACY_TYPE_CODES[message.type], next_speaker=list(message.next_speaker),
               team_members=[m.model_dump(mode="json") for m in message.team_members], proposal_id=None,
               is_collaborative_planning_enabled=False)
    return out


def from_legacy(data: dict[str, Any]) -> AgentMessage:
    """Read an original IoA message dict (integer ``type``; ``next_speaker`` a string or a list)."""
    code = data.get("type")
    if code not in _LEGACY_CODE_TYPES:
        raise ProtocolError("unknown_type", f"legacy type code {code!r} is not a conversation type "
                                            f"(known: {sorted(_LEGACY_CODE_TYPES)})")
    speakers = data.get("next_speaker") or []
    if isinstance(speakers, str):
        speakers = [speakers] if speakers else []
    fields = {field: data[field] for field in _LEGACY_FIELDS if data.get(field) is not None}
    fields.setdefault("triggers", [])
    return AgentMessage(type=_LEGACY_CODE_TYPES[code], next_speaker=list(speakers),
                        team_members=data.get("team_members") or [], **fields)


def json_schema() -> dict[str, Any]:
    """JSON Schema of every frame (ship it to non-Python clients)."""
    return {"protocol": PROTOCOL_VERSION, "client_frames": _CLIENT_FRAME.json_schema(),
            "server_frames": {cls.__name__: cls.model_json_schema()
                              for cls in (WelcomeFrame, DeliverFrame, SentFrame, ErrorFrame, InviteFrame,
                                          InviteResultFrame)}}
