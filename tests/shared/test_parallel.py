import os

import pytest

from shared.parallel import default_workers, run_jobs


def square_with_pid(job: int) -> tuple[int, int]:
    return job * job, os.getpid()


def test_results_map_back_to_their_jobs_in_worker_processes():
    jobs = [5, 1, 4, 2, 3]
    out = dict(run_jobs(square_with_pid, jobs, workers=2))
    assert {job: value[0] for job, value in out.items()} == {j: j * j for j in jobs}
    assert os.getpid() not in {pid for _v, pid in out.values()}  # ran in workers, not here


def test_one_worker_runs_in_process():
    out = list(run_jobs(square_with_pid, [3], workers=2))
    assert out == [(3, (9, os.getpid()))]


def test_workers_setting(monkeypatch):
    monkeypatch.setenv("PAPERKITS_WORKERS", "1")
    assert default_workers() == 1
    monkeypatch.setenv("PAPERKITS_WORKERS", "two")
    with pytest.raises(ValueError, match="PAPERKITS_WORKERS"):
        default_workers()
