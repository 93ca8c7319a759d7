"""The safety.pip benchmark's quick profile end to end (results JSON, figures, resumable rows)."""

from __future__ import annotations

import pytest

from safety_kit.pip.bench import BENCHMARK, CONDITIONS, DETECTORS
from shared.benchmarks import run_benchmark
from shared.results import read_results


@pytest.mark.slow
def test_quick_profile_writes_valid_results(tmp_path, tiny_vlm):
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = read_results(path)
    assert data["benchmark"] == "pip" and data["kit"] == "safety" and data["headline_metric"] == "auc"
    arms = {(a["detector"], a["condition"]) for a in data["aggregate"]}
    assert {(d, c) for d in DETECTORS for c in CONDITIONS} <= arms and ("pip", "scan_speed") in arms
    for row in data["rows"]:
        if "auc" in row:
            assert 0 <= row["auc"] <= 1 and 0 <= row["recall"] <= 1
    for figure in data["figures"]:
        assert (tmp_path / "safety" / figure["path"]).is_file()
    assert {c["id"] for c in data["claims"]} == {"pip-recall", "pip-precision", "pip-blackbox-recall",
                                                 "pip-vs-visual-tokens"}
    assert [c["id"] for c in data["controls"]] == ["pip-noise"] and "reproduce" not in data["summary"]
    # resumable: the finished seed's rows are reused, not recomputed
    assert (tmp_path / "safety" / ".work" / "pip" / "rows.jsonl").is_file()
