"""Turn every results JSON under ``results/`` into ``results/REPORT.md`` with figures.

The report opens with the **claims scoreboard**: verdict counts, one row per paper claim (ours vs baseline,
CI, verdict, profile) and each paper's controls. For ``results/`` it shows, per benchmark, the strongest
profile that ran (``results/gpu`` > ``results/full`` > ``results/``); :func:`update_readme` puts the same
table into the README between ``<!-- scoreboard:begin -->`` and ``<!-- scoreboard:end -->``.
Then each benchmark gets a section: its summary sentence, provenance (profile, seeds, commit, time, memory),
a table of mean ± std over seeds per arm, a headline bar chart drawn here from the aggregates, and the
benchmark's own figures with their captions.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from shared.claims import VERDICTS
from shared.results import atomic_write_text, scan_results

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
        f"#### {data['title']}",
        "",
        f"`{rel_dir}/{json_path.name}` — profile **{data['profile']}**, seeds {data['seeds']}, commit `{commit}`, "
        f"{data['wall_time_s']:.0f} s wall, peak memory {data['peak_memory_mb']:.0f} MiB, {data['date']}.",
    ]
    if data.get("datasets"):
        lines.append(f"Data: {', '.join(data['datasets'])}.")
    lines += ["", data.get("summary") or "_No summary was given by this benchmark._", ""]
    lines += claim_details(data) + ["", markdown_table(data), ""]
    figure = headline_figure(data, json_path.parent / f"{data['benchmark']}_headline.png")
    if figure is not None:
        lines += [f"![{data['headline_metric']} per arm]({rel_dir}/{figure.name})", "",
                  f"*Headline metric `{data['headline_metric']}` per arm; error bars are ±1 std over seeds.*", ""]
    for fig in data.get("figures", []):
        lines += [f"![{fig['caption']}]({rel_dir}/{fig['path']})", "", f"*{fig['caption']}*", ""]
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


PROFILE_STRENGTH = {"quick": 0, "default": 1, "full": 2}
SUBFOLDERS = ("full", "gpu")  # stronger runs kept beside the default ones: results/full, results/gpu
README_BEGIN, README_END = "<!-- scoreboard:begin -->", "<!-- scoreboard:end -->"


def strongest(out: Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[Path, str]]]:
    """Per benchmark, the results of the strongest profile under ``out`` and its ``full``/``gpu`` subfolders.

    Ties go to the later folder (a GPU run of the full profile beats a CPU one). Returns ``(chosen, unusable)``.
    """
    chosen: dict[tuple[str, str], tuple[tuple[int, int], Path, dict[str, Any]]] = {}
    unusable: list[tuple[Path, str]] = []
    roots = [out] + [out / sub for sub in SUBFOLDERS if (out / sub).is_dir()]
    for rank, root in enumerate(roots):
        valid, bad = scan_results(root)
        unusable += bad
        for path, data in valid:
            key = (data["kit"], data["benchmark"])
            strength = (PROFILE_STRENGTH.get(data["profile"], 0), rank)
            if key not in chosen or strength > chosen[key][0]:
                chosen[key] = (strength, path, data)
    return [(path, data) for _s, path, data in chosen.values()], unusable


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


VERDICT_MARK = {"reproduced": "✅ reproduced", "direction_only": "➖ direction only",
                "not_reproduced": "❌ not reproduced", "untestable": "⬜ untestable"}


def scoreboard(entries: list[tuple[Path, dict[str, Any]]], unusable: list[tuple[Path, str]], out: Path) -> str:
    """The claims scoreboard (Markdown): counts, one row per claim, then each paper's controls."""
    order = sorted(entries, key=lambda e: (list(KIT_TITLES).index(e[1]["kit"]) if e[1]["kit"] in KIT_TITLES
                                           else 99, e[1]["benchmark"]))
    claims = [(data, claim) for _p, data in order for claim in data["claims"]]
    controls = [(data, item) for _p, data in order for item in data["controls"]]
    counts = {v: sum(1 for _d, c in claims if c["verdict"] == v) for v in VERDICTS}
    passed = sum(1 for _d, c in controls if c["passed"])
    lines = [
        "## Claims scoreboard",
        "",
        f"**{len(claims)} claims: {counts['reproduced']} reproduced · {counts['direction_only']} direction only · "
        f"{counts['not_reproduced']} not reproduced · {counts['untestable']} untestable. "
        f"Controls: {passed} passed of {len(controls)} run.**",
        "",
        "Verdicts are computed by `shared/claims.py` from each paired difference's 95% CI (paired t over seeds; a "
        "bootstrap over users/items where seeds are few): *reproduced* = CI excludes 0 in the paper's direction; "
        "*direction only* = the mean points the paper's way, the CI includes 0 (or < 3 seeds); *not reproduced* = "
        "the mean points the other way; *untestable* = the claim's precondition never happened at this scale. "
        "Each paper's claims are defined in `<kit>/<paper>/claims.py`.",
        "",
        "| paper | claim | ours vs baseline | diff [95% CI] | verdict | profile |",
        "|---|---|---|---|---|---|",
    ]
    for data, claim in claims:
        ours = _num(claim.get("ours"))
        base = _num(claim.get("baseline"))
        labels = f" ({claim['ours_label']} vs {claim['baseline_label']})" if claim.get("ours_label") else ""
        ci = claim.get("diff_ci95")
        diff = (f"{_num(claim.get('diff'))} [{_num(ci[0])}, {_num(ci[1])}]" if ci else _num(claim.get("diff")))
        lines.append(f"| {data['benchmark']} | {_cell(claim['statement'])} | {ours} vs {base}{_cell(labels)} "
                     f"({_cell(claim['metric'])}) | {diff} | {VERDICT_MARK[claim['verdict']]} | "
                     f"{claim.get('profile', data['profile'])} |")
    if not claims:
        lines.append("| – | no claims scored yet: run `make bench` | | | | |")
    lines += ["", "| paper | positive controls | negative controls |", "|---|---|---|"]
    for _path, data in order:
        cells = []
        for kind in ("positive", "negative"):
            items = [c for c in data["controls"] if c["kind"] == kind]
            cells.append(", ".join(f"{c['id']} {'pass' if c['passed'] else 'FAIL'}" for c in items)
                         if items else "none yet")
        lines.append(f"| {data['benchmark']} | {cells[0]} | {cells[1]} |")
    if unusable:
        lines += ["", "Results files that could not be used (their rows are not in the scoreboard):", ""]
        for path, reason in unusable:
            rel = path.relative_to(out) if path.is_relative_to(out) else path
            stale = "stale schema — rerun" if "stale schema" in reason else reason
            lines.append(f"- `{rel}`: {stale}")
    return "\n".join(lines) + "\n"


def claim_details(data: dict[str, Any]) -> list[str]:
    """The per-benchmark list of claims and controls with their reasons (inside the benchmark's section)."""
    lines = []
    for claim in data.get("claims", []):
        lines.append(f"- **{claim['id']}** ({VERDICT_MARK[claim['verdict']]}): {claim['statement']} "
                     f"*Paper:* {claim['paper']} *Here:* {claim['why']}")
    for item in data.get("controls", []):
        lines.append(f"- **{item['id']}** ({item['kind']} control, {'passed' if item['passed'] else 'FAILED'}): "
                     f"{item['setting']} *Expect:* {item['expect']} *Observed:* {item['observed']}")
    if not data.get("controls"):
        lines.append("- _No controls yet for this benchmark._")
    return lines


def update_readme(readme: str | Path, out: str | Path) -> Path:
    """Replace the README's scoreboard block with the one built from ``out`` (strongest profile per paper)."""
    readme, out = Path(readme), Path(out)
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_BEGIN} … {README_END} block to fill")
    entries, unusable = strongest(out)
    table = scoreboard(entries, unusable, out).replace("## Claims scoreboard\n\n", "", 1)
    table = table.replace("`shared/claims.py`", "[`shared/claims.py`](shared/claims.py)")
    head, rest = text.split(README_BEGIN, 1)
    _old, tail = rest.split(README_END, 1)
    return atomic_write_text(readme, f"{head}{README_BEGIN}\n{table}{README_END}{tail}")


def build_report(out: str | Path) -> Path:
    """Write ``<out>/REPORT.md`` from every results JSON under ``out``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_kit: dict[str, list[str]] = {}
    valid, unusable_here = scan_results(out)
    for json_path, data in valid:
        by_kit.setdefault(data["kit"], []).append(section(json_path, data, out))
    top_level = out.name not in SUBFOLDERS
    entries, unusable = strongest(out) if top_level else (valid, unusable_here)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines = [
        "# paperkits benchmark report",
        "",
        f"Built {now} from the results JSON files in this folder (`make report` rebuilds it). Each number is a "
        "mean over seeds with its sample standard deviation; every file records the commit, profile and seeds "
        "that produced it.",
        "",
        scoreboard(entries, unusable, out),
        "## Per benchmark",
        "",
    ]
    if not by_kit:
        lines += ["No benchmark results yet: run `make bench`.", ""]
    for kit in sorted(by_kit, key=lambda k: list(KIT_TITLES).index(k) if k in KIT_TITLES else 99):
        lines += [f"### {KIT_TITLES.get(kit, kit)}", ""]
        lines += by_kit[kit]
    return atomic_write_text(out / "REPORT.md", "\n".join(lines))
