"""Turn every results JSON under ``results/`` into ``results/REPORT.md`` with figures.

Each benchmark gets a section: its summary sentence, provenance (profile, seeds, commit, time, memory),
a table of mean ± std over seeds per arm, a headline bar chart drawn here from the aggregates, and the
benchmark's own figures with their captions.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from shared.results import atomic_write_text, iter_results

KIT_TITLES = {
    "recsys": "Recommender systems (recsys_kit)",
    "llm": "LLM training dynamics (llm_dynamics_kit)",
    "safety": "Multimodal safety (safety_kit)",
    "agents": "Internet of Agents (agents_kit)",
}


def format_stat(stats: dict[str, Any], digits: int = 4) -> str:
    """``mean ± std`` (or ``mean`` for one seed), with non-finite runs flagged."""
    if "mean" not in stats:
        return f"non-finite ×{stats.get('n_nonfinite', 0)}"
    mean, std, n = stats["mean"], stats.get("std", 0.0), stats.get("n", 1)
    if abs(std) <= 1e-9 * max(abs(mean), 1e-30):  # identical seeds: float noise is not spread
        std = 0.0
    text = f"{mean:.{digits}g}" if n <= 1 else f"{mean:.{digits}g} ± {std:.2g}"
    if stats.get("n_nonfinite"):
        text += f" ({stats['n_nonfinite']} non-finite)"
    return text


def metric_names(data: dict[str, Any]) -> list[str]:
    """The metrics shown in the table: ``table_metrics`` when given, else every aggregated metric."""
    if data.get("table_metrics"):
        return list(data["table_metrics"])
    names: list[str] = []
    for group in data["aggregate"]:
        names += [m for m in group["metrics"] if m not in names]
    return names


def markdown_table(data: dict[str, Any]) -> str:
    """The aggregate table of one results file as Markdown."""
    keys = list(data["group_by"])
    metrics = metric_names(data)
    header = "| " + " | ".join(keys + metrics) + " |"
    rule = "|" + "|".join(["---"] * (len(keys) + len(metrics))) + "|"
    lines = [header, rule]
    for group in data["aggregate"]:
        cells = [str(group.get(k, "")) for k in keys]
        cells += [format_stat(group["metrics"][m]) if m in group["metrics"] else "–" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline_figure(data: dict[str, Any], path: Path) -> Path | None:
    """A bar chart of the headline metric per arm with ±1 std error bars (``None`` if no headline)."""
    metric = data.get("headline_metric")
    if not metric:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, means, stds = [], [], []
    for group in data["aggregate"]:
        stats = group["metrics"].get(metric)
        if not stats or "mean" not in stats:
            continue
        labels.append(" / ".join(str(group[k]) for k in data["group_by"]))
        means.append(stats["mean"])
        stds.append(stats.get("std", 0.0) if math.isfinite(stats.get("std", 0.0)) else 0.0)
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(labels) + 2), 3.6))
    ax.bar(range(len(labels)), means, yerr=stds, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    direction = "lower is better" if data.get("lower_is_better") else "higher is better"
    ax.set_ylabel(f"{metric} ({direction})")
    ax.set_title(f"{data['title']}\nmean ± std over {len(data['seeds'])} seed(s), profile {data['profile']}",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def section(json_path: Path, data: dict[str, Any], out: Path) -> str:
    """The Markdown section of one benchmark."""
    rel_dir = json_path.parent.relative_to(out)
    commit = str(data["commit"])[:10] + (" (uncommitted changes)" if data.get("dirty") else "")
    lines = [
        f"### {data['title']}",
        "",
        f"`{rel_dir}/{json_path.name}` — profile **{data['profile']}**, seeds {data['seeds']}, commit `{commit}`, "
        f"{data['wall_time_s']:.0f} s wall, peak memory {data['peak_memory_mb']:.0f} MiB, {data['date']}.",
    ]
    if data.get("datasets"):
        lines.append(f"Data: {', '.join(data['datasets'])}.")
    lines += ["", data.get("summary") or "_No summary was given by this benchmark._", "", markdown_table(data), ""]
    figure = headline_figure(data, json_path.parent / f"{data['benchmark']}_headline.png")
    if figure is not None:
        lines += [f"![{data['headline_metric']} per arm]({rel_dir}/{figure.name})", "",
                  f"*Headline metric `{data['headline_metric']}` per arm; error bars are ±1 std over seeds.*", ""]
    for fig in data.get("figures", []):
        lines += [f"![{fig['caption']}]({rel_dir}/{fig['path']})", "", f"*{fig['caption']}*", ""]
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def build_report(out: str | Path) -> Path:
    """Write ``<out>/REPORT.md`` from every results JSON under ``out``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_kit: dict[str, list[str]] = {}
    for json_path, data in iter_results(out):
        by_kit.setdefault(data["kit"], []).append(section(json_path, data, out))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines = [
        "# paperkits benchmark report",
        "",
        f"Built {now} from the results JSON files in this folder (`make report` rebuilds it). Each number is a "
        "mean over seeds with its sample standard deviation; every file records the commit, profile and seeds "
        "that produced it.",
        "",
    ]
    if not by_kit:
        lines += ["No benchmark results yet: run `make bench`.", ""]
    for kit in sorted(by_kit, key=lambda k: list(KIT_TITLES).index(k) if k in KIT_TITLES else 99):
        lines += [f"## {KIT_TITLES.get(kit, kit)}", ""]
        lines += by_kit[kit]
    return atomic_write_text(out / "REPORT.md", "\n".join(lines))
