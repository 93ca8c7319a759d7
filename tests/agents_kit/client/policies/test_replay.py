import json
import time

import pytest

from agents_kit.client.adapters.base import CallableAgent
from agents_kit.client.flow import IoAClient
from agents_kit.client.policies.base import TurnDecision
from agents_kit.client.policies.replay import RecordingPolicy, ReplayExhausted, ReplayPolicy
from agents_kit.client.policies.scripted import ScriptedPolicy
from shared.errors import DataError
from tests.agents_kit.client.test_flow import planner_turn
from tests.agents_kit.conftest import run


async def _conversation(server, planner_policy, worker_policy, calc_policy):
    planner = IoAClient(server.url, "Planner", "plans", planner_policy)
    wiki = IoAClient(server.url, "Wiki", "encyclopedia facts", worker_policy, tool=CallableAgent(lambda t: time.sleep(0.4) or "Paris"),
                     accept_teams_from=["Planner"])
    calc = IoAClient(server.url, "Calc", "arithmetic", calc_policy, tool=CallableAgent(lambda t: "4"),
                     accept_teams_from=["Planner"])
    for agent in (wiki, calc, planner):
        await agent.start()
    comm, conclusion = await planner.launch_goal("capital and sum", timeout=20)
    record = await planner.connection.chat_record(comm)
    for agent in (wiki, calc, planner):
        await agent.stop()
    # the team_up notice names the (new) chat id; everything else must match exactly
    return [(m.sender, m.type.value, "" if m.type.value == "team_up" else m.content) for m in record], conclusion


def test_a_recorded_conversation_replays_identically(server_factory, tmp_path):
    path = tmp_path / "recording.jsonl"
    scripted = ScriptedPolicy(queries=["encyclopedia facts", "arithmetic"], turns=planner_turn)
    first = server_factory()
    recorded, conclusion = run(_conversation(first, RecordingPolicy(scripted, path, "Planner"),
                                             RecordingPolicy(ScriptedPolicy(), path, "Wiki"),
                                             RecordingPolicy(ScriptedPolicy(), path, "Calc")), timeout=40)
    first.stop()
    (tmp_path / "server.db").unlink()
    replays = {name: ReplayPolicy(path, agent=name) for name in ("Planner", "Wiki", "Calc")}
    second = server_factory()
    replayed, again = run(_conversation(second, replays["Planner"], replays["Wiki"], replays["Calc"]), timeout=40)

    def canonical(log):  # the two owners' progress notices may interleave differently; compare per sender
        return sorted(log, key=lambda entry: (entry[0], entry[1], entry[2])), [t for _, t, _ in log][:2]

    assert canonical(replayed) == canonical(recorded) and again == conclusion
    assert all(n == 0 for policy in replays.values() for n in policy.remaining().values())
    points = {json.loads(line)["point"] for line in path.read_text().splitlines()}
    assert {"plan_team", "turn", "pick_triggers", "rephrase", "conclude"} <= points


def test_replay_fails_loudly_when_the_recording_runs_out(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"agent": "A", "point": "turn", "output": {
        "__kind__": "TurnDecision", "content": "hi", "message_type": "discussion", "next_people": [], "thought": "",
        "tasks": {}}}) + "\n")
    policy = ReplayPolicy(path, agent="A")
    assert policy.turn(None) == TurnDecision("hi", "discussion", [])
    with pytest.raises(ReplayExhausted, match="no recorded 'turn' decision left"):
        policy.turn(None)


def test_replay_rejects_missing_and_malformed_recordings(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ReplayPolicy(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"point": "turn"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        ReplayPolicy(bad)
