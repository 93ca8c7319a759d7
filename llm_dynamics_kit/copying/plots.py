"""Figures of copying over training (via :mod:`shared.plots`): the paper's Figs. 2, 3 and 6 in miniature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.plots import heatmap, line_plot, mean_std_curves

Records = Sequence[dict[str, Any]]


def _curve(runs: Sequence[Records], key: str, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    usable = [[r for r in run if r.get(key) is not None and r.get(x) is not None] for run in runs]
    usable = [u for u in usable if u]
    length = min(len(u) for u in usable)
    grid = np.mean([[r[x] for r in u[:length]] for u in usable], axis=0)
    mean, std = mean_std_curves([[r[key] for r in u[:length]] for u in usable])
    return grid, mean, std if len(usable) > 1 else None


def plot_copy_and_loss(runs: Sequence[Records], path: str | Path, x: str = "step", title: str = "") -> Path:
    """Copy accuracy and training loss (scaled to its first logged value) vs ``x`` ("step" or "tokens")."""
    series = {"copy accuracy (exact match)": _curve(runs, "copy_acc", x)}
    if all(r.get("copy_token_acc") is not None for run in runs for r in run):
        series["copy per-token accuracy (teacher forced)"] = _curve(runs, "copy_token_acc", x)
    grid, loss, std = _curve(runs, "train_loss", x)
    scale = loss[0] if loss[0] else 1.0
    series["train loss / first logged loss"] = (grid, loss / scale, None if std is None else std / scale)
    label = "optimizer steps" if x == "step" else "tokens seen"
    return line_plot(series, path, xlabel=label, ylabel="accuracy  |  relative loss",
                     title=title or f"copying vs training loss over {label} (mean ± std over seeds)")


def plot_arms(arms: Mapping[str, Sequence[Records]], path: str | Path, key: str = "copy_acc", x: str = "step",
              ylabel: str = "copy accuracy (exact match)", title: str = "") -> Path:
    """One mean ± std curve per arm (e.g. batch sizes) of ``key`` vs ``x``."""
    series = {arm: _curve(runs, key, x) for arm, runs in arms.items()}
    label = "optimizer steps" if x == "step" else "tokens seen"
    return line_plot(series, path, xlabel=label, ylabel=ylabel, title=title, logx=x == "tokens")


def plot_induction_heatmap(records: Records, path: str | Path, per_head: bool = False, title: str = "") -> Path:
    """Induction score over training: rows = layers (max over heads) or every (layer, head), columns = evals."""
    steps = [str(r["step"]) for r in records]
    if per_head:
        matrix = np.array([np.asarray(r["induction"]).reshape(-1) for r in records]).T  # (L·H, evals)
        n_heads = len(records[0]["induction"][0])
        labels = [f"L{i // n_heads}H{i % n_heads}" for i in range(matrix.shape[0])]
    else:
        matrix = np.array([r["induction_layer_max"] for r in records]).T  # (L, evals)
        labels = [f"layer {i}" for i in range(matrix.shape[0])]
    return heatmap(matrix, path, xlabel="optimizer step", ylabel="head" if per_head else "layer", xticks=steps,
                   yticks=labels, colorbar_label="induction score Ā·EP",
                   title=title or "induction score over training (shallow → deep)")
