"""The benchmark's quick profile end to end through the shared runner."""

from __future__ import annotations

import pytest

from recsys_kit.transition2.bench import BENCHMARK
from shared.benchmarks import run_benchmark
from shared.results import read_results


@pytest.mark.slow
def test_quick_profile_writes_valid_results(tmp_path):
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = read_results(path)
    arms = {row["arm"] for row in data["rows"] if not row["dataset"].startswith("planted-")}
    assert arms == {"popularity", "sasrec_mixed", "sasrec_neg", "c2dsr_lite", "t2_v1", "t2_v2"}
    planted = {row["dataset"] for row in data["rows"]} - {row["dataset"] for row in data["rows"]
                                                         if not row["dataset"].startswith("planted-")}
    assert planted == {"planted-switch", "planted-switch-shuffled", "planted-switch-flat", "planted-cross",
                       "planted-partner"}
    assert {c["id"] for c in data["controls"]} >= {"t2-pos-switch", "t2-pos-cross", "t2-neg-shuffled", "t2-neg-flat"}
    untrained = {"popularity", "oracle", "oracle_posonly"}
    assert all(row["epochs"] >= row["best_epoch"] >= 1 for row in data["rows"] if row["arm"] not in untrained)
    # every planted dataset carries the rule's ceilings, and the positive controls report them
    assert all({"oracle", "oracle_posonly"} <= {r["arm"] for r in data["rows"] if r["dataset"] == name}
               for name in planted)
    switch = next(c for c in data["controls"] if c["id"] == "t2-pos-switch")
    assert "ceilings" in switch["observed"] and switch["oracle_A"] > switch["oracle_posonly_A"]
    assert all("per_user_ndcg" not in row for row in data["rows"])
    assert {"A_full_ndcg@10", "B_full_ndcg@10", "sampled_ndcg@10"} <= set(data["rows"][0])
    assert data["extra"]["significance"] and "criterion" in data["summary"] and "full_mrr" in data["rows"][0]
    for figure in data["figures"]:
        assert (tmp_path / "recsys" / figure["path"]).is_file()
