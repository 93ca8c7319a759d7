"""The third-party agent contract, ``run(task) -> str`` (paper App. A.2.1), and its adapters.

``ToolAgent.run`` may block (it runs in a worker thread), raise (the task is reported FAILED with the error
text) or take long (``timeout_s``): none of it blocks the client's other chats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from shared.errors import ConfigError


@runtime_checkable
class ToolAgent(Protocol):
    """Anything with ``run(task: str) -> str``."""

    def run(self, task: str) -> str:
        """Do the task and return the final text."""


class CallableAgent:
    """Wrap a plain Python function ``f(task) -> str``."""

    def __init__(self, func: Callable[[str], str]):
        self.func = func

    def run(self, task: str) -> str:
        """Call the function."""
        return str(self.func(task))


class HttpRunAgent:
    """An agent behind ``POST {url}/run {"task_desc": ...}`` answering ``{"result": ...}`` (or plain text)."""

    def __init__(self, url: str, timeout_s: float = 600.0):
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def run(self, task: str) -> str:
        """POST the task and return the result text."""
        import httpx

        response = httpx.post(f"{self.url}/run", json={"task_desc": task}, timeout=self.timeout_s)
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith("application/json"):
            data = response.json()
            if isinstance(data, dict):
                for key in ("result", "output", "conclusion"):
                    if key in data:
                        return str(data[key])
            return str(data)
        return response.text


class AgentProtocolAgent:
    """An Agent Protocol server (``/ap/v1/agent/tasks``; e.g. AutoGPT): create a task, step until ``is_last``.

    Like the original adapter, a last "summarise your final answer" step is requested when the step budget
    runs out before the agent finishes.
    """

    def __init__(self, url: str, max_steps: int = 20, timeout_s: float = 600.0):
        self.url, self.max_steps, self.timeout_s = url.rstrip("/"), max_steps, timeout_s

    def run(self, task: str) -> str:
        """Create the task and run steps; returns the last step's output."""
        import httpx

        deadline = time.monotonic() + self.timeout_s
        with httpx.Client(base_url=f"{self.url}/ap/v1/agent", timeout=self.timeout_s) as http:
            created = http.post("/tasks", json={"input": task})
            created.raise_for_status()
            task_id = created.json()["task_id"]
            output: Any = ""
            for _ in range(self.max_steps):
                step = http.post(f"/tasks/{task_id}/steps", json={})
                step.raise_for_status()
                data = step.json()
                output = data.get("output") or output
                if data.get("is_last") or time.monotonic() > deadline:
                    return str(output)
            final = http.post(f"/tasks/{task_id}/steps", json={"input": "Summarise your final answer now."})
            final.raise_for_status()
            return str(final.json().get("output") or output)


def make_tool_agent(kind: str, target: str = "", **options: Any) -> ToolAgent | None:
    """``none``, ``callable`` (``module:function``), ``http`` (base URL) or ``agent_protocol`` (base URL)."""
    if kind in ("", "none"):
        return None
    if kind == "callable":
        import importlib

        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ConfigError(f"tool_agent.target must look like 'package.module:function', got {target!r}")
        try:
            func = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot load tool agent {target!r}: {err}") from err
        return func if isinstance(func, ToolAgent) and not callable(func) else CallableAgent(func)
    if kind == "http":
        return HttpRunAgent(target, **options)
    if kind == "agent_protocol":
        return AgentProtocolAgent(target, **options)
    raise ConfigError(f"unknown tool_agent.kind {kind!r}; use none, callable, http or agent_protocol")
