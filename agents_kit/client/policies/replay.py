"""Record every decision of a policy to JSONL once (e.g. with a real LLM), replay it deterministically in tests.

Each line is ``{"agent", "point", "output"}``; replay serves each decision point's recorded outputs in order
(per point, so concurrent chats that interleave differently still replay), and fails loudly when a recording
runs out or names a different decision point.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from agents_kit.client.policies.base import ChatView, Policy, TaskSpec, ToolCall, TurnDecision
from agents_kit.protocol import AgentMessage, AgentProfile
from shared.errors import DataError

_KINDS = {"ToolCall": ToolCall, "TurnDecision": TurnDecision, "TaskSpec": TaskSpec}


def encode(value: Any) -> Any:
    """A JSON-able form of a decision output."""
    if dataclasses.is_dataclass(value):
        return {"__kind__": type(value).__name__, **dataclasses.asdict(value)}
    return value


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, dict) and value.get("__kind__") in _KINDS:
        fields = {k: v for k, v in value.items() if k != "__kind__"}
        return _KINDS[value["__kind__"]](**fields)
    return value


class RecordingPolicy(Policy):
    """Wraps a policy and appends each decision to ``path`` (flushed per line, safe across threads)."""

    def __init__(self, inner: Policy, path: str | Path, agent: str = ""):
        self.inner, self.path, self.agent = inner, Path(path), agent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _record(self, point: str, output: Any) -> Any:
        with self._lock, self.path.open("a") as handle:
            handle.write(json.dumps({"agent": self.agent, "point": point, "output": encode(output)}) + "\n")
        return output

    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Delegate and record."""
        return self._record("plan_team", self.inner.plan_team(me, goal, contacts, tool_log, force_team_up))

    def turn(self, view: ChatView) -> TurnDecision:
        """Delegate and record."""
        return self._record("turn", self.inner.turn(view))

    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Delegate and record (as candidate positions, since task ids are fresh in every run)."""
        picked = self.inner.pick_triggers(view, candidates)
        ids = [c["task_id"] for c in candidates]
        self._record("pick_triggers", [ids.index(t) for t in picked if t in ids])
        return picked

    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """Delegate and record."""
        return self._record("rephrase", self.inner.rephrase(view, assignment, my_task))

    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """Delegate and record."""
        return self._record("want_subteam", self.inner.want_subteam(view, task))

    def conclude(self, view: ChatView) -> str:
        """Delegate and record."""
        return self._record("conclude", self.inner.conclude(view))


class ReplayExhausted(DataError):
    """A replay needed a decision the recording does not have (prompts or flow changed since recording)."""


class ReplayPolicy(Policy):
    """Serves recorded decisions; ``agent`` selects one agent's lines from a shared recording."""

    def __init__(self, path: str | Path, agent: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"recording {path} does not exist; record one with RecordingPolicy first")
        self.queues: dict[str, deque] = defaultdict(deque)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                point, output = row["point"], row["output"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DataError(f"{path}:{number} is not a recording line ({err}); expected "
                                '{"agent", "point", "output"}') from err
            if agent is None or row.get("agent", "") == agent:
                self.queues[point].append(decode(output))
        self.path, self.agent = path, agent
        self._lock = threading.Lock()

    def _next(self, point: str) -> Any:
        with self._lock:
            if not self.queues[point]:
                raise ReplayExhausted(f"{self.path}: no recorded '{point}' decision left for agent "
                                      f"{self.agent!r}; re-record the conversation")
            return self.queues[point].popleft()

    def remaining(self) -> dict[str, int]:
        """Unused recorded decisions per point (all zero after a faithful replay)."""
        return {point: len(queue) for point, queue in self.queues.items()}

    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Next recorded team-formation step."""
        return self._next("plan_team")

    def turn(self, view: ChatView) -> TurnDecision:
        """Next recorded turn."""
        return self._next("turn")

    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Recorded candidate positions mapped to this run's task ids."""
        return [candidates[i]["task_id"] for i in self._next("pick_triggers") if i < len(candidates)]

    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """Next recorded task spec."""
        return self._next("rephrase")

    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """Next recorded nested-team choice."""
        return bool(self._next("want_subteam"))

    def conclude(self, view: ChatView) -> str:
        """Next recorded conclusion."""
        return str(self._next("conclude"))
