"""IoA-Synth: a generated fact world split across agents, whose questions need discovery, parallel (async)
tasks with pause & trigger, and nested teams (brief §8.6, reduced).

Relations (person→employer, company→founded, company→headquarters, city→population) each live in one
Thing Assistant; a calculator does arithmetic; distractor agents know unrelated things. Questions are
2-hop chains, 3-hop chains and 2-branch joins with a difference (one join's branches need different agents,
so async tasks can run in parallel). Scripted agents act through the *real*
server, clients and conversation machine; the only thing scripted is what an LLM would decide.

Systems (the ``arm``): ``single`` (the planner alone with its own shard), ``broadcast`` (every registered
agent in one chat, each answers in turn — the flat baseline), ``ioa_sync`` (discovered team, one sync task
per turn), ``ioa_async`` (discovered team, parallel async tasks + pause & trigger), ``ioa_nested`` (join
questions split between two branch leads who form sub-teams).
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
from typing import Any

from agents_kit.client.policies.base import ChatView, Policy, TaskSpec, ToolCall, TurnDecision
from agents_kit.protocol import AgentMessage, AgentProfile, new_id

RELATIONS = {  # relation -> (description of its owner, discovery query the planner writes)
    "employer": ("Knows which company each person works for, from employment records.",
                 "which company does a person work for"),
    "founded": ("Knows the year each company was founded, from the corporate registry.",
                "year a company was founded"),
    "headquarters": ("Knows the city where each company has its headquarters.",
                     "city where a company has its headquarters"),
    "population": ("Knows the population of each city, from census data.", "population of a city"),
    "difference": ("Calculator: computes arithmetic such as the absolute difference of two numbers.",
                   "arithmetic calculator for the difference of two numbers"),
}
DISTRACTOR_FACTS = [("person", "birthday"), ("person", "school"), ("person", "email address"), ("person", "hobby"),
                    ("company", "chief executive"), ("company", "stock ticker"), ("company", "revenue"),
                    ("company", "logo colour"), ("city", "mayor"), ("city", "river"), ("city", "airport"),
                    ("city", "average temperature")]
QUESTIONS = [
    (re.compile(r"In what year was the employer of (\w+) founded\?"), "founded(employer({0}))"),
    (re.compile(r"How many years apart were the employers of (\w+) and (\w+) founded\?"),
     "difference(founded(employer({0})),founded(employer({1})))"),
    (re.compile(r"What is the population of the city where the employer of (\w+) is headquartered\?"),
     "population(headquarters(employer({0})))"),
    # two branches owned by different agents (headquarters vs founded): where async tasks run in parallel
    (re.compile(r"How far apart are the population of the headquarters city of (\w+)'s employer and the "
                r"founding year of (\w+)'s employer\?"),
     "difference(population(headquarters(employer({0}))),founded(employer({1})))"),
]
ARMS = ("single", "broadcast", "ioa_sync", "ioa_async", "ioa_nested")
_CALL = re.compile(r"^(\w+)\((.*)\)$")


def parse_expr(text: str) -> tuple[str, list[Any]] | str:
    """``rel(a,b(c))`` → ("rel", ["a", ("b", ["c"])]); a bare literal stays a string."""
    match = _CALL.match(text.strip())
    if not match:
        return text.strip()
    name, inner = match.groups()
    args, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            args.append(inner[start:i])
            start = i + 1
    args.append(inner[start:])
    return name, [parse_expr(a) for a in args if a.strip()]


def render(expr: Any) -> str:
    """Inverse of :func:`parse_expr`."""
    if isinstance(expr, str):
        return expr
    return f"{expr[0]}({','.join(render(a) for a in expr[1])})"


def subexpressions(expr: Any) -> list[Any]:
    """Every call node, children before parents."""
    if isinstance(expr, str):
        return []
    out = [s for a in expr[1] for s in subexpressions(a)]
    return [*out, expr]


def question_to_expr(text: str) -> str | None:
    """The canonical expression a question asks for (None when no template matches)."""
    for pattern, template in QUESTIONS:
        match = pattern.search(text)
        if match:
            return template.format(*match.groups())
    return None


def parse_facts(text: str) -> dict[str, str]:
    """``expr = value`` lines → {expr: value} (``unknown`` values are skipped)."""
    facts = {}
    for line in text.splitlines():
        if " = " in line:
            expr, value = line.rsplit(" = ", 1)
            expr, value = expr.strip().split(": ")[-1], value.strip()
            if value and value != "unknown":
                facts[expr] = value
    return facts


@dataclasses.dataclass
class World:
    """Ground truth for one seed."""

    tables: dict[str, dict[str, str]]
    people: list[str]
    distractors: list[AgentProfile]

    def answer(self, expr: Any) -> str:
        """The true value of an expression."""
        if isinstance(expr, str):
            return expr
        name, args = expr
        values = [self.answer(a) for a in args]
        if name == "difference":
            return str(abs(int(values[0]) - int(values[1])))
        return self.tables[name][values[0]]

    def lookup(self, relation: str, task: str) -> str:
        """What the owner of ``relation`` answers for a task text listing ``rel(arg)`` calls."""
        lines = []
        for call in re.findall(r"\w+\([^()]*\)", task):
            name, args = parse_expr(call)
            if name == "difference" == relation:
                try:
                    lines.append(f"{call} = {abs(int(args[0]) - int(args[1]))}")
                except (ValueError, IndexError):
                    lines.append(f"{call} = unknown")
            elif name == relation and args and args[0] in self.tables.get(relation, {}):
                lines.append(f"{call} = {self.tables[relation][args[0]]}")
            else:
                lines.append(f"{call} = unknown")
        return "\n".join(lines) or "unknown"


def make_world(seed: int, n_people: int = 40, n_companies: int = 12, n_cities: int = 8,
               n_distractors: int = 20) -> World:
    """A random fact world and distractor profiles."""
    rng = random.Random(seed)
    people = [f"person{i:03d}" for i in range(n_people)]
    companies = [f"company{i:02d}" for i in range(n_companies)]
    cities = [f"city{i:02d}" for i in range(n_cities)]
    tables = {"employer": {p: rng.choice(companies) for p in people},
              "founded": {c: str(rng.randint(1850, 2020)) for c in companies},
              "headquarters": {c: rng.choice(cities) for c in companies},
              "population": {c: str(rng.randint(10_000, 5_000_000)) for c in cities}}
    distractors = []
    for i in range(n_distractors):
        entity, attribute = DISTRACTOR_FACTS[i % len(DISTRACTOR_FACTS)]
        distractors.append(AgentProfile(name=f"{attribute.title().replace(' ', '')}Agent{i:03d}",
                                        desc=f"Knows the {attribute} of each {entity}, from a public directory."))
    return World(tables=tables, people=people, distractors=distractors)


def make_questions(world: World, n: int, seed: int) -> list[tuple[str, str]]:
    """(question, true answer) pairs cycling through the three templates."""
    rng = random.Random(seed + 1000)
    out = []
    for i in range(n):
        p1, p2 = rng.sample(world.people, 2)
        kind = i % 4
        text = [f"In what year was the employer of {p1} founded?",
                f"How many years apart were the employers of {p1} and {p2} founded?",
                f"What is the population of the city where the employer of {p1} is headquartered?",
                f"How far apart are the population of the headquarters city of {p1}'s employer and the founding "
                f"year of {p2}'s employer?"][kind]
        out.append((text, world.answer(parse_expr(question_to_expr(text)))))
    return out


class SynthPolicy(Policy):
    """Scripted decisions for every role: planner (and branch lead) in chats it started, member elsewhere.

    ``own_relation``: the shard this agent answers in broadcast chats; ``route_noise``: probability of
    recruiting the second search hit instead of the first (emulates an LLM's routing slip).
    """

    def __init__(self, world: World, arm: str = "ioa_async", own_relation: str | None = None,
                 registry: list[str] | None = None, leads: list[str] | None = None, route_noise: float = 0.0,
                 true_owners: dict[str, str] | None = None, seed: int = 0):
        self.world, self.arm, self.own_relation = world, arm, own_relation
        self.registry, self.leads, self.route_noise = registry or [], leads or [], route_noise
        self.rng = random.Random(seed)
        self.true_owners = true_owners or {}
        self.owners: dict[str, dict[str, str]] = {}  # goal -> relation -> recruited agent
        self.calls: dict[str, dict[str, str]] = {}  # comm -> literal call -> canonical expr
        self._lock = threading.Lock()
        self.recruit_checks: list[bool] = []  # was each recruited owner the right one?

    # --- team formation ----------------------------------------------------------------------------------
    def plan_team(self, me: AgentProfile, goal: str, contacts: list[AgentProfile], tool_log: list[dict[str, Any]],
                  force_team_up: bool) -> ToolCall:
        """Search once per needed relation, recruit the top hit of each (with routing noise)."""
        expr = question_to_expr(goal)
        if self.arm == "single" or expr is None:
            return ToolCall("team_up", team_members=[me.name])
        if self.arm == "broadcast":
            return ToolCall("team_up", team_members=list(self.registry))
        if not tool_log:  # a fresh recruitment for every launch (no owners carried over from an earlier run)
            self.owners[goal] = {}
        if self.arm == "ioa_nested" and expr.startswith("difference(") and self.leads:
            # the two branches go to leads (who form sub-teams); the root only needs a calculator
            if not tool_log and not force_team_up:
                return ToolCall("agent_discovery", queries=[RELATIONS["difference"][1]])
            return ToolCall("team_up", team_members=[me.name, *self.leads, *self._owner_names(goal, ["difference"],
                                                                                         tool_log)])
        needed = sorted({node[0] for node in subexpressions(parse_expr(expr))})
        if len(tool_log) < len(needed) and not force_team_up:
            return ToolCall("agent_discovery", queries=[RELATIONS[needed[len(tool_log)]][1]])
        return ToolCall("team_up", team_members=[me.name, *self._owner_names(goal, needed, tool_log)])

    def _owner_names(self, goal: str, needed: list[str], tool_log: list[dict[str, Any]]) -> list[str]:
        owners = self.owners.setdefault(goal, {})
        for relation, entry in zip(needed, tool_log):
            hits = entry.get("hits", [])
            if not hits:
                continue
            pick = hits[1] if len(hits) > 1 and self.rng.random() < self.route_noise else hits[0]
            owners[relation] = pick
            self.recruit_checks.append(self.true_owners.get(relation) == pick)
        return list(owners.values())

    # --- turns -------------------------------------------------------------------------------------------
    def _known(self, view: ChatView) -> dict[str, str]:
        calls = self.calls.get(view.comm_id, {})
        known: dict[str, str] = {}
        texts = [t["conclusion"] for t in view.task_board if t["conclusion"]]
        texts += [m.content for m in view.history if m.sender != view.me]
        for text in texts:
            for literal, value in parse_facts(text).items():
                known[calls.get(literal, literal)] = value
        return known

    def _resolve(self, expr: Any, known: dict[str, str]) -> str | None:
        if isinstance(expr, str):
            return expr
        return known.get(render(expr))

    def turn(self, view: ChatView) -> TurnDecision:
        """Planner: assign the ready sub-questions, pause while they run, conclude when the root is known."""
        started_here = not view.history or view.history[0].sender == view.me
        root_text = question_to_expr(view.goal)
        if not started_here or root_text is None:
            return self._member_turn(view)
        root = parse_expr(root_text)
        known = self._known(view)
        if root_text in known or self.arm == "single":
            return TurnDecision(content="The goal is answered.", message_type="conclude_group_discussion")
        calls_so_far = self.calls.get(view.comm_id, {})
        pending = {calls_so_far.get(line, line) for t in view.task_board if t["status"] in ("to_start", "in_progress")
                   for line in t["abstract"].split("; ")}
        owners = self.owners.get(view.goal, {})
        if self.arm == "ioa_nested" and root[0] == "difference" and self.leads:
            branches = [a for a in root[1] if render(a) not in known and render(a) not in pending]
            if branches and not view.task_board:
                tasks = {lead: self._branch_question(branch) for lead, branch in zip(self.leads, root[1])}
                return TurnDecision(content="; ".join(tasks.values()), message_type="async_task_assign",
                                    next_people=list(tasks), tasks=tasks)
        ready: dict[str, list[str]] = {}
        with self._lock:
            calls = self.calls.setdefault(view.comm_id, {})
            for node in subexpressions(root):
                canonical = render(node)
                if canonical in known or canonical in pending:
                    continue
                args = [self._resolve(a, known) for a in node[1]]
                if any(a is None for a in args):
                    continue
                literal = f"{node[0]}({','.join(args)})"
                calls[literal] = canonical
                ready.setdefault(node[0], []).append(literal)
        if self.arm == "broadcast":
            asked = {lit for m in view.history if m.sender == view.me and m.content.startswith("QUESTION: ")
                     for lit in m.content.removeprefix("QUESTION: ").split("; ")}
            if not ready or all(lit in asked for lits in ready.values() for lit in lits):
                return TurnDecision(content="Nobody knew; concluding.", message_type="conclude_group_discussion")
            members = [m.name for m in view.members if m.name != view.me]
            question = "QUESTION: " + "; ".join(lit for lits in ready.values() for lit in lits)
            return TurnDecision(content=question, message_type="discussion", next_people=members[:1])
        # a call that already came back without an answer is not asked again (the owner does not know it)
        asked = {line for t in view.task_board if t["status"] in ("completed", "failed")
                 for line in t["abstract"].split("; ")}
        ready = {r: [lit for lit in lits if lit not in asked] for r, lits in ready.items()}
        assignable = {owners[r]: lits for r, lits in ready.items() if r in owners and lits}
        if self.arm == "ioa_sync" and assignable:
            owner, lits = next(iter(assignable.items()))
            return TurnDecision(content=f"{owner}: {'; '.join(lits)}", message_type="sync_task_assign",
                                next_people=[owner], tasks={owner: "; ".join(lits)})
        if assignable:
            tasks = {owner: "; ".join(lits) for owner, lits in assignable.items()}
            return TurnDecision(content=" | ".join(f"{o}: {t}" for o, t in tasks.items()),
                                message_type="async_task_assign", next_people=list(tasks), tasks=tasks)
        if pending:
            return TurnDecision(content="Waiting for the running tasks.", message_type="pause")
        return TurnDecision(content="Stuck: a needed fact is unknown.", message_type="conclude_group_discussion")

    @staticmethod
    def _branch_question(branch: Any) -> str:
        """The sub-goal a branch lead receives: a question its own planner can parse."""
        if branch[0] == "founded":  # founded(employer(person))
            return f"In what year was the employer of {branch[1][0][1][0]} founded?"
        person = branch[1][0][1][0][1][0]  # population(headquarters(employer(person)))
        return f"What is the population of the city where the employer of {person} is headquartered?"

    def _member_turn(self, view: ChatView) -> TurnDecision:
        """Broadcast member: answer what my shard knows, pass the floor to the next member (the last → planner)."""
        question = next((m for m in reversed(view.history) if m.content.startswith("QUESTION: ")), None)
        if question is None:
            return TurnDecision(content="Nothing to add.", message_type="discussion", next_people=[])
        answer = self.world.lookup(self.own_relation, question.content) if self.own_relation else ""
        known = "\n".join(line for line in answer.splitlines() if not line.endswith("= unknown"))
        order = [m.name for m in view.members if m.name != question.sender]
        after = order[order.index(view.me) + 1:] if view.me in order else []
        return TurnDecision(content=known or "I do not know.", message_type="discussion",
                            next_people=[after[0] if after else question.sender])

    def pick_triggers(self, view: ChatView, candidates: list[dict[str, Any]]) -> list[str]:
        """Wait for every running task."""
        return [c["task_id"] for c in candidates]

    def rephrase(self, view: ChatView, assignment: AgentMessage, my_task: str) -> TaskSpec:
        """The assigned calls, verbatim (abstract = the calls, so the planner can track them)."""
        return TaskSpec(abstract=my_task, description=my_task)

    def want_subteam(self, view: ChatView, task: TaskSpec) -> bool:
        """Branch leads recruit a sub-team for a question they can parse."""
        return question_to_expr(task.description) is not None

    def conclude(self, view: ChatView) -> str:
        """``root = value`` (or ``unknown``); an owner without a tool answers from its shard."""
        root = question_to_expr(view.goal)
        if root is None:  # a task run without a tool: answer from the own shard
            return self.world.lookup(self.own_relation or "", view.goal)
        # the single agent has only its own shard, which never covers a whole question
        return f"{root} = {self._known(view).get(root, 'unknown')}"


def tool_for(world: World, relation: str | None, latency: tuple[float, float], seed: int):
    """A thing assistant's ``run(task)``: a table lookup after a simulated latency."""
    rng = random.Random(seed)

    def run(task: str) -> str:
        time.sleep(rng.uniform(*latency))
        return world.lookup(relation or "", task)

    return run


@dataclasses.dataclass
class SuiteSpec:
    """One task-suite run."""

    n_questions: int = 12
    n_distractors: int = 20
    latency_s: tuple[float, float] = (0.02, 0.08)  # simulated tool latency, U(20, 80) ms as in brief §8.6
    route_noise: float = 0.0
    timeout_per_question_s: float = 30.0
    seed: int = 0


async def run_suite(server_url: str, admin_token: str, arms: list[str], spec: SuiteSpec) -> list[dict[str, Any]]:
    """Solve the generated questions once per arm; one row per (arm) with means over questions."""
    import httpx

    from agents_kit.client.adapters.base import CallableAgent
    from agents_kit.client.flow import IoAClient
    from agents_kit.protocol import AgentKind

    world = make_world(spec.seed, n_distractors=spec.n_distractors)
    questions = make_questions(world, spec.n_questions, spec.seed)
    rng = random.Random(spec.seed)
    tag = new_id()[:6]  # fresh names: several suites may share one server
    # neutral names, so only descriptions decide the search
    numbers = rng.sample(range(1000), len(RELATIONS) + len(world.distractors) + 3)
    name = iter(f"agent_{tag}_{n:03d}" for n in numbers)
    owners = {relation: next(name) for relation in RELATIONS}
    distractors = {next(name): d.desc for d in world.distractors}
    planner_name, leads = next(name), [next(name), next(name)]
    registry = [*owners.values(), *distractors, *leads]
    planner_policy = SynthPolicy(world, registry=registry, leads=leads, route_noise=spec.route_noise,
                                 true_owners=owners, seed=spec.seed)
    agents = [IoAClient(server_url, planner_name, "Plans and answers questions about people and companies.",
                        planner_policy, kind=AgentKind.HUMAN_ASSISTANT)]
    # clients are closed by default: the suite's agents pre-consent to the team-ups of its recruiters only
    recruiters = [planner_name, *leads]
    for i, (relation, agent_name) in enumerate(owners.items()):
        agents.append(IoAClient(server_url, agent_name, RELATIONS[relation][0],
                                SynthPolicy(world, own_relation=relation),
                                tool=CallableAgent(tool_for(world, relation, spec.latency_s, spec.seed + i)),
                                accept_teams_from=recruiters))
    for i, (agent_name, desc) in enumerate(distractors.items()):
        agents.append(IoAClient(server_url, agent_name, desc, SynthPolicy(world),
                                tool=CallableAgent(tool_for(world, None, spec.latency_s, spec.seed + 100 + i)),
                                accept_teams_from=recruiters))
    for lead in leads:
        agents.append(IoAClient(server_url, lead, "Coordinates small research teams about people and companies.",
                                SynthPolicy(world, arm="ioa_async", true_owners=owners, seed=spec.seed),
                                kind=AgentKind.HUMAN_ASSISTANT, support_nested_teams=True,
                                accept_teams_from=recruiters))
    for agent in agents:
        await agent.start()
    rows = []
    http = httpx.AsyncClient(base_url=server_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60)
    try:
        for arm in arms:
            planner_policy.arm = arm
            planner_policy.recruit_checks.clear()
            stats = {"correct": 0, "messages": 0, "decisions": 0, "channels": 0, "channels_flat": 0, "seconds": 0.0,
                     "timeouts": 0}
            for question, truth in questions:
                before = {c["comm_id"] for c in (await http.get("/chats")).json()}
                decisions = sum(a.decisions for a in agents)
                start = time.perf_counter()
                try:
                    _, conclusion = await planner.launch_goal(question, timeout=spec.timeout_per_question_s) \
                        if (planner := agents[0]) else ("", "")
                except TimeoutError:
                    conclusion = ""
                    stats["timeouts"] += 1
                stats["seconds"] += time.perf_counter() - start
                stats["decisions"] += sum(a.decisions for a in agents) - decisions
                new = [c for c in (await http.get("/chats")).json() if c["comm_id"] not in before]
                stats["messages"] += sum(c["messages"] for c in new)
                stats["channels"] += sum(len(c["members"]) * (len(c["members"]) - 1) // 2 for c in new)
                union = {m for c in new for m in c["members"]}  # the paper's c_full: one flat team of everyone
                stats["channels_flat"] += len(union) * (len(union) - 1) // 2
                stats["correct"] += parse_facts(conclusion).get(question_to_expr(question)) == truth
            n = len(questions)
            checks = planner_policy.recruit_checks
            row = {"arm": arm, "accuracy": stats["correct"] / n, "messages_per_task": stats["messages"] / n,
                   "decisions_per_task": stats["decisions"] / n, "channels_per_task": stats["channels"] / n,
                   "channels_if_flat_per_task": stats["channels_flat"] / n, "seconds_per_task": stats["seconds"] / n, "timeouts": stats["timeouts"]}
            if checks:  # only arms that search the registry recruit
                row["recruit_precision"] = sum(checks) / len(checks)
            rows.append(row)
    finally:
        await http.aclose()
        for agent in agents:
            await agent.stop()
    return rows
