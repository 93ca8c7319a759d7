"""The benchmark registry and runner behind ``make bench``, ``paperkits bench`` and the notebooks.

A kit registers a :class:`Benchmark` under the ``paperkits.benchmarks`` entry-point group in
``pyproject.toml``; its ``run(profile, seeds, out)`` returns a :class:`~shared.results.BenchmarkResult`.
The runner seeds, times, measures memory, writes the JSON and skips results that are already there
for the same profile and seeds (resumable ``make bench``) unless forced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from shared.errors import ConfigError
from shared.results import (
    PROFILES,
    BenchmarkResult,
    PartialRows,
    Scorer,
    git_commit,
    read_results,
    rescore_file,
    results_path,
    write_results,
)
from shared.seeding import seed_everything

ENTRY_POINT_GROUP = "paperkits.benchmarks"
DEFAULT_SEEDS = {"quick": [0], "default": [0, 1, 2], "full": [0, 1, 2, 3, 4]}


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: ``run(profile, seeds, out) -> BenchmarkResult``, its claims scorer and defaults.

    ``score`` is the paper's ``claims.evaluate``: results payload -> ``(claims, controls)`` (shared/claims.py).
    """

    name: str
    kit: str
    run: Callable[..., BenchmarkResult]
    description: str = ""
    score: Scorer | None = None
    seeds: dict[str, list[int]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SEEDS))

    def default_seeds(self, profile: str) -> list[int]:
        """The seeds this benchmark uses for ``profile`` unless the caller names others."""
        return list(self.seeds.get(profile, DEFAULT_SEEDS[profile]))


def discover() -> dict[str, Benchmark]:
    """Every installed benchmark by name (importing only the modules that define them)."""
    found: dict[str, Benchmark] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        spec = point.load()
        if not isinstance(spec, Benchmark):
            raise TypeError(f"entry point {point.value} must be a shared.benchmarks.Benchmark")
        found[spec.name] = spec
    return dict(sorted(found.items(), key=lambda item: (item[1].kit, item[0])))


def declared() -> dict[str, str]:
    """Benchmark name -> kit from the entry-point names alone (``kit.name``), without importing kits."""
    out = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        kit, _, name = point.name.partition(".")
        out[name or kit] = kit
    return out


def select(names: Sequence[str]) -> list[str]:
    """Expand ``all`` and kit names into benchmark names, keeping order; unknown names are a ConfigError."""
    table = declared()
    kits = {kit for kit in table.values()}
    chosen: list[str] = []
    for name in names or ["all"]:
        if name == "all":
            picked = list(table)
        elif name in kits:
            picked = [bench for bench, kit in table.items() if kit == name]
        elif name in table:
            picked = [name]
        else:
            raise ConfigError(f"unknown benchmark or kit {name!r}; known: {sorted(table) + sorted(kits)}")
        chosen += [p for p in picked if p not in chosen]
    return chosen


def work_dir(out: str | Path, kit: str, name: str) -> Path:
    """Scratch space of one benchmark (partial rows, checkpoints): ``<out>/<kit>/.work/<name>``."""
    path = Path(out) / kit / ".work" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def partial_rows(out: str | Path, kit: str, name: str, **signature: Any) -> PartialRows:
    """A :class:`PartialRows` store for one benchmark; rows from a different ``signature`` are ignored."""
    return PartialRows(work_dir(out, kit, name) / "rows.jsonl", signature=signature)


def is_done(spec: Benchmark, profile: str, seeds: Sequence[int], out: str | Path) -> bool:
    """True when a valid results file exists for the same profile, seeds and commit.

    Results from another commit (e.g. the committed ``results/`` of an older version) are redone, so a fresh
    clone's ``make bench`` measures its own code; a re-run at the same commit resumes where it stopped.
    """
    path = results_path(out, spec.kit, spec.name)
    if not path.exists():
        return False
    try:
        data = read_results(path)
    except Exception:  # an unreadable old file is simply redone
        return False
    return (data["profile"] == profile and list(data["seeds"]) == list(seeds)
            and data["commit"] == git_commit()["commit"])


def run_benchmark(spec: Benchmark, profile: str = "default", seeds: Sequence[int] | None = None,
                  out: str | Path | None = None, force: bool = False) -> Path:
    """Run one benchmark in this process and write its results JSON; returns the JSON's path."""
    from shared.paths import results_dir

    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    out = Path(out) if out is not None else results_dir()
    seeds = list(seeds) if seeds else spec.default_seeds(profile)
    path = results_path(out, spec.kit, spec.name)
    if not force and is_done(spec, profile, seeds, out):
        click.echo(f"[{spec.kit}/{spec.name}] up to date ({profile}, seeds {seeds}); use --force to redo", err=True)
        return path
    if force:
        shutil.rmtree(Path(out) / spec.kit / ".work" / spec.name, ignore_errors=True)
    kit_out = Path(out) / spec.kit
    kit_out.mkdir(parents=True, exist_ok=True)
    click.echo(f"[{spec.kit}/{spec.name}] running profile={profile} seeds={seeds}", err=True)
    seed_everything(seeds[0])
    # A resumed run's wall time includes the interrupted invocations before it (same profile and seeds), so the
    # results file states what the whole benchmark cost, not only its last part.
    clock = work_dir(out, spec.kit, spec.name) / "wall_time.json"
    key = json.dumps({"profile": profile, "seeds": list(seeds)})
    spent = _spent_before(clock, key)
    start = time.perf_counter()
    try:
        result = spec.run(profile=profile, seeds=seeds, out=kit_out)
    finally:
        clock.write_text(json.dumps({"key": key, "seconds": spent + time.perf_counter() - start}))
    elapsed = time.perf_counter() - start
    if not isinstance(result, BenchmarkResult):
        raise TypeError(f"benchmark {spec.name} returned {type(result).__name__}, expected BenchmarkResult")
    written = write_results(result, out=out, profile=profile, seeds=seeds, wall_time_s=spent + elapsed,
                            score=spec.score)
    clock.unlink(missing_ok=True)
    resumed = f" (+{spent:.1f}s in earlier interrupted runs)" if spent else ""
    click.echo(f"[{spec.kit}/{spec.name}] wrote {written} in {elapsed:.1f}s{resumed}", err=True)
    return written


def _spent_before(clock: Path, key: str) -> float:
    """Seconds earlier interrupted invocations of this benchmark spent (0 for another profile/seeds or none)."""
    try:
        saved = json.loads(clock.read_text())
    except (OSError, ValueError):
        return 0.0
    return float(saved.get("seconds", 0.0)) if saved.get("key") == key else 0.0


def rescore(names: Sequence[str], out: str | Path) -> list[Path]:
    """Score again the claims of the stored results of ``names`` under ``out`` from their own rows.

    Used after a claim definition changes, and to upgrade files of an older schema that are too costly to
    rerun (a ``full`` profile): the measured numbers and their commit stay, ``claims_commit`` is the scorer's.
    """
    specs = discover()
    done = []
    for name in select(names):
        spec = specs[name]
        path = results_path(out, spec.kit, spec.name)
        if path.exists():
            done.append(rescore_file(path, spec.score or (lambda _payload: ([], []))))
    return done


def timing_table(names: Sequence[str], out: str | Path, budget_s: float | None = None) -> str:
    """Wall time of each benchmark's results file under ``out`` (and the total) as a plain-text table."""
    table = declared()
    lines = [f"{'benchmark':<14} {'profile':<8} {'wall':>9}  claims  controls"]
    total = 0.0
    for name in select(names):
        path = results_path(out, table[name], name)
        try:
            data = read_results(path)
        except Exception as err:  # missing or stale: say so in the table rather than fail the run at the end
            lines.append(f"{name:<14} {'-':<8} {'-':>9}  ({str(err).split(': ')[-1][:50]})")
            continue
        total += float(data["wall_time_s"])
        lines.append(f"{name:<14} {data['profile']:<8} {data['wall_time_s'] / 60:8.1f}m  {len(data['claims']):>6}"
                     f"  {len(data['controls']):>8}")
    lines.append(f"{'total':<14} {'':<8} {total / 60:8.1f}m" + (f"  (budget {budget_s / 60:.0f} min)" if budget_s else ""))
    return "\n".join(lines)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt, so ``kill`` unwinds like Ctrl-C: benchmarks stop their
    child processes (see :func:`run_many`) and worker pools on the way out instead of leaving them training."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt("terminated")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_child(cmd: list[str]) -> int:
    """Run one benchmark process and wait; if this runner is interrupted or killed, the child is stopped too."""
    child = subprocess.Popen(cmd)
    try:
        return child.wait()
    except BaseException:
        child.terminate()  # the child converts SIGTERM into KeyboardInterrupt and unwinds its own workers
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
        raise


def run_many(names: Sequence[str], profile: str, seeds: Sequence[int] | None, out: str | Path,
             force: bool) -> list[str]:
    """Run each benchmark in its own process (a crash or leak stays contained); returns the failures."""
    failures = []
    chosen = select(names)
    for index, name in enumerate(chosen, start=1):
        click.echo(f"[bench {index}/{len(chosen)}] {name} (profile {profile})", err=True)
        cmd = [sys.executable, "-m", "shared.cli", "bench", name, "--profile", profile, "--out", str(out),
               "--no-report", "--in-process"]
        if seeds:
            cmd += ["--seeds", ",".join(str(s) for s in seeds)]
        if force:
            cmd.append("--force")
        if _run_child(cmd) != 0:
            failures.append(name)
            click.echo(f"[bench] {name} FAILED (see its output above)", err=True)
    return failures
