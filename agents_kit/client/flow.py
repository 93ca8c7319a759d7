"""The client: team formation and the five-state conversation machine (brief §2.3–2.5), one worker per chat.

The state of a chat is the type of its last floor-passing message (discussion, sync task, async task,
pause & trigger, conclusion). Per message, the algorithm follows the original client (brief §2.4): update
memory and the task board, and act only when named in ``next_speaker`` (or when a pause this agent set has
just been triggered). Differences, each fixing a defect of the original (brief §6):

* one asyncio worker per chat: a sync task or a slow decision blocks only its own chat (bug 3);
* every member learns a chat from the server's ``team_up`` message, not lazily;
* task-board updates are applied to every delivered message including the agent's own echo, so all members
  compute identical boards and trigger states from the same ordered log;
* a nested team's conclusion *string* is the task result (bug 4); tool errors mark the task FAILED.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from typing import Any

from agents_kit.client.adapters.base import ToolAgent
from agents_kit.client.policies.base import ChatView, Policy, TaskSpec, TurnDecision
from agents_kit.client.sdk import AgentConnection
from agents_kit.client.tasks import TaskManager
from agents_kit.protocol import (
    TURN_TYPES,
    AgentKind,
    AgentMessage,
    AgentProfile,
    MessageType,
    TaskStatus,
    TeamUpRequest,
    new_id,
)

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    """Conversation states (paper Fig. 3) plus the entry and exit."""

    TEAM_FORMATION = "team_formation"
    DISCUSSION = "discussion"
    SYNC_TASK = "sync_task"
    ASYNC_TASK = "async_task"
    PAUSE = "pause_and_trigger"
    CONCLUSION = "conclusion"
    END = "end"


# Fig. 3's edges. After a task assignment or a fired pause the floor returns to the discussion, where the
# speaker picks the next state in the same turn; so those states lead to every state discussion leads to.
# Sync/async → team formation is the nested sub-team (it happens in a new child chat).
_AFTER_DISCUSSION = frozenset({State.DISCUSSION, State.SYNC_TASK, State.ASYNC_TASK, State.PAUSE, State.CONCLUSION})
TRANSITIONS: dict[State, frozenset[State]] = {
    State.TEAM_FORMATION: _AFTER_DISCUSSION,  # the initiator's first turn opens the discussion
    State.DISCUSSION: _AFTER_DISCUSSION,
    State.SYNC_TASK: _AFTER_DISCUSSION | {State.TEAM_FORMATION},
    State.ASYNC_TASK: _AFTER_DISCUSSION | {State.TEAM_FORMATION},
    State.PAUSE: _AFTER_DISCUSSION,
    State.CONCLUSION: frozenset({State.END}),
    State.END: frozenset(),
}
STATE_OF_TYPE = {MessageType.TEAM_UP: State.TEAM_FORMATION, MessageType.DISCUSSION: State.DISCUSSION,
                 MessageType.SYNC_TASK_ASSIGN: State.SYNC_TASK, MessageType.ASYNC_TASK_ASSIGN: State.ASYNC_TASK,
                 MessageType.PAUSE: State.PAUSE, MessageType.CONCLUDE_GROUP_DISCUSSION: State.CONCLUSION,
                 MessageType.CONCLUSION: State.END}


def coerce_decision(decision: TurnDecision, me: str, members: list[str]) -> tuple[MessageType, list[str]]:
    """Apply the original's coercions: unknown type → discussion; next speakers filtered to members (default
    me); conclusion → me; discussion and pause pass the floor to exactly one member."""
    try:
        kind = MessageType(decision.message_type)
    except ValueError:
        kind = MessageType.DISCUSSION
    if kind not in TURN_TYPES:
        kind = MessageType.DISCUSSION
    people = [p for p in dict.fromkeys(decision.next_people) if p in members] or [me]
    if kind is MessageType.CONCLUDE_GROUP_DISCUSSION:
        people = [me]
    elif kind in (MessageType.DISCUSSION, MessageType.PAUSE):
        people = people[:1]
    return kind, people


@dataclasses.dataclass
class Chat:
    """What one client knows about one group chat (the original's GroupInfo + TaskManager)."""

    comm_id: str
    goal: str = ""
    members: list[AgentProfile] = dataclasses.field(default_factory=list)
    depth: int | None = None
    max_turns: int | None = None
    parent_comm_id: str | None = None
    memory: list[AgentMessage] = dataclasses.field(default_factory=list)
    tasks: TaskManager = dataclasses.field(default_factory=TaskManager)
    await_set: set[str] = dataclasses.field(default_factory=set)
    state: State = State.TEAM_FORMATION
    conclusion: str | None = None
    concluded: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    turns: int = 0  # messages this client generated as a speaker here

    @property
    def member_names(self) -> list[str]:
        """Member names."""
        return [m.name for m in self.members]


class IoAClient:
    """An agent on the Internet of Agents: registry identity, team formation, and conversations.

    ``tool`` is the wrapped third-party agent (``run(task) -> str``); without one the policy's own answer is
    used for tasks (like the original's LLM-only client). ``accept_invites`` / ``accept_teams_from``: who may
    put this agent in a chat (:class:`AgentConnection`; by default nobody: every invite is declined).
    """

    def __init__(self, server_url: str, name: str, desc: str, policy: Policy, tool: ToolAgent | None = None,
                 kind: AgentKind = AgentKind.THING_ASSISTANT, token: str | None = None,
                 support_nested_teams: bool = False, max_team_up_attempts: int = 10,
                 hard_turn_limit: int | None = 60, task_timeout_s: float = 600.0, search_k: int = 3,
                 history_window: int | None = None, search_online_only: bool = True, state: Any = None,
                 accept_invites: Any = False, accept_teams_from: list[str] | None = None):
        self.profile = AgentProfile(name=name, type=kind, desc=desc)
        self.policy, self.tool = policy, tool
        self.support_nested_teams, self.max_team_up_attempts = support_nested_teams, max_team_up_attempts
        self.hard_turn_limit, self.task_timeout_s, self.search_k = hard_turn_limit, task_timeout_s, search_k
        self.history_window = history_window
        # recruiting an offline agent is safe (its inbox keeps the messages) but stalls the chat until it returns
        self.search_online_only = search_online_only
        # ``state``: where the handled cursor lives (AgentConnection); a message counts as handled once its chat's
        # worker processed it, not when it was queued, so a crash in between hands it over again
        self.connection = AgentConnection(server_url, self.profile, token=token, on_message=self._on_message,
                                          state=state, complete="manual", accept_invites=accept_invites,
                                          accept_teams_from=accept_teams_from)
        self.chats: dict[str, Chat] = {}
        self.contacts: dict[str, AgentProfile] = {}
        self.transitions: list[tuple[str, State, State]] = []  # (comm_id, from, to) seen by this client
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._background: set[asyncio.Task] = set()
        self.decisions = 0

    @property
    def name(self) -> str:
        """The agent's registry name."""
        return self.profile.name

    async def start(self) -> IoAClient:
        """Register and connect."""
        await self.connection.start()
        return self

    async def stop(self) -> None:
        """Cancel workers and background tasks, then close the connection."""
        for task in [*self._workers.values(), *self._background]:
            task.cancel()
        await asyncio.gather(*self._workers.values(), *self._background, return_exceptions=True)
        await self.connection.close()

    async def __aenter__(self) -> IoAClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- team formation ----------------------------------------------------------------------------------
    async def form_team(self, goal: str, team_members: list[str] | None = None, team_up_depth: int | None = None,
                        max_turns: int | None = None, parent_comm_id: str | None = None,
                        team_name: str = "") -> str:
        """Discover agents and team up (or use ``team_members`` directly, the original's shortcut)."""
        if team_members is None:
            tool_log: list[dict[str, Any]] = []
            for attempt in range(self.max_team_up_attempts):
                call = await self._decide("plan_team", self.profile, goal, list(self.contacts.values()), tool_log,
                                          attempt == self.max_team_up_attempts - 1)
                if call.tool == "team_up":
                    team_members = list(call.team_members)
                    break
                hits = await self.connection.search(list(call.queries), k=self.search_k,
                                                    online_only=self.search_online_only)
                new = [h for h in hits if h.name not in self.contacts]
                self.contacts.update({h.name: h for h in hits})
                tool_log.append({"tool": "agent_discovery", "queries": list(call.queries),
                                 "hits": [h.name for h in hits],
                                 "new_agents": [h.model_dump(mode="json") for h in new]})
            else:
                team_members = []
        response = await self.connection.team_up(TeamUpRequest(
            agent_names=[m for m in team_members if m != self.name] or [self.name], team_name=team_name, goal=goal,
            parent_comm_id=parent_comm_id, team_up_depth=team_up_depth, max_turns=max_turns))
        self._chat(response.comm_id)
        return response.comm_id

    async def launch_goal(self, goal: str, team_members: list[str] | None = None, team_up_depth: int | None = None,
                          max_turns: int | None = None, parent_comm_id: str | None = None,
                          timeout: float | None = 300.0) -> tuple[str, str]:
        """Form a team for ``goal`` and wait for the chat's conclusion; returns (comm_id, conclusion)."""
        comm_id = await self.form_team(goal, team_members, team_up_depth, max_turns, parent_comm_id)
        chat = self._chat(comm_id)
        try:
            await asyncio.wait_for(chat.concluded.wait(), timeout)
        except asyncio.TimeoutError as err:
            raise TimeoutError(f"chat {comm_id} did not conclude within {timeout} s (state {chat.state.value}, "
                               f"{len(chat.memory)} messages, awaiting {sorted(chat.await_set)}, "
                               f"triggers {chat.tasks.triggers})") from err
        return comm_id, chat.conclusion or ""

    # --- message intake ----------------------------------------------------------------------------------
    def _chat(self, comm_id: str) -> Chat:
        if comm_id not in self.chats:
            self.chats[comm_id] = Chat(comm_id=comm_id)
        return self.chats[comm_id]

    def _on_message(self, inbox_id: int, message: AgentMessage) -> None:
        """Hand each delivery to its chat's worker (created on first sight), keeping per-chat order."""
        queue = self._queues.get(message.comm_id)
        if queue is None:
            queue = self._queues[message.comm_id] = asyncio.Queue()
            self._workers[message.comm_id] = asyncio.get_running_loop().create_task(
                self._worker(message.comm_id, queue))
        queue.put_nowait((inbox_id, message))

    async def _worker(self, comm_id: str, queue: asyncio.Queue) -> None:
        while True:
            inbox_id, message = await queue.get()
            try:
                await self.process(self._chat(comm_id), message)
            except asyncio.CancelledError:
                raise  # not completed: a restarted client gets this message again
            except Exception:  # one bad turn must not kill the chat's worker (nor come back after a restart)
                log.exception("%s: error while processing %s in chat %s", self.name, message.type, comm_id)
            self.connection.complete(inbox_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _decide(self, point: str, *args: Any) -> Any:
        """Call a policy decision off the event loop (an LLM call may take seconds)."""
        self.decisions += 1
        return await asyncio.to_thread(getattr(self.policy, point), *args)

    def _transition(self, chat: Chat, message: AgentMessage) -> None:
        new = STATE_OF_TYPE.get(message.type)
        if new is None or (new is State.TEAM_FORMATION and chat.state is State.TEAM_FORMATION):
            return  # task notices do not move the floor-passing state
        self.transitions.append((chat.comm_id, chat.state, new))
        chat.state = new

    async def process(self, chat: Chat, m: AgentMessage) -> None:
        """The per-message algorithm (brief §2.4)."""
        triggered = False
        if m.type is MessageType.TEAM_UP:
            chat.goal, chat.members, chat.depth = m.goal or "", list(m.team_members), m.team_up_depth
            chat.max_turns, chat.parent_comm_id = m.max_turns, m.parent_comm_id
            self.contacts.update({p.name: p for p in m.team_members if p.name != self.name})
        else:
            chat.memory.append(m)
        self._transition(chat, m)
        if m.type is MessageType.INFORM_TASK_PROGRESS and m.task_id:
            chat.tasks.upsert(m.task_id, m.sender, desc=m.task_desc, abstract=m.task_abstract,
                              status=TaskStatus.IN_PROGRESS)
        elif m.type is MessageType.INFORM_TASK_RESULT and m.task_id:
            was_waiting = bool(chat.tasks.triggers) and not chat.tasks.all_triggers_done()
            chat.tasks.upsert(m.task_id, m.sender, desc=m.task_desc, abstract=m.task_abstract,
                              status=m.task_status or TaskStatus.COMPLETED, conclusion=m.task_conclusion or "")
            if was_waiting and chat.tasks.all_triggers_done():
                triggered = chat.tasks.trigger_setter == self.name
                chat.tasks.clear_triggers()
        elif m.type is MessageType.PAUSE:
            if chat.tasks.set_triggers(list(m.triggers), m.sender):  # results overtook the pause: fire now
                triggered = m.sender == self.name
                chat.tasks.clear_triggers()
        elif m.type is MessageType.CONCLUSION:
            chat.conclusion = m.content
            chat.concluded.set()
            return
        if triggered:
            await self.generate_turn(chat)
            return
        if self.name not in m.next_speaker:
            return
        if m.type in (MessageType.TEAM_UP, MessageType.DISCUSSION):
            await self.generate_turn(chat)
        elif m.type in (MessageType.INFORM_TASK_PROGRESS, MessageType.INFORM_TASK_RESULT):
            chat.await_set.discard(m.sender)
            if not chat.await_set:
                await self.generate_turn(chat)
        elif m.type is MessageType.ASYNC_TASK_ASSIGN:
            await self._accept_task(chat, m, background=True)
        elif m.type is MessageType.SYNC_TASK_ASSIGN:
            await self._accept_task(chat, m, background=False)
        elif m.type is MessageType.CONCLUDE_GROUP_DISCUSSION:
            answer = await self._decide("conclude", self.view(chat))
            await self.send(chat, MessageType.CONCLUSION, answer, [])

    def view(self, chat: Chat) -> ChatView:
        """What the policy sees for ``chat``."""
        history = chat.memory if self.history_window is None else chat.memory[-self.history_window:]
        must = chat.max_turns is not None and len(chat.memory) >= chat.max_turns  # the original's soft cap
        return ChatView(me=self.name, comm_id=chat.comm_id, goal=chat.goal, members=list(chat.members),
                        history=list(history), task_board=chat.tasks.board(), depth=chat.depth, must_conclude=must,
                        contacts=list(self.contacts.values()))

    async def send(self, chat: Chat, kind: MessageType, content: str, next_speaker: list[str], **fields: Any) -> None:
        """Post a message to ``chat`` (waits for the server's ``sent``)."""
        await self.connection.send(AgentMessage(comm_id=chat.comm_id, sender=self.name, type=kind, content=content,
                                                next_speaker=next_speaker, **fields))

    async def generate_turn(self, chat: Chat) -> None:
        """Decide and send one turn (the floor is ours)."""
        chat.turns += 1
        if self.hard_turn_limit is not None and chat.turns > self.hard_turn_limit:
            decision = TurnDecision(content="Turn limit reached; concluding.",
                                    message_type=MessageType.CONCLUDE_GROUP_DISCUSSION.value)
        else:
            decision = await self._decide("turn", self.view(chat))
        kind, people = coerce_decision(decision, self.name, chat.member_names)
        extra: dict[str, Any] = {"thought": decision.thought} if decision.thought else {}
        if kind is MessageType.PAUSE:
            candidates = chat.tasks.board()
            candidates = [t for t in candidates if t["status"] not in ("completed", "failed")]
            picked = await self._decide("pick_triggers", self.view(chat), candidates) if candidates else []
            open_ids = {t["task_id"] for t in candidates}
            triggers = [tid for tid in picked if tid in open_ids]
            if triggers:
                await self.send(chat, MessageType.PAUSE, decision.content, [], triggers=triggers, extra=extra)
            else:  # nothing to wait for: keep discussing (the original's coercion)
                await self.send(chat, MessageType.DISCUSSION, decision.content, [self.name], extra=extra)
            return
        if kind in (MessageType.SYNC_TASK_ASSIGN, MessageType.ASYNC_TASK_ASSIGN):
            chat.await_set = set(people)
            if decision.tasks:
                extra["tasks"] = {p: t for p, t in decision.tasks.items() if p in people}
        await self.send(chat, kind, decision.content, people, extra=extra)

    async def _accept_task(self, chat: Chat, m: AgentMessage, background: bool) -> None:
        my_task = str(m.extra.get("tasks", {}).get(self.name, m.content))
        spec = await self._decide("rephrase", self.view(chat), m, my_task)
        task_id = new_id()
        fields = {"task_id": task_id, "task_desc": spec.description, "task_abstract": spec.abstract}
        if background:
            await self.send(chat, MessageType.INFORM_TASK_PROGRESS, f"Started: {spec.abstract}", [m.sender],
                            task_status=TaskStatus.IN_PROGRESS, **fields)

            async def finish() -> None:
                status, result = await self.run_task(chat, spec)
                await self.send(chat, MessageType.INFORM_TASK_RESULT, result, [], task_conclusion=result,
                                task_status=status, **fields)

            self._spawn(finish())
        else:
            status, result = await self.run_task(chat, spec)
            await self.send(chat, MessageType.INFORM_TASK_RESULT, result, [m.sender], task_conclusion=result,
                            task_status=status, **fields)

    async def run_task(self, chat: Chat, spec: TaskSpec) -> tuple[TaskStatus, str]:
        """Run a task: with a nested sub-team when allowed and wanted, else the tool agent (or the policy)."""
        depth_allows = chat.depth is None or chat.depth >= 1
        if self.support_nested_teams and depth_allows and await self._decide("want_subteam", self.view(chat), spec):
            sub_depth = None if chat.depth is None else chat.depth - 1
            try:
                _, conclusion = await self.launch_goal(spec.as_prompt(), team_up_depth=sub_depth,
                                                       max_turns=chat.max_turns, parent_comm_id=chat.comm_id,
                                                       timeout=self.task_timeout_s)
                return TaskStatus.COMPLETED, conclusion
            except Exception as err:  # e.g. the server's nesting limit: fall back to doing it alone
                log.warning("%s: sub-team failed (%s); solving individually", self.name, err)
        try:
            if self.tool is not None:
                result = await asyncio.wait_for(asyncio.to_thread(self.tool.run, spec.as_prompt()),
                                                self.task_timeout_s)
            else:
                result = await self._decide("conclude", dataclasses.replace(self.view(chat), goal=spec.as_prompt()))
            return TaskStatus.COMPLETED, str(result)
        except asyncio.TimeoutError:
            return TaskStatus.FAILED, f"FAILED: the task did not finish within {self.task_timeout_s} s"
        except Exception as err:
            return TaskStatus.FAILED, f"FAILED: {type(err).__name__}: {err}"
