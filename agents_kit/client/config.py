"""``agent.yaml``: the client configuration (the original's server / tool_agent / comm sections, plus policy).

Example::

    server: {url: http://127.0.0.1:7788}
    agent: {name: WikiAgent, type: Thing Assistant, desc: "Looks facts up in an encyclopedia.",
            accept_invites_from: Planner}                        # closed by default: whose invites to accept
    tool_agent: {kind: http, target: http://127.0.0.1:7070}     # POST /run {"task_desc": ...}
    policy:
      kind: llm                                                  # llm | scripted | replay
      llm: {base_url: http://127.0.0.1:8000/v1, model: qwen2.5-7b-instruct, api_key_env: OPENAI_API_KEY}
    comm: {support_nested_teams: false, max_team_up_attempts: 10}
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from urllib.parse import urlparse

from agents_kit.client.adapters.base import make_tool_agent
from agents_kit.client.flow import IoAClient
from agents_kit.client.policies.base import Policy
from agents_kit.protocol import AgentKind
from shared.errors import ConfigError


@dataclasses.dataclass
class ServerSection:
    """Where the IoA server listens."""

    url: str = "http://127.0.0.1:7788"


@dataclasses.dataclass
class AgentSection:
    """The registry profile; the token is kept in ``token_file`` (default: the paperkits cache)."""

    name: str = ""
    desc: str = ""
    type: str = AgentKind.THING_ASSISTANT.value
    token_file: str = ""
    # what this agent has handled (agents_kit/client/state.py): "" = next to the token file, ":memory:" = not kept
    state_file: str = ""
    # consent and keys (README "IoA server security model"); names comma-separated
    # closed by default: "" declines every invite; names, or "*" (anyone: a local demo)
    accept_invites_from: str = ""  # initiators whose team-up invites are accepted, the others' declined
    accept_teams_from: str = ""  # declared at registration: who adds this agent without an invite ("*": anyone)
    registration_key_env: str = "IOA_REGISTRATION_KEY"  # the variable holding the server's registration key


@dataclasses.dataclass
class ToolAgentSection:
    """The wrapped third-party agent: none | callable (module:function) | http | agent_protocol."""

    kind: str = "none"
    target: str = ""
    timeout_s: float = 600.0


@dataclasses.dataclass
class LLMSection:
    """Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp, Ollama, OpenAI...)."""

    base_url: str = ""
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.1  # the paper's setting
    max_retries: int = 5


@dataclasses.dataclass
class PolicySection:
    """How decisions are made; ``record_to`` appends every decision to a JSONL file for later replay."""

    kind: str = "llm"
    persona: str = ""
    recording: str = ""  # for kind=replay
    record_to: str = ""
    llm: LLMSection = dataclasses.field(default_factory=LLMSection)


@dataclasses.dataclass
class CommSection:
    """Conversation settings (defaults from the original code, brief §3)."""

    support_nested_teams: bool = False
    max_team_up_attempts: int = 10
    hard_turn_limit: int = 60  # our safety net; the original's max_turns was only a prompt hint
    search_k: int = 3
    search_online_only: bool = True  # recruit only connected agents (offline ones would stall the chat)


@dataclasses.dataclass
class ClientConfig:
    """Everything ``paperkits agents client --config agent.yaml`` needs."""

    server: ServerSection = dataclasses.field(default_factory=ServerSection)
    agent: AgentSection = dataclasses.field(default_factory=AgentSection)
    tool_agent: ToolAgentSection = dataclasses.field(default_factory=ToolAgentSection)
    policy: PolicySection = dataclasses.field(default_factory=PolicySection)
    comm: CommSection = dataclasses.field(default_factory=CommSection)


def make_policy(section: PolicySection, agent_name: str, has_tool: bool = False) -> Policy:
    """Build the configured policy (optionally wrapped in a recorder).

    A scripted agent with a tool agent hands the floor back when spoken to (it only runs assigned tasks);
    without a tool it concludes at once (useful for smoke tests).
    """
    from agents_kit.client.policies.llm import LLMPolicy, OpenAICompatibleLLM
    from agents_kit.client.policies.replay import RecordingPolicy, ReplayPolicy
    from agents_kit.client.policies.scripted import ScriptedPolicy, hand_floor_back

    if section.kind == "llm":
        llm = OpenAICompatibleLLM(section.llm.base_url, section.llm.model,
                                  api_key=os.environ.get(section.llm.api_key_env, ""),
                                  temperature=section.llm.temperature, max_retries=section.llm.max_retries)
        policy: Policy = LLMPolicy(llm, persona=section.persona)
    elif section.kind == "scripted":
        policy = ScriptedPolicy(turns=hand_floor_back) if has_tool else ScriptedPolicy()
    elif section.kind == "replay":
        if not section.recording:
            raise ConfigError("policy.kind=replay needs policy.recording (a JSONL file written by record_to)")
        policy = ReplayPolicy(section.recording, agent=agent_name)
    else:
        raise ConfigError(f"policy.kind must be llm, scripted or replay, got {section.kind!r}")
    if section.record_to:
        policy = RecordingPolicy(policy, section.record_to, agent=agent_name)
    return policy


def token_path(config: ClientConfig) -> Path:
    """Where this agent's token is kept."""
    if config.agent.token_file:
        return Path(config.agent.token_file).expanduser()
    from shared.paths import cache_dir

    where = urlparse(config.server.url.split(",")[0].strip())  # several servers share one registry: the first
    return cache_dir("agents", f"{where.hostname}_{where.port}") / f"{config.agent.name}.token"


def state_path(config: ClientConfig) -> str:
    """Where this agent's handled cursor is kept (``:memory:``: nowhere, a restart resumes at the server's ack)."""
    if config.agent.state_file:
        return config.agent.state_file if config.agent.state_file == ":memory:" else str(
            Path(config.agent.state_file).expanduser())
    return str(token_path(config).with_suffix(".state.sqlite"))


def build_client(config: ClientConfig) -> IoAClient:
    """An :class:`IoAClient` from a config (token read from ``token_path`` when it exists)."""
    if not config.agent.name:
        raise ConfigError("agent.name is required (the agent's unique name on the server)")
    try:
        kind = AgentKind(config.agent.type)
    except ValueError as err:
        raise ConfigError(f"agent.type must be 'Human Assistant' or 'Thing Assistant', got {config.agent.type!r}") from err
    tool = make_tool_agent(config.tool_agent.kind, config.tool_agent.target)
    path = token_path(config)
    token = path.read_text().strip() if path.is_file() else None
    names = [n.strip() for n in config.agent.accept_invites_from.split(",") if n.strip()]
    teams_from = [n.strip() for n in config.agent.accept_teams_from.split(",") if n.strip()]
    client = IoAClient(config.server.url, config.agent.name, config.agent.desc, make_policy(config.policy,
                       config.agent.name, has_tool=tool is not None), tool=tool, kind=kind, token=token,
                       support_nested_teams=config.comm.support_nested_teams,
                       max_team_up_attempts=config.comm.max_team_up_attempts,
                       hard_turn_limit=config.comm.hard_turn_limit, task_timeout_s=config.tool_agent.timeout_s,
                       search_k=config.comm.search_k, search_online_only=config.comm.search_online_only,
                       state=state_path(config),
                       accept_invites=True if "*" in names else set(names) if names else False,
                       accept_teams_from=teams_from or None)
    client.connection.registration_key = os.environ.get(config.agent.registration_key_env) or None
    return client


def save_token(config: ClientConfig, token: str) -> Path:
    """Keep the token so a restarted client can reconnect as the same agent."""
    from shared.results import atomic_write_text

    path = atomic_write_text(token_path(config), token)
    path.chmod(0o600)
    return path
