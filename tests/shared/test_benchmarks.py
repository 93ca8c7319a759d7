from pathlib import Path

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


def test_killing_the_runner_stops_the_benchmark_and_its_workers(tmp_path):
    """`kill <runner>` must not orphan the benchmark process nor its worker pool (runs of several minutes)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "pids"
    # the benchmark process: a spawn Pool whose one worker sleeps, as the copying benchmark's workers train
    child = ("import os, pathlib, time\n"
             "from multiprocessing import get_context\n"
             "from shared.benchmarks import sigterm_as_interrupt\n"
             "if __name__ == '__main__':\n"
             "    with sigterm_as_interrupt(), get_context('spawn').Pool(1) as pool:\n"
             "        job = pool.apply_async(time.sleep, (120,))\n"
             "        time.sleep(0.5)\n"
             f"        pathlib.Path({str(pids)!r}).write_text(f'{{os.getpid()}} {{pool._pool[0].pid}}')\n"
             "        job.get()\n")
    runner = ("import sys; from shared.benchmarks import _run_child, sigterm_as_interrupt\n"
              f"with sigterm_as_interrupt(): _run_child([sys.executable, '-c', {child!r}])")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", runner], cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.time() + 60
    while not pids.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert pids.exists(), "the benchmark process never started its worker"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0  # interrupted, not a clean success
    alive = []
    for pid in map(int, pids.read_text().split()):
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            alive.append(pid)
            os.kill(pid, signal.SIGKILL)
    assert not alive, f"processes outlived their killed runner: {alive}"


def test_a_resumed_run_records_the_time_of_its_interrupted_parts(tmp_path):
    import time

    state = {"interrupt": True}

    def run(profile, seeds, out):
        time.sleep(0.3)
        if state.pop("interrupt", False):
            raise KeyboardInterrupt  # killed after 0.3 s of work
        return BenchmarkResult(benchmark="slow", kit="llm", title="Slow", group_by=["method"],
                               rows=[{"method": "m", "seed": 0, "score": 1.0}])

    spec = Benchmark(name="slow", kit="llm", run=run)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(spec, profile="quick", out=tmp_path)
    data = read_results(run_benchmark(spec, profile="quick", out=tmp_path))
    assert data["wall_time_s"] >= 0.6  # both parts, not only the last 0.3 s
    data = read_results(run_benchmark(spec, profile="quick", out=tmp_path, force=True))
    assert data["wall_time_s"] < 0.6  # a forced rerun starts its clock afresh
