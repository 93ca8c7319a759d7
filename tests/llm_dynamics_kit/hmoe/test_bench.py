import json

import pytest

from llm_dynamics_kit.hmoe.bench import BENCHMARK, PROFILES
from llm_dynamics_kit.hmoe.presets import arm_config
from llm_dynamics_kit.model import Transformer
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
    assert {c["id"] for c in data["controls"]} == {"hmoe-pos", "hmoe-neg"}  # planted-language controls (smoke)
    assert len(data["extra"]["planted_controls"]) == 9 and "trace" in data["extra"]["planted_controls"][0]
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()


def test_profiles_build_and_full_is_the_wide_pysrc_run():
    for prof in PROFILES.values():
        for arm in {*prof.arms, *prof.shakespeare_arms}:
            config = arm_config(arm, prof.model(), prof.total_hidden)
            assert config.d_model == prof.d_model
        assert prof.control is not None
    full = PROFILES["full"]
    assert full.corpus == "pysrc" and full.d_model > PROFILES["default"].d_model and BENCHMARK.seeds["full"] == [0, 1, 2]
    assert "hmoe_topp_pp_ent_paper" in full.arms
    Transformer(arm_config("hmoe_topp_pp_ent", full.model(), full.total_hidden))
