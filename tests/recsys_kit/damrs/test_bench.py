import json

import pytest

from recsys_kit.damrs.bench import BENCHMARK, analyse, arm_config
from shared.benchmarks import run_benchmark


def test_arms_switch_the_components():
    assert not arm_config("LightGCN").use_content_graphs and arm_config("LightGCN").kl_weight == 0
    assert not arm_config("IIG").use_consistency and arm_config("DIIG").use_consistency
    assert arm_config("DIIG+AU").kl_weight > 0 and arm_config("DIIG+AU").neighbor_weight == 0
    full = arm_config("DA-MRS+MF")
    assert full.backbone == "mf" and full.use_dbpr and full.ai_max_items == 256


def test_analyse_pairs_seeds():
    rows = [{"dataset": d, "method": m, "seed": s, "test_recall@20": v}
            for d, m, s, v in [("clean", "LightGCN", 0, 0.10), ("clean", "DA-MRS+LightGCN", 0, 0.12),
                               ("clean", "LightGCN", 1, 0.11), ("clean", "DA-MRS+LightGCN", 1, 0.10),
                               ("add20", "LightGCN", 0, 0.08), ("add20", "DA-MRS+LightGCN", 0, 0.11)]]
    extra, summary = analyse(rows)
    clean = extra["paired_differences"]["clean:DA-MRS+LightGCN-LightGCN"]
    assert clean["wins"] == 1 and abs(clean["mean"] - 0.005) < 1e-9
    assert abs(extra["robustness_drop"]["LightGCN:add20"] - (0.105 - 0.08) / 0.105) < 1e-9
    assert "1/2 seeds better" in summary


@pytest.mark.slow  # ~15 s once the ml-100k features are cached
def test_quick_profile_writes_results(tmp_path):
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "damrs" and data["headline_metric"] == "test_recall@20"
    assert {r["method"] for r in data["rows"]} == {"LightGCN", "DA-MRS+LightGCN"}
    assert (tmp_path / "recsys" / "damrs_recall20.png").is_file()
