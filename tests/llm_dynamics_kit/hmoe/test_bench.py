import json

import pytest

from llm_dynamics_kit.hmoe.bench import BENCHMARK
from shared.benchmarks import run_benchmark


@pytest.mark.slow
def test_quick_profile_writes_results(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "hmoe" and data["profile"] == "quick"
    arms = {row["arm"] for row in data["rows"]}
    assert {"moe_topk_lb", "hmoe_topk_pp"} <= arms
    for row in data["rows"]:
        assert row["val_loss"] < 7.0 and row["activated_params"] > 0
    homog = next(r for r in data["rows"] if r["arm"] == "moe_topk_lb")
    assert homog["activated_ffn_hidden"] == 128.0  # 2 experts of 64
    assert data["extra"]["throughput"]["dense_vs_llama_ratio"] > 0
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()
