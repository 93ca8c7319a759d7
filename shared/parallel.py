"""Run a benchmark's independent jobs (arm × seed) in worker processes, one torch thread each.

Small models on a 2-core machine run fastest as one thread per process, so two processes halve a benchmark's
wall time without changing a number: every job seeds itself from its own arguments and results are keyed by
the job, not by completion order. A ``multiprocessing`` Pool with the *spawn* context (never fork a process
that holds torch threads) is used rather than an executor: leaving the block on an error, Ctrl-C or SIGTERM
terminates the workers instead of waiting for their runs to finish.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import get_context
from typing import Any, TypeVar

from shared.progress import progress

Job = TypeVar("Job")

WORKERS_ENV = "PAPERKITS_WORKERS"


def default_workers(cap: int = 2) -> int:
    """Worker processes for a benchmark: ``PAPERKITS_WORKERS`` when set, else ``min(cap, CPU count)``."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError as err:
            raise ValueError(f"{WORKERS_ENV} must be a positive integer, got {value!r}") from err
    return max(1, min(cap, os.cpu_count() or 1))


def _init_worker(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # a kit without torch
        pass


def run_jobs(function: Callable[[Job], Any], jobs: Sequence[Job], *, workers: int | None = None,
             desc: str = "runs", threads_per_worker: int = 1) -> Iterator[tuple[Job, Any]]:
    """Yield ``(job, function(job))`` as jobs finish; in this process when one worker (or one job) suffices.

    ``function`` must be importable at module level (spawned workers import it by name) and should seed
    itself from the job. Put the costliest jobs first so the workers finish together.
    """
    jobs = list(jobs)
    workers = min(workers or default_workers(), len(jobs)) if jobs else 1
    if workers <= 1:
        for job in progress(jobs, total=len(jobs), desc=desc, unit="run"):
            yield job, function(job)
        return
    with get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(threads_per_worker,)) as pool:
        results = pool.imap_unordered(_Call(function), list(enumerate(jobs)))
        for index, value in progress(results, total=len(jobs), desc=desc, unit="run"):
            yield jobs[index], value
        pool.close()  # a clean shutdown: terminate() (the with-block's exit) would leak the pool's semaphores
        pool.join()


class _Call:
    """A picklable ``(index, job) -> (index, function(job))`` so results map back to their jobs."""

    def __init__(self, function: Callable[[Any], Any]):
        self.function = function

    def __call__(self, item: tuple[int, Any]) -> tuple[int, Any]:
        index, job = item
        return index, self.function(job)
