"""A deterministic, rule-driven policy for tests, benchmarks and agents that need no LLM.

Each decision point is a parameter: a fixed value, a list consumed in order (per chat for turns), or a
callable receiving what the LLM would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agents_kit.client.policies.base import ChatView, Policy, TaskSpec, ToolCall, TurnDecision
from agents_kit.protocol import AgentMessage, AgentProfile

TurnRule = Callable[[ChatView], TurnDecision]


def completed_results(view: ChatView) -> str:
    """The finished tasks' conclusions, one per line (the default conclusion and task inputs)."""
    return "\n".join(f"{t['assignee']}: {t['conclusion']}" for t in view.task_board
                     if t["status"] in ("completed", "failed"))


def hand_floor_back(view: ChatView) -> TurnDecision:
    """A tool agent's turn rule: it only works on assigned tasks, so it returns the floor to whoever spoke last."""
    last = next((m.sender for m in reversed(view.history) if m.sender != view.me), None)
    if last is None:
        return TurnDecision(content="Goal met.", message_type="conclude_group_discussion")
    return TurnDecision(content="I work on assigned tasks: please assign me one.", message_type="discussion",
                        next_people=[last])


class ScriptedPolicy(Policy):
    """Rules instead of an LLM.

    ``queries``: capabilities to search once (then team up with ``team`` or every agent found);
    ``turns``: a callable ``view -> TurnDecision`` or a list of decisions played in order per chat (after the
    list: conclude); ``triggers``: wait for every unfinished task (default) or a callable;
    ``want_subteam``: bool or callable ``(view, task) -> bool``; ``answer``: callable ``view -> str`` for
    conclusions (default: the finished tasks' results).
    """

    def __init__(self, team: Sequence[str] | None = None, queries: Sequence[str] = (),
                 turns: TurnRule | Sequence[TurnDecision] = (), triggers: Callable | None = None,
                 want_subteam: bool | Callable[[ChatView, TaskSpec], bool] = False,
                 answer: Callable[[ChatView], str] | None = None):
        self.team, self.queries, self.turns = list(team) if team is not None else None, list(queries), turns
        self.triggers, self._want_subteam, self.answer = triggers, want_subteam, answer
        self._turn_index: dict[str, int] = {}

    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Search once with ``queries``, then team up."""
        if self.queries and not tool_log and not force_team_up:
            return ToolCall("agent_discovery", queries=list(self.queries))
        members = self.team if self.team is not None else [c.name for c in contacts]
        return ToolCall("team_up", team_members=[me.name, *members])

    def turn(self, view: ChatView) -> TurnDecision:
        """The next scripted decision."""
        if callable(self.turns):
            return self.turns(view)
        index = self._turn_index.get(view.comm_id, 0)
        self._turn_index[view.comm_id] = index + 1
        if index < len(self.turns):
            return self.turns[index]
        return TurnDecision(content="Goal met.", message_type="conclude_group_discussion")

    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Every unfinished task unless a rule says otherwise."""
        if self.triggers is not None:
            return list(self.triggers(view, candidates))
        return [c["task_id"] for c in candidates]

    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """The task text as is, with finished results as inputs."""
        return TaskSpec(abstract=my_task[:80], description=my_task, inputs=completed_results(view))

    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """The configured nested-team rule."""
        return self._want_subteam(view, task) if callable(self._want_subteam) else bool(self._want_subteam)

    def conclude(self, view: ChatView) -> str:
        """The configured answer, else the finished tasks' results (else the goal restated)."""
        if self.answer is not None:
            return self.answer(view)
        return completed_results(view) or f"Done: {view.goal}"
