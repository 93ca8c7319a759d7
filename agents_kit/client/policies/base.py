"""The decision interface: one method per place where the original client called its LLM (brief §2.3–2.4)."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Literal

from agents_kit.protocol import AgentMessage, AgentProfile


@dataclasses.dataclass
class ToolCall:
    """A team-formation step: search the registry, or form the team."""

    tool: Literal["agent_discovery", "team_up"]
    queries: list[str] = dataclasses.field(default_factory=list)
    team_members: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TurnDecision:
    """One turn: the message, its type (the next conversation state) and who speaks next.

    ``tasks`` optionally maps an owner to their task text for task assignments (a structured form of the
    original's free-text assignment; owners fall back to the message content).
    """

    content: str
    message_type: str = "discussion"
    next_people: list[str] = dataclasses.field(default_factory=list)
    thought: str = ""
    tasks: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TaskSpec:
    """What an owner actually runs (the original's task-rephrasing output)."""

    abstract: str
    description: str
    inputs: str = ""
    completion_criteria: str = ""

    def as_prompt(self) -> str:
        """The text handed to ``run(task)``."""
        parts = [f"Task: {self.description}"]
        if self.inputs:
            parts.append(f"Inputs:\n{self.inputs}")
        if self.completion_criteria:
            parts.append(f"Done when: {self.completion_criteria}")
        return "\n\n".join(parts)


@dataclasses.dataclass
class ChatView:
    """What a decision sees about one chat."""

    me: str
    comm_id: str
    goal: str
    members: list[AgentProfile]
    history: list[AgentMessage]
    task_board: list[dict[str, Any]]
    depth: int | None = None
    must_conclude: bool = False
    contacts: list[AgentProfile] = dataclasses.field(default_factory=list)

    def transcript(self, last: int | None = None) -> str:
        """``[sender] (type): content`` lines."""
        msgs = self.history if last is None else self.history[-last:]
        return "\n".join(f"[{m.sender}] ({m.type.value}): {m.content}" for m in msgs)


class Policy(abc.ABC):
    """Decides team formation and each conversation turn. Implementations: LLM, scripted, replay."""

    @abc.abstractmethod
    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Next team-formation step (``force_team_up`` on the last attempt)."""

    @abc.abstractmethod
    def turn(self, view: ChatView) -> TurnDecision:
        """The next message, its type and the next speaker(s)."""

    @abc.abstractmethod
    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Task ids (from ``candidates``, the unfinished tasks) whose results the discussion must wait for."""

    @abc.abstractmethod
    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """Turn an assignment into a self-contained task for the owner."""

    @abc.abstractmethod
    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """Nested teams: solve ``task`` with a sub-team (True) or individually (False)."""

    @abc.abstractmethod
    def conclude(self, view: ChatView) -> str:
        """The final answer once the goal is met."""


POLICY_POINTS = ("plan_team", "turn", "pick_triggers", "rephrase", "want_subteam", "conclude")
