"""The IoA wire protocol, version ``ioa/1``: pydantic models for messages, WebSocket frames and REST bodies.

Every field of the original ``AgentMessage`` (brief §2.6) is kept; reliability fields are added (brief §8.2):
a client-chosen ``msg_id`` (idempotency key), a server-assigned per-chat ``seq`` (total order), timestamps and
the protocol version. Message types are strings on the wire; :func:`to_legacy` / :func:`from_legacy` read and
write the original integer-enum format so recorded IoA traffic can be replayed.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.errors import PaperkitsError

PROTOCOL_VERSION = "ioa/1"
# Frames above this size are rejected with ``too_large`` (the connection is kept); configurable on the server.
DEFAULT_MAX_FRAME_BYTES = 256 * 1024


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
    seq: int | None = None  # assigned by the server
    sent_at: float = Field(default_factory=time.time)
    server_ts: float | None = None  # assigned by the server
    state: str = "communication"
    parent_comm_id: str | None = None
    type: MessageType
    content: str = ""
    next_speaker: list[str] = Field(default_factory=list)
    goal: str | None = None
    team_members: list[AgentProfile] = Field(default_factory=list)
    team_up_depth: int | None = None
    max_turns: int | None = None
    task_id: str | None = None
    task_desc: str | None = None
    task_abstract: str | None = None
    task_conclusion: str | None = None
    task_status: TaskStatus | None = None
    triggers: list[str] = Field(default_factory=list)
    updated_plan: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


# --- WebSocket frames ----------------------------------------------------------------------------------------
class HelloFrame(BaseModel):
    """client→server, first frame: authenticate and ask for every inbox entry after ``resume_after``."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["hello"]
    agent: str
    token: str
    resume_after: int | None = None  # None: resume after the server's acknowledged cursor
    protocol: Literal["ioa/1"] = PROTOCOL_VERSION


class SendFrame(BaseModel):
    """client→server: post one message to a chat the sender is a member of."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["send"]
    message: AgentMessage


class AckFrame(BaseModel):
    """client→server: every inbox entry up to ``inbox_id`` has been processed."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["ack"]
    inbox_id: int


class PingFrame(BaseModel):
    """client→server heartbeat."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["ping"]


# discriminated on ``op`` so a bad frame's error names the field that is wrong for *its* kind of frame
ClientFrame = Annotated[HelloFrame | SendFrame | AckFrame | PingFrame, Field(discriminator="op")]
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


def parse_client_frame(text: str | bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> ClientFrame:
    """Validate one client frame or raise :class:`ProtocolError` (``too_large``, ``bad_json``, ``bad_frame``)."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_bytes:
        raise ProtocolError("too_large", f"frame of {size} bytes exceeds the limit of {max_bytes} bytes; "
                                         "send shorter content or raise the server's max_frame_bytes")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ProtocolError("bad_json", f"frame is not valid JSON ({err})") from err
    msg_id = None
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        msg_id = data["message"].get("msg_id") if isinstance(data["message"].get("msg_id"), str) else None
    try:
        return _CLIENT_FRAME.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError("bad_frame", f"{where}: {first['msg']}", msg_id=msg_id) from err


# --- REST bodies ---------------------------------------------------------------------------------------------
class RegisterRequest(AgentProfile):
    """``POST /register``: name, type, desc (+ the token when re-registering an existing name)."""

    token: str | None = None


class RegisterResponse(BaseModel):
    """The agent's token (keep it: it is the only way to connect or re-register as this name)."""

    name: str
    token: str
    created: bool


class SearchRequest(BaseModel):
    """``POST /retrieve_assistant``: free-text capabilities; top-k per query, unioned and deduplicated."""

    capabilities: list[str] = Field(min_length=1)
    k: int = Field(default=3, ge=1, le=100)
    exclude_sender: bool = True
    # Only agents connected right now (the paper lists an agent "status"; the original code never tracked it).
    online_only: bool = False


class TeamUpRequest(BaseModel):
    """``POST /teamup``: create a group chat (the sender is always a member)."""

    agent_names: list[str] = Field(min_length=1)
    team_name: str = ""
    goal: str = ""
    parent_comm_id: str | None = None
    team_up_depth: int | None = None
    max_turns: int | None = None


class TeamUpResponse(BaseModel):
    """The new chat id and its members (unknown names are reported, not silently dropped)."""

    comm_id: str
    agent_names: list[str]
    unknown: list[str] = Field(default_factory=list)
    depth: int


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
                              for cls in (WelcomeFrame, DeliverFrame, SentFrame, ErrorFrame)}}
