"""The IoA claims on synthetic results payloads with known outcomes (rows as the benchmark stores them)."""

from agents_kit.claims import evaluate
from shared.claims import check


def task_row(arm, seed, distractors, accuracy, messages, channels=7.5, flat=7.5):
    return {"part": "tasks", "arm": f"{arm}@{distractors}d", "seed": seed, "distractors": float(distractors),
            "registered_agents": float(distractors + 8), "accuracy": accuracy, "messages_per_task": messages,
            "channels_per_task": channels, "channels_if_flat_per_task": flat}


def payload(ioa_accuracy=1.0, broadcast_accuracy=1.0, ioa_messages=15.5, nested=(9.0, 13.0), seeds=(0, 1, 2)):
    rows = [{"part": "faults", "arm": "fault_server_kill", "seed": 0, "lost": 0.0, "duplicated": 0.0}]
    for seed in seeds:
        jitter = 0.01 * seed
        for distractors in (8, 24):
            rows += [task_row("single", seed, distractors, 0.0, 3.0, 0.0, 0.0),
                     task_row("broadcast", seed, distractors, broadcast_accuracy, 4.0 * distractors + 3, 496, 496),
                     task_row("ioa_async", seed, distractors, min(1.0, ioa_accuracy + jitter), ioa_messages + seed),
                     task_row("ioa_nested", seed, distractors, 1.0, 25.0, *nested)]
    return {"rows": rows, "profile": "default", "config": {}, "extra": {}}


def verdicts(data):
    claims, controls = evaluate(data)
    check(claims, controls)
    assert controls == []
    return {c["id"]: c for c in claims}


def test_lean_teams_and_nesting_reproduce_and_a_ceiling_is_untestable():
    found = verdicts(payload())
    assert {k: c["verdict"] for k, c in found.items()} == {
        "ioa-success-vs-broadcast": "untestable", "ioa-success-vs-single": "reproduced",
        "ioa-messages-vs-broadcast": "reproduced", "ioa-nested-channels": "reproduced"}
    assert found["ioa-messages-vs-broadcast"]["baseline"] == 4.0 * 24 + 3  # the largest registry
    assert "never arises" in found["ioa-success-vs-broadcast"]["why"]


def test_ioa_below_broadcast_and_more_messages_are_not_reproduced():
    found = verdicts(payload(ioa_accuracy=0.5, broadcast_accuracy=1.0, ioa_messages=200.0, nested=(15.0, 13.0)))
    assert found["ioa-success-vs-broadcast"]["verdict"] == "not_reproduced"
    assert found["ioa-messages-vs-broadcast"]["verdict"] == "not_reproduced"
    assert found["ioa-nested-channels"]["verdict"] == "not_reproduced"


def test_ioa_above_broadcast_is_reproduced():
    assert verdicts(payload(ioa_accuracy=0.9, broadcast_accuracy=0.5))["ioa-success-vs-broadcast"]["verdict"] == \
        "reproduced"


def test_no_sub_team_makes_the_channel_claim_untestable():
    found = verdicts(payload(nested=(7.5, 7.5)))
    assert found["ioa-nested-channels"]["verdict"] == "untestable" and "no sub-team" in found["ioa-nested-channels"]["why"]


def test_one_seed_gives_direction_only_and_no_tasks_no_claims():
    found = verdicts(payload(seeds=(0,)))
    assert found["ioa-messages-vs-broadcast"]["verdict"] == "direction_only"
    assert evaluate({"rows": payload()["rows"][:1]}) == ([], [])


def test_the_multi_node_claim_compares_three_nats_processes_with_one_per_seed():
    def rows(three):
        out = []
        for seed in (0, 1, 2):
            for arm, value in (("nats_1proc", 5000.0 + seed), ("nats_3proc", three + seed), ("sqlite_1proc", 9e3)):
                out.append({"part": "multi_node", "arm": arm, "seed": seed, "n_agents": 200.0,
                            "saturation_deliveries_per_s": value})
        return out

    data = payload()
    assert "ioa-nats-scale-out" not in verdicts(data)  # no multi_node part, no claim
    data["rows"] += rows(9000.0)
    assert verdicts(data)["ioa-nats-scale-out"]["verdict"] == "reproduced"
    data = payload()
    data["rows"] += rows(3000.0)
    claim = verdicts(data)["ioa-nats-scale-out"]
    assert claim["verdict"] == "not_reproduced" and "share the same cores" in claim["why"]
