import json

import pytest

from llm_dynamics_kit.ssd.bench import BENCHMARK
from shared.benchmarks import run_benchmark


@pytest.mark.slow
def test_quick_profile_writes_results(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "ssd" and data["profile"] == "quick"
    rows = {row["arm"]: row for row in data["rows"]}
    assert {"dense", "ssd", "posthoc_moefication"} <= set(rows)
    assert rows["ssd"]["sparse_fraction"] > 0 and 0 < rows["ssd"]["flops_saved"] < 0.5
    assert rows["dense"]["flops_saved"] == 0 and "val_loss_moe_0.25" not in rows["dense"]
    assert rows["posthoc_moefication"]["val_loss_dense"] == rows["dense"]["val_loss_dense"]
    for row in data["rows"]:
        assert 0 < row["val_loss_dense"] < 8
    speed = data["extra"]["speed"]
    assert {r["scope"] for r in speed} == {"ffn", "model"} and all(r["speedup"] > 0 for r in speed)
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()
