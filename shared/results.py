"""The one writer and reader of benchmark results.

A results file is ``results/<kit>/<benchmark>.json``. Benchmarks build a :class:`BenchmarkResult` (what
they measured); :func:`write_results` adds the provenance (commit, date, machine, wall time, peak memory),
aggregates per-seed rows into mean/std, validates, and writes atomically so an interrupted run never
leaves a half-written or corrupted file behind.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from shared.claims import check as check_claims
from shared.errors import DataError

# 2: every file carries "claims" and "controls" (shared/claims.py). Files of an older version are reported as
# stale ("rerun"), never silently dropped.
SCHEMA_VERSION = 2
PROFILES = ("quick", "default", "full")
REQUIRED_KEYS = ("schema_version", "benchmark", "kit", "title", "profile", "seeds", "commit", "date",
                 "machine", "config", "group_by", "rows", "aggregate", "wall_time_s", "peak_memory_mb",
                 "claims", "controls")
# What a results file of the previous schema already holds: enough to score its claims again (rescore_file).
V1_KEYS = tuple(k for k in REQUIRED_KEYS if k not in ("claims", "controls"))
Scorer = Callable[[dict[str, Any]], tuple[list[dict[str, Any]], list[dict[str, Any]]]]


class StaleSchemaError(DataError):
    """A results file written by an older schema: rerun its benchmark (or ``paperkits rescore`` it)."""


@dataclasses.dataclass
class Figure:
    """A figure written next to the results JSON; ``path`` is relative to the results JSON's folder."""

    path: str
    caption: str


@dataclasses.dataclass
class BenchmarkResult:
    """What a benchmark measured. ``rows`` hold one dict per (group, seed), numbers as metrics.

    ``group_by`` names the row keys that identify an arm (e.g. ``["dataset", "method"]``); every other
    numeric key is a metric aggregated over seeds. ``headline_metric`` is drawn in the report's summary
    figure; ``summary`` is the sentence the report shows under the table: say what the numbers mean,
    including when the paper's claim does not reproduce.
    """

    benchmark: str
    kit: str
    title: str
    rows: list[dict[str, Any]]
    group_by: list[str]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    headline_metric: str | None = None
    lower_is_better: bool = False
    table_metrics: list[str] | None = None  # which metrics the report's table shows (default: all)
    summary: str = ""
    datasets: list[str] = dataclasses.field(default_factory=list)
    figures: list[Figure] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def git_commit(cwd: str | Path | None = None) -> dict[str, Any]:
    """The current commit and whether the working tree has uncommitted changes (``unknown`` outside git)."""
    from shared.paths import project_root

    cwd = Path(cwd) if cwd else project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        # results/ itself is tracked: a benchmark rewriting its own JSON must not mark the code as modified
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 ":(exclude)results"], cwd=cwd, capture_output=True, text=True, check=True,
                                timeout=10).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def machine_info() -> dict[str, Any]:
    """Enough about the machine to compare timings: CPU count, platform, Python and key library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    for module in ("numpy", "torch", "transformers", "recbole", "sklearn"):
        mod = sys.modules.get(module)
        if mod is not None:
            info[module] = getattr(mod, "__version__", "?")
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aggregate_rows(rows: Sequence[dict[str, Any]], group_by: Sequence[str]) -> list[dict[str, Any]]:
    """Mean, sample std, n, min and max of every numeric metric per group, in first-seen group order.

    Non-finite values are kept out of the statistics but counted in ``n_nonfinite`` so a diverged seed
    is visible rather than silently averaged.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        missing = [key for key in group_by if key not in row]
        if missing:
            raise DataError(f"result row {row} lacks group key(s) {missing}")
        groups.setdefault(tuple(row[key] for key in group_by), []).append(row)
    out = []
    skip = set(group_by) | {"seed"}
    for key, members in groups.items():
        metrics: dict[str, dict[str, float]] = {}
        names = [k for k in members[0] if k not in skip]
        for extra in members[1:]:
            names += [k for k in extra if k not in skip and k not in names]
        for name in names:
            values = [m[name] for m in members if _is_number(m.get(name))]
            if not values:
                continue
            finite = [float(v) for v in values if math.isfinite(v)]
            stats: dict[str, float] = {"n": len(finite), "n_nonfinite": len(values) - len(finite)}
            if finite:
                mean = sum(finite) / len(finite)
                var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1) if len(finite) > 1 else 0.0
                stats.update(mean=mean, std=math.sqrt(var), min=min(finite), max=max(finite))
            metrics[name] = stats
        out.append({**dict(zip(group_by, key)), "metrics": metrics})
    return out


def results_path(out: str | Path, kit: str, benchmark: str) -> Path:
    """``<out>/<kit>/<benchmark>.json``."""
    return Path(out) / kit / f"{benchmark}.json"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # numpy scalars/arrays, torch tensors
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__} in results")


def _sanitise(value: Any) -> Any:
    """JSON has no NaN/Inf: store them as strings so the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _sanitise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitise(v) for v in value]
    return value


def score_payload(payload: dict[str, Any], score: Scorer | None) -> dict[str, Any]:
    """Fill ``claims``/``controls`` of a results payload from its own numbers with the paper's ``score``.

    Each claim records the profile it ran under; the verdicts are checked against their numbers
    (:func:`shared.claims.check`), so a scorer cannot write a verdict its numbers do not support.
    """
    claims, controls = score(payload) if score is not None else ([], [])
    claims = [{**claim, "profile": payload["profile"]} for claim in claims]
    controls = [{**item, "profile": payload["profile"]} for item in controls]
    check_claims(claims, controls, where=f"{payload['kit']}/{payload['benchmark']}")
    payload["claims"], payload["controls"] = claims, controls
    payload["claims_commit"] = git_commit()["commit"]
    return payload


def write_results(result: BenchmarkResult, *, out: str | Path, profile: str, seeds: Sequence[int],
                  wall_time_s: float, peak_mb: float | None = None, score: Scorer | None = None) -> Path:
    """Validate ``result``, add provenance, aggregates and scored claims, and write ``<out>/<kit>/<benchmark>.json``.

    ``score`` is the paper's claims function (``<kit>/<paper>/claims.py``): it reads the payload's rows and
    ``extra`` and returns ``(claims, controls)``.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if not result.rows:
        raise DataError(f"benchmark {result.benchmark!r} produced no result rows")
    provenance = git_commit()
    payload = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": result.benchmark,
        "kit": result.kit,
        "title": result.title,
        "summary": result.summary,
        "profile": profile,
        "seeds": list(seeds),
        "commit": provenance["commit"],
        "dirty": provenance["dirty"],
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": result.config,
        "datasets": result.datasets,
        "group_by": list(result.group_by),
        "headline_metric": result.headline_metric,
        "lower_is_better": result.lower_is_better,
        "table_metrics": result.table_metrics,
        "rows": result.rows,
        "aggregate": aggregate_rows(result.rows, result.group_by),
        "figures": [dataclasses.asdict(f) for f in result.figures],
        "notes": result.notes,
        "extra": result.extra,
        "wall_time_s": round(float(wall_time_s), 3),
        "peak_memory_mb": round(float(peak_mb if peak_mb is not None else peak_memory_mb()), 1),
    }
    payload = score_payload(json.loads(json.dumps(_sanitise(payload), default=_json_default)), score)
    text = json.dumps(_sanitise(payload), indent=2, default=_json_default, allow_nan=False)
    return atomic_write_text(results_path(out, result.kit, result.benchmark), text + "\n")


def _load_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a clear :class:`DataError` when it is missing, not JSON or not an object."""
    if not path.is_file():
        raise DataError(f"results file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"results file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise DataError(f"results file {path} must hold a JSON object")
    return data


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and validate one results JSON; a clear :class:`DataError` names what is wrong."""
    path = Path(path)
    data = _load_json(path)
    version = data.get("schema_version")
    if isinstance(version, int) and version < SCHEMA_VERSION:
        raise StaleSchemaError(f"results file {path} has schema_version {version} (now {SCHEMA_VERSION}): "
                               "stale schema — rerun its benchmark")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise DataError(f"results file {path} lacks required key(s) {missing}")
    if version != SCHEMA_VERSION:
        raise DataError(f"results file {path} has schema_version {version}, expected {SCHEMA_VERSION}")
    check_claims(data["claims"], data["controls"], where=str(path))
    return data


def rescore_file(path: str | Path, score: Scorer) -> Path:
    """Score the claims of a stored results file from its own rows (upgrading an older schema) and rewrite it.

    The measured numbers and their provenance (``commit``, ``date``, ``wall_time_s``) are kept as they were;
    ``claims_commit`` records the code that computed the verdicts. Nothing is written if scoring fails.
    """
    path = Path(path)
    data = _load_json(path)
    missing = [key for key in V1_KEYS if key not in data]
    if missing:
        raise DataError(f"results file {path} lacks required key(s) {missing}; rerun its benchmark")
    data["schema_version"] = SCHEMA_VERSION
    text = json.dumps(_sanitise(score_payload(data, score)), indent=2, default=_json_default, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def iter_results(out: str | Path) -> Iterable[tuple[Path, dict[str, Any]]]:
    """Every valid results JSON under ``out`` (sorted by kit, then name); a stale or broken one raises."""
    for path in sorted(Path(out).glob("*/*.json")):
        yield path, read_results(path)


def scan_results(out: str | Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[Path, str]]]:
    """``(valid, unusable)`` results under ``out``: unusable files come with the reason (e.g. stale schema)."""
    valid, unusable = [], []
    for path in sorted(Path(out).glob("*/*.json")):
        try:
            valid.append((path, read_results(path)))
        except DataError as err:
            unusable.append((path, str(err)))
    return valid, unusable


class PartialRows:
    """Finished per-(arm, seed) rows of a running benchmark, appended to a JSONL file.

    A benchmark interrupted half-way resumes from here: it asks :meth:`get` before running an arm and
    :meth:`add` after. A truncated last line (a crash mid-write) is ignored.
    """

    def __init__(self, path: str | Path, signature: dict[str, Any] | None = None):
        self.path = Path(path)
        self.signature = json.dumps(signature or {}, sort_keys=True, default=str)
        self._rows: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("signature") == self.signature:
                    self._rows[record["key"]] = record["row"]

    @staticmethod
    def _key(key: dict[str, Any]) -> str:
        return json.dumps(key, sort_keys=True, default=str)

    def get(self, **key: Any) -> dict[str, Any] | None:
        """The stored row for this key, or ``None``."""
        return self._rows.get(self._key(key))

    def add(self, row: dict[str, Any], **key: Any) -> dict[str, Any]:
        """Store ``row`` under ``key`` (flushed to disk immediately) and return it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"signature": self.signature, "key": self._key(key), "row": _sanitise(row)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, default=_json_default) + "\n")
        self._rows[self._key(key)] = row
        return row

    def clear(self) -> None:
        """Forget every stored row (used when a run is forced)."""
        self.path.unlink(missing_ok=True)
        self._rows.clear()
