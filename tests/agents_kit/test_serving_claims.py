"""The issue-22 serving targets as claims: per-seed rows against constant targets, by the shared verdict rule."""

from agents_kit.claims import evaluate
from shared.claims import check


def _payload(capacity, p99, target=10_000):
    rows = []
    for seed, (cap, lat) in enumerate(zip(capacity, p99)):
        rows += [{"part": "saturation", "arm": "saturation_n200", "seed": seed, "deliveries_per_s": cap},
                 {"part": "load", "arm": "load_n200", "seed": seed, "latency_p99_ms": lat, "lost": 0.0}]
    return {"rows": rows, "config": {"target_deliveries_per_s": target, "curve_agents": 200, "group_size": 5}}


def _claims(data):
    claims, controls = evaluate(data)
    check(claims, controls)
    return {c["id"]: c for c in claims}


def test_targets_met_on_every_seed_are_reproduced():
    found = _claims(_payload([14_000, 15_000, 14_500], [21.0, 25.0, 23.0]))
    assert found["ioa-throughput-10k"]["verdict"] == "reproduced" and found["ioa-throughput-10k"]["baseline"] == 10_000
    assert found["ioa-p99-50ms"]["verdict"] == "reproduced" and not found["ioa-p99-50ms"]["higher_is_better"]


def test_a_missed_target_is_not_reproduced_and_a_small_profile_makes_no_claim():
    found = _claims(_payload([2_700, 2_200, 2_800], [466.0, 421.0, 354.0]))  # the numbers before issue 22
    assert {c["verdict"] for c in found.values()} == {"not_reproduced"}
    assert _claims(_payload([5_000], [10.0], target=2_000)) == {}
