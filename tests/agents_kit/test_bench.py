import json

import pytest

from agents_kit.bench import BENCHMARK
from shared.benchmarks import run_benchmark


@pytest.mark.slow
def test_quick_profile_writes_a_complete_results_file(tmp_path):
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    arms = {(r["part"], r["arm"]) for r in data["rows"]}
    assert {("load", "load_n16"), ("faults", "fault_server_kill"), ("faults", "fault_slow_consumer"),
            ("tasks", "ioa_async@8d"), ("tasks", "broadcast@8d")} <= arms
    for row in data["rows"]:
        if row["part"] in ("load", "faults"):
            assert row["lost"] == row["duplicated"] == row["out_of_order"] == row["acked_not_stored"] == 0, row
    tasks = {r["arm"]: r for r in data["rows"] if r["part"] == "tasks"}
    assert tasks["ioa_async@8d"]["messages_per_task"] < tasks["broadcast@8d"]["messages_per_task"]
    assert tasks["single@8d"]["accuracy"] == 0.0
    for figure in data["figures"]:
        assert (tmp_path / "agents" / figure["path"]).exists()
