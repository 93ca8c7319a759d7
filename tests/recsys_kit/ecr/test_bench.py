import json

import pytest

from recsys_kit.ecr.bench import BENCHMARK
from shared.benchmarks import run_benchmark


@pytest.mark.slow
def test_quick_profile_writes_results(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)  # the main job runs on embedded data only
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    arms = {(r["dataset"], r["arm"]) for r in data["rows"]}
    assert {("simulated-ml100k", "UniCRS"), ("simulated-ml100k", "ECR")} <= arms
    assert any(d == "generation-sim" for d, _ in arms)
    assert data["headline_metric"] == "AUC" and "AUC" in data["summary"]
    rec = [r for r in data["rows"] if r["dataset"] == "simulated-ml100k"]
    assert all(0 <= r["R@10"] <= 1 for r in rec)
    assert (tmp_path / "recsys" / "ecr_auc.png").is_file()
