"""Per-chat task tracking (brief §2.5): the task board, monotonic statuses, and pause triggers.

Tasks live in one map keyed by ``task_id`` with the index as an attribute, so a persistence round trip can
never create two diverging copies of a task (the original's hang, brief §6 bug 5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents_kit.protocol import STATUS_PRIORITY, TaskStatus

TERMINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclasses.dataclass
class Task:
    """One assigned task as every chat member sees it."""

    task_id: str
    index: int
    assignee: str
    desc: str = ""
    abstract: str = ""
    status: TaskStatus = TaskStatus.TO_START
    conclusion: str = ""

    @property
    def done(self) -> bool:
        """COMPLETED or FAILED."""
        return self.status in TERMINAL


class TaskManager:
    """Tasks of one chat plus the pause triggers (task ids whose results the discussion waits for)."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.triggers: dict[str, bool] = {}
        self.trigger_setter: str | None = None

    def upsert(self, task_id: str, assignee: str, *, desc: str | None = None, abstract: str | None = None,
               status: TaskStatus = TaskStatus.TO_START, conclusion: str | None = None) -> Task:
        """Create or update a task; the status never moves backwards (a late progress after a result is ignored)."""
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = Task(task_id=task_id, index=len(self.tasks), assignee=assignee)
        if desc:
            task.desc = desc
        if abstract:
            task.abstract = abstract
        if STATUS_PRIORITY[status] >= STATUS_PRIORITY[task.status]:
            if not task.done:  # COMPLETED and FAILED share a priority; the first terminal status wins
                task.status = status
        if conclusion is not None and status in TERMINAL:
            task.conclusion = conclusion
        if task_id in self.triggers:
            self.triggers[task_id] = task.done
        return task

    def set_triggers(self, task_ids: list[str], setter: str) -> bool:
        """Pause until ``task_ids`` are done; returns True when they already are (fire immediately)."""
        self.triggers = {tid: self.tasks[tid].done if tid in self.tasks else False for tid in task_ids}
        self.trigger_setter = setter
        return bool(self.triggers) and all(self.triggers.values())

    def all_triggers_done(self) -> bool:
        """True when a pause is set and every trigger task is terminal."""
        return bool(self.triggers) and all(self.triggers.values())

    def clear_triggers(self) -> None:
        """Forget the pause (after the setter resumed)."""
        self.triggers, self.trigger_setter = {}, None

    def in_progress(self) -> list[Task]:
        """Tasks that are not terminal, by index."""
        return sorted((t for t in self.tasks.values() if not t.done), key=lambda t: t.index)

    def completed(self) -> list[Task]:
        """Terminal tasks, by index."""
        return sorted((t for t in self.tasks.values() if t.done), key=lambda t: t.index)

    def board(self) -> list[dict[str, Any]]:
        """The human-readable task board injected into each turn: index, assignee, abstract, status."""
        return [{"index": t.index, "task_id": t.task_id, "assignee": t.assignee, "abstract": t.abstract or t.desc,
                 "status": t.status.value, "conclusion": t.conclusion}
                for t in sorted(self.tasks.values(), key=lambda t: t.index)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot."""
        return {"tasks": [dict(dataclasses.asdict(t), status=t.status.value) for t in self.tasks.values()],
                "triggers": dict(self.triggers), "trigger_setter": self.trigger_setter}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskManager:
        """Rebuild from :meth:`to_dict`."""
        manager = cls()
        for row in data["tasks"]:
            manager.tasks[row["task_id"]] = Task(**dict(row, status=TaskStatus(row["status"])))
        manager.triggers = dict(data["triggers"])
        manager.trigger_setter = data["trigger_setter"]
        return manager
