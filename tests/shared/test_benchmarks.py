import pytest

from shared.benchmarks import Benchmark, partial_rows, run_benchmark, select
from shared.errors import ConfigError
from shared.results import BenchmarkResult, read_results


def make_spec(calls: list) -> Benchmark:
    def run(profile, seeds, out):
        calls.append((profile, tuple(seeds)))
        store = partial_rows(out.parent, "llm", "toy", profile=profile)
        rows = []
        for seed in seeds:
            row = store.get(seed=seed) or store.add({"method": "toy", "seed": seed, "score": seed + 1.0}, seed=seed)
            rows.append(row)
        return BenchmarkResult(benchmark="toy", kit="llm", title="Toy", rows=rows, group_by=["method"])

    return Benchmark(name="toy", kit="llm", run=run, seeds={"quick": [0], "default": [0, 1], "full": [0, 1, 2]})


def test_runner_writes_then_skips_then_forces(tmp_path):
    calls = []
    spec = make_spec(calls)
    path = run_benchmark(spec, profile="quick", out=tmp_path)
    data = read_results(path)
    assert data["seeds"] == [0] and data["aggregate"][0]["metrics"]["score"]["mean"] == 1.0
    run_benchmark(spec, profile="quick", out=tmp_path)
    assert len(calls) == 1  # finished results are not redone
    run_benchmark(spec, profile="quick", out=tmp_path, seeds=[0, 1])
    assert len(calls) == 2  # different seeds: rerun
    run_benchmark(spec, profile="quick", out=tmp_path, seeds=[0, 1], force=True)
    assert len(calls) == 3
    assert read_results(path)["seeds"] == [0, 1]


def test_runner_rejects_unknown_profile(tmp_path):
    with pytest.raises(ConfigError, match="profile"):
        run_benchmark(make_spec([]), profile="huge", out=tmp_path)


def test_select_rejects_unknown_names():
    with pytest.raises(ConfigError, match="unknown benchmark or kit 'nosuch'"):
        select(["nosuch"])


def test_results_from_another_commit_are_redone(tmp_path):
    import json

    calls = []
    spec = make_spec(calls)
    path = run_benchmark(spec, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    data["commit"] = "0" * 40  # as if produced by an older version of the code
    path.write_text(json.dumps(data))
    run_benchmark(spec, profile="quick", out=tmp_path)
    assert len(calls) == 2
