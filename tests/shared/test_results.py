import json
import math

import pytest

from shared.errors import DataError
from shared.results import (
    BenchmarkResult,
    Figure,
    PartialRows,
    aggregate_rows,
    read_results,
    results_path,
    write_results,
)


def sample_result(**overrides) -> BenchmarkResult:
    rows = [
        {"method": "a", "seed": 0, "acc": 0.5, "loss": 1.0},
        {"method": "a", "seed": 1, "acc": 0.7, "loss": 3.0},
        {"method": "b", "seed": 0, "acc": 0.9, "loss": float("nan")},
        {"method": "b", "seed": 1, "acc": 0.8, "loss": 2.0},
    ]
    fields = dict(benchmark="demo", kit="llm", title="Demo benchmark", rows=rows, group_by=["method"],
                  config={"steps": 3}, headline_metric="acc", summary="b beats a.",
                  figures=[Figure(path="demo_curve.png", caption="a curve")])
    fields.update(overrides)
    return BenchmarkResult(**fields)


def test_aggregate_mean_std_and_nonfinite():
    agg = {g["method"]: g["metrics"] for g in aggregate_rows(sample_result().rows, ["method"])}
    assert agg["a"]["acc"]["mean"] == pytest.approx(0.6)
    assert agg["a"]["acc"]["std"] == pytest.approx(math.sqrt(0.02))  # sample std, n-1
    assert agg["a"]["loss"]["n"] == 2
    # the NaN seed is counted, not averaged
    assert agg["b"]["loss"]["n"] == 1 and agg["b"]["loss"]["n_nonfinite"] == 1
    assert agg["b"]["loss"]["mean"] == pytest.approx(2.0)
    assert "seed" not in agg["a"]


def test_write_read_round_trip(tmp_path):
    path = write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=1.5)
    assert path == results_path(tmp_path, "llm", "demo")
    data = read_results(path)
    assert data["benchmark"] == "demo" and data["profile"] == "quick" and data["seeds"] == [0, 1]
    assert data["config"] == {"steps": 3}
    assert len(data["commit"]) >= 7 and data["machine"]["cpu_count"] >= 1
    assert data["peak_memory_mb"] > 0 and data["wall_time_s"] == 1.5
    assert data["rows"][2]["loss"] == "nan"  # standard JSON: NaN stored as a string
    json.loads(path.read_text())  # strict JSON parses


def test_write_rejects_empty_rows_and_bad_profile(tmp_path):
    with pytest.raises(DataError, match="no result rows"):
        write_results(sample_result(rows=[]), out=tmp_path, profile="quick", seeds=[0], wall_time_s=0)
    with pytest.raises(ValueError, match="profile"):
        write_results(sample_result(), out=tmp_path, profile="huge", seeds=[0], wall_time_s=0)


def test_failed_write_keeps_previous_file(tmp_path):
    path = write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0], wall_time_s=1)
    before = path.read_text()
    broken = sample_result(config={"bad": object()})  # not serialisable
    with pytest.raises(TypeError):
        write_results(broken, out=tmp_path, profile="quick", seeds=[0], wall_time_s=1)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["demo.json"]  # no temp file left behind


def test_read_results_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_results(bad)
    bad.write_text(json.dumps({"schema_version": 2, "benchmark": "x"}))
    with pytest.raises(DataError, match="lacks required key"):
        read_results(bad)


def test_older_schema_is_stale_not_dropped(tmp_path):
    from shared.results import StaleSchemaError, scan_results

    path = write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=1)
    old = json.loads(path.read_text())
    old["schema_version"] = 1
    del old["claims"], old["controls"]
    path.write_text(json.dumps(old))
    with pytest.raises(StaleSchemaError, match="stale schema — rerun"):
        read_results(path)
    valid, unusable = scan_results(tmp_path)
    assert valid == [] and unusable[0][0] == path and "stale schema" in unusable[0][1]


def demo_score(payload):
    """A scorer as a paper's claims.evaluate: method b beats a on acc."""
    from shared import claims

    ours, base, _seeds = claims.paired(payload["rows"], "acc", ours={"method": "b"}, baseline={"method": "a"})
    return [claims.compare("demo-1", "b beats a", "b > a", "acc", ours, base)], []


def test_write_scores_claims_and_rescore_upgrades_old_file(tmp_path):
    from shared.results import rescore_file

    path = write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=1,
                         score=demo_score)
    data = read_results(path)
    claim = data["claims"][0]
    assert claim["verdict"] == "direction_only" and claim["n_seeds"] == 2 and claim["profile"] == "quick"
    assert data["controls"] == [] and data["claims_commit"] == data["commit"]
    # an old-schema file keeps its numbers and provenance and gains scored claims
    old = json.loads(path.read_text())
    old["schema_version"], old["commit"] = 1, "0" * 40
    del old["claims"], old["controls"]
    path.write_text(json.dumps(old))
    rescore_file(path, demo_score)
    again = read_results(path)
    assert again["commit"] == "0" * 40 and again["rows"] == data["rows"]
    assert again["claims"][0]["verdict"] == "direction_only"


def test_a_verdict_that_does_not_follow_from_its_numbers_is_rejected(tmp_path):
    def lying_score(payload):
        claim, controls = demo_score(payload)
        claim[0]["verdict"] = "reproduced"  # with 2 seeds there is no CI: the rule says direction_only
        return claim, controls

    with pytest.raises(DataError, match="does not follow from its numbers"):
        write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=1,
                      score=lying_score)
    assert not results_path(tmp_path, "llm", "demo").exists()


def test_missing_group_key_is_reported():
    with pytest.raises(DataError, match="group key"):
        aggregate_rows([{"seed": 0, "acc": 1.0}], ["method"])


def test_partial_rows_resume_and_signature(tmp_path):
    store = PartialRows(tmp_path / "rows.jsonl", signature={"steps": 10})
    store.add({"acc": 0.5}, arm="a", seed=0)
    with (tmp_path / "rows.jsonl").open("a") as handle:
        handle.write('{"truncated": ')  # a crash mid-write
    again = PartialRows(tmp_path / "rows.jsonl", signature={"steps": 10})
    assert again.get(arm="a", seed=0) == {"acc": 0.5}
    assert again.get(arm="a", seed=1) is None
    other = PartialRows(tmp_path / "rows.jsonl", signature={"steps": 20})
    assert other.get(arm="a", seed=0) is None  # a different config never reuses rows


def test_dirty_flag_ignores_results_but_not_code(tmp_path):
    import subprocess

    from shared.results import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "a.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    (tmp_path / "results" / "a.json").write_text('{"new": 1}')
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path)["dirty"] is True
