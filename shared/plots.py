"""Small matplotlib helpers shared by every benchmark, so figures look alike and are written the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_std_curves(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over seeds of equally long curves (shorter ones are truncated to the shortest)."""
    length = min(len(c) for c in curves)
    stacked = np.array([list(c)[:length] for c in curves], dtype=float)
    return stacked.mean(axis=0), stacked.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)


def line_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
              path: str | Path, *, xlabel: str, ylabel: str, title: str = "", logy: bool = False,
              logx: bool = False) -> Path:
    """Lines with a ±std band: ``series[label] = (x, mean, std or None)``. Returns the PNG path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for label, (x, mean, std) in series.items():
        x, mean = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
        (line,) = ax.plot(x, mean, label=label, linewidth=1.4)
        if std is not None:
            std = np.asarray(std, dtype=float)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def heatmap(matrix: Sequence[Sequence[float]], path: str | Path, *, xlabel: str, ylabel: str, title: str = "",
            xticks: Sequence[str] | None = None, yticks: Sequence[str] | None = None, cmap: str = "viridis",
            colorbar_label: str = "") -> Path:
    """A heat map (rows = y, columns = x) with a colour bar. Returns the PNG path."""
    plt = _pyplot()
    data = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * data.shape[1] + 2), max(3.0, 0.3 * data.shape[0] + 1.5)))
    image = ax.imshow(data, aspect="auto", cmap=cmap, origin="lower")
    bar = fig.colorbar(image, ax=ax)
    if colorbar_label:
        bar.set_label(colorbar_label)
    if xticks is not None:
        ax.set_xticks(range(len(xticks)), xticks, rotation=45, ha="right", fontsize=7)
    if yticks is not None:
        ax.set_yticks(range(len(yticks)), yticks, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path
