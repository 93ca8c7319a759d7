"""The LLM policy: every decision is one JSON-mode call to any OpenAI-compatible ``/chat/completions`` endpoint.

The prompts are our own wording of the original's rules (brief §2.3–2.4) with the same JSON keys:
``{content, thought, message_type, next_people}`` per turn; team formation uses a JSON tool choice
(``{"tool": "agent_discovery"|"team_up", ...}``) so servers without function calling work too. Servers that
reject ``response_format`` are retried without it, and JSON is recovered from fenced or chatty replies.
Defaults follow the paper: temperature 0.1; the original retried 20 times with 4–10 s backoff (we default
to 5 tries, 1–8 s; both are parameters).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from agents_kit.client.policies.base import ChatView, Policy, TaskSpec, ToolCall, TurnDecision
from agents_kit.protocol import AgentMessage, AgentProfile
from shared.errors import ConfigError, PaperkitsError


class LLMError(PaperkitsError):
    """The endpoint failed or kept answering with unusable JSON."""


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (handles ```json fences and prose around it)."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise
        value = json.loads(text[start:end + 1])
    if not isinstance(value, dict):
        raise json.JSONDecodeError("expected a JSON object", text, 0)
    return value


class OpenAICompatibleLLM:
    """A minimal chat-completions client (httpx) with retries, JSON mode and token accounting."""

    def __init__(self, base_url: str, model: str, api_key: str = "", temperature: float = 0.1,
                 timeout_s: float = 120.0, max_retries: int = 5, backoff_s: tuple[float, float] = (1.0, 8.0)):
        if not base_url or not model:
            raise ConfigError("the LLM policy needs llm.base_url (e.g. http://127.0.0.1:8000/v1) and llm.model")
        self.base_url, self.model, self.api_key = base_url.rstrip("/"), model, api_key
        self.temperature, self.timeout_s, self.max_retries, self.backoff_s = temperature, timeout_s, max_retries, backoff_s
        self.json_mode = True
        self.usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "json_repairs": 0}

    def chat_json(self, system: str, user: str) -> dict[str, Any]:
        """One call whose reply must be a JSON object (a bad reply is retried with a reminder)."""
        import httpx

        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        delay, last_error = self.backoff_s[0], ""
        for _ in range(self.max_retries):
            body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
            if self.json_mode:
                body["response_format"] = {"type": "json_object"}
            try:
                response = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers,
                                      timeout=self.timeout_s)
            except httpx.TransportError as err:
                last_error = f"transport error {err}"
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_s[1])
                continue
            if response.status_code == 400 and self.json_mode:
                self.json_mode = False  # the server does not support response_format
                continue
            if response.status_code in (429, 500, 502, 503, 504):
                last_error = f"HTTP {response.status_code}"
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_s[1])
                continue
            if response.status_code >= 400:
                raise LLMError(f"{self.base_url}/chat/completions -> HTTP {response.status_code}: {response.text[:300]}")
            data = response.json()
            self.usage["calls"] += 1
            for key in ("prompt_tokens", "completion_tokens"):
                self.usage[key] += int((data.get("usage") or {}).get(key, 0))
            content = data["choices"][0]["message"].get("content") or ""
            try:
                return extract_json(content)
            except json.JSONDecodeError:
                self.usage["json_repairs"] += 1
                last_error = f"reply was not JSON: {content[:200]!r}"
                messages = [*messages, {"role": "assistant", "content": content},
                            {"role": "user", "content": "Answer again with only one valid JSON object."}]
        raise LLMError(f"no usable answer from {self.base_url} after {self.max_retries} tries ({last_error})")


RULES = """You are {me}, an agent in a group chat on the Internet of Agents. Members: {members}.
Conversation rules:
- Each turn you write exactly one message and choose its type:
  "discussion" (share a view, ask, answer), "sync_task_assign" (give tasks and wait for them),
  "async_task_assign" (give tasks that run in the background), "pause" (wait for running tasks whose results
  the discussion needs), "conclude_group_discussion" (only when the goal is met).
- discussion and pause name exactly one next speaker; a task assignment names the owners (you may include
  yourself), one task per owner, and never assigns tasks that depend on each other in the same turn.
- Use pause only while tasks the discussion depends on are still running.
Reply with JSON: {{"thought": str, "content": str, "message_type": str, "next_people": [names],
"tasks": {{owner: task text}} (only for task assignments)}}."""


class LLMPolicy(Policy):
    """Decisions from an OpenAI-compatible chat model."""

    def __init__(self, llm: OpenAICompatibleLLM, persona: str = "", history_messages: int = 40):
        self.llm, self.persona, self.history_messages = llm, persona, history_messages

    def _header(self, view: ChatView) -> str:
        members = ", ".join(f"{m.name} ({m.type.value}: {m.desc})" for m in view.members)
        return (self.persona + "\n" if self.persona else "") + RULES.format(me=view.me, members=members)

    def _board(self, view: ChatView) -> str:
        if not view.task_board:
            return "(no tasks yet)"
        return "\n".join(f"{t['index']}. [{t['status']}] {t['assignee']}: {t['abstract']}"
                         + (f" -> {t['conclusion']}" if t["conclusion"] else "") for t in view.task_board)

    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Search from several angles, then recruit a lean team (1–4 members, yourself included)."""
        book = "\n".join(f"- {c.name} ({c.type.value}): {c.desc}" for c in contacts) or "(empty)"
        log = json.dumps(tool_log)[-4000:] if tool_log else "(none)"
        system = (f"You are {me.name}: {me.desc}. Form a team for a goal. Tools: agent_discovery(queries: list of "
                  "desired capabilities) searches the registry; team_up(team_members: list of names, include "
                  "yourself) creates the group chat. Prefer a lean team (1-4 members) without overlapping skills; "
                  "search several times from different angles before teaming up; Occam's razor.\n"
                  'Reply with JSON: {"tool": "agent_discovery", "queries": [...]} or '
                  '{"tool": "team_up", "team_members": [...]}.')
        if force_team_up:
            system += "\nYou must call team_up now."
        data = self.llm.chat_json(system, f"Goal: {goal}\nAddress book:\n{book}\nEarlier tool results: {log}")
        if force_team_up or data.get("tool") == "team_up":
            members = [str(x) for x in data.get("team_members", [])]
            return ToolCall("team_up", team_members=[me.name, *[m for m in members if m != me.name]])
        return ToolCall("agent_discovery", queries=[str(q) for q in data.get("queries", [])] or [goal])

    def turn(self, view: ChatView) -> TurnDecision:
        """One turn."""
        user = (f"Goal: {view.goal}\nTask board:\n{self._board(view)}\nChat so far:\n"
                f"{view.transcript(self.history_messages) or '(empty)'}")
        if view.must_conclude:
            user += "\nThe turn budget is used up: you must now choose conclude_group_discussion."
        data = self.llm.chat_json(self._header(view), user)
        people = data.get("next_people") or []
        if isinstance(people, str):
            people = [people]
        tasks = data.get("tasks") if isinstance(data.get("tasks"), dict) else {}
        return TurnDecision(content=str(data.get("content", "")), message_type=str(data.get("message_type", "")),
                            next_people=[str(p) for p in people], thought=str(data.get("thought", "")),
                            tasks={str(k): str(v) for k, v in tasks.items()})

    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Which running tasks the discussion must wait for."""
        listing = "\n".join(f"{i}. {c['assignee']}: {c['abstract']}" for i, c in enumerate(candidates))
        data = self.llm.chat_json(self._header(view), f"Running tasks:\n{listing}\nChat:\n{view.transcript(10)}\n"
                                  'Which task indices must finish before the discussion continues? Reply '
                                  '{"indices": [int]}.')
        indices = [i for i in data.get("indices", []) if isinstance(i, int) and 0 <= i < len(candidates)]
        return [candidates[i]["task_id"] for i in indices]

    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """Make the assigned task self-contained (last 5 chat messages + finished tasks as context)."""
        items = [f"[{m.sender}] {m.content}" for m in view.history if m.type.value not in
                 ("inform_task_progress", "inform_task_result")][-5:]
        items += [f"[result of {t['assignee']}] {t['conclusion']}" for t in view.task_board
                  if t["status"] in ("completed", "failed")]
        listing = "\n".join(f"{i}. {text}" for i, text in enumerate(items))
        data = self.llm.chat_json(
            f"You are {view.me}. Rewrite the task you were assigned so someone without the chat can do it.",
            f"Goal: {view.goal}\nYour task: {my_task}\nContext items:\n{listing}\nReply JSON: "
            '{"thought": str, "task_abstract": str, "task_description": str, "index_to_integrate": [int], '
            '"context_information": str, "completion_criteria": str}')
        chosen = [items[i] for i in data.get("index_to_integrate", []) if isinstance(i, int) and 0 <= i < len(items)]
        inputs = "\n".join(chosen + ([str(data["context_information"])] if data.get("context_information") else []))
        return TaskSpec(abstract=str(data.get("task_abstract") or my_task[:80]),
                        description=str(data.get("task_description") or my_task), inputs=inputs,
                        completion_criteria=str(data.get("completion_criteria", "")))

    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """Individual work or a sub-team (Occam's razor)."""
        book = "\n".join(f"- {c.name}: {c.desc}" for c in view.contacts) or "(empty)"
        data = self.llm.chat_json(f"You are {view.me}. Decide whether to do a task yourself or recruit a sub-team. "
                                  "Prefer working individually unless the task clearly needs skills you lack.",
                                  f"Task: {task.as_prompt()}\nAddress book:\n{book}\n"
                                  'Reply {"thought": str, "decision": "individual" | "teamwork"}.')
        return str(data.get("decision", "individual")).lower() == "teamwork"

    def conclude(self, view: ChatView) -> str:
        """The complete final answer from the whole chat."""
        data = self.llm.chat_json(self._header(view), f"Goal: {view.goal}\nTask board:\n{self._board(view)}\nChat:\n"
                                  f"{view.transcript()}\nThe goal is achieved. Give the complete final answer as "
                                  '{"content": str}.')
        return str(data.get("content", ""))
