"""`paperkits llm copying-track` and `paperkits llm copying …`: copy accuracy and induction heads of checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from shared.cli import KitGroup, out_option, seed_option

# shared options of the checkpoint sweep and the one-model evaluation
_TASK_OPTIONS = [
    click.option("--samples", type=int, default=500, show_default=True, help="Copy-task samples (paper: 500)."),
    click.option("--task", "task_path", type=click.Path(path_type=Path), default=None,
                 help="A fixed copy task JSON (default: the run's copy_task.json, else a new one for the context)."),
    click.option("--exclude-ids", default=None, help="Comma-separated token ids never drawn (default: the "
                 "model's special ids: bos/eos/pad from its config, id 0 for kit models)."),
    click.option("--half-len", type=int, default=100, show_default=True,
                 help="Repeated-sequence half length s for the induction score (shortened to fit the context)."),
    click.option("--sequences", type=int, default=64, show_default=True, help="Repeated sequences for Ā."),
    click.option("--no-induction", is_flag=True, help="Copy accuracy only (skip induction scores)."),
    seed_option(),
]


def _task_options(func):
    for option in reversed(_TASK_OPTIONS):
        func = option(func)
    return func


def _json(value: Any) -> str:
    """JSON with NaN/inf as null (standard JSON has no NaN; an onset that never happened is null)."""
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), default=float)


def _special_ids(model: Any) -> list[int]:
    from llm_dynamics_kit.model import Transformer

    if isinstance(model, Transformer):
        return [0]  # the kit tokenizer's only special token, <|endoftext|>
    cfg = model.config
    ids = [getattr(cfg, name, None) for name in ("bos_token_id", "eos_token_id", "pad_token_id")]
    flat = []
    for value in ids:
        flat += value if isinstance(value, list) else [value]
    return [int(v) for v in flat if v is not None]


def _build(model: Any, samples: int, seed: int, task_path: Path | None, exclude: str | None, default_task: Path | None,
           half_len: int, sequences: int, no_induction: bool):
    from llm_dynamics_kit.copying.adapters import as_adapter
    from llm_dynamics_kit.copying.evaluate import default_task as build_task
    from llm_dynamics_kit.copying.task import CopyTask, token_pool
    from shared.errors import ConfigError

    adapter = as_adapter(model)
    try:
        excluded = [int(x) for x in exclude.split(",") if x.strip()] if exclude else _special_ids(model)
    except ValueError as err:
        raise ConfigError(f"--exclude-ids must be comma-separated integers, got {exclude!r}") from err
    excluded = [i for i in excluded if 0 <= i < adapter.vocab_size]
    pool = token_pool(adapter.vocab_size, exclude=excluded)
    path = task_path or (default_task if default_task is not None and default_task.is_file() else None)
    task = CopyTask.load(path) if path else build_task(adapter, n_samples=samples, seed=seed, vocab_pool=pool)
    induction = None if no_induction else {"half_len": half_len, "n_sequences": sequences, "seed": seed,
                                           "vocab_pool": pool}
    return task, induction


@click.command("copying-track")
@click.option("--checkpoints", "checkpoints", type=click.Path(path_type=Path), required=True,
              help="A `paperkits llm train` run folder (checkpoints/step_*) or a folder of step_N / checkpoint-N.")
@_task_options
@out_option(None)
def track_command(checkpoints: Path, samples: int, task_path: Path | None, exclude_ids: str | None, half_len: int,
                  sequences: int, no_induction: bool, seed: int, out: Path | None) -> None:
    """Evaluate every checkpoint on one fixed copy task: JSONL records, onsets and plots (default OUT:
    <checkpoints>/copying_track)."""
    from llm_dynamics_kit.copying.plots import plot_copy_and_loss, plot_induction_heatmap
    from llm_dynamics_kit.copying.track import (
        TASK_FILE,
        find_checkpoints,
        load_checkpoint_model,
        onsets,
        track_checkpoints,
    )

    found = find_checkpoints(checkpoints)
    out = out or Path(checkpoints) / "copying_track"
    run_dir = Path(checkpoints)
    first = load_checkpoint_model(found[0][1])
    # the task a CopyingTracker saved beside the run (given the run or its checkpoints/ folder)
    saved = next((p for p in (run_dir / TASK_FILE, run_dir.parent / TASK_FILE) if p.is_file()), None)
    task, induction = _build(first, samples, seed, task_path, exclude_ids, saved, half_len, sequences, no_induction)
    out.mkdir(parents=True, exist_ok=True)
    task.save(out / TASK_FILE)
    records = track_checkpoints(checkpoints, task, induction, out=out / "copying.jsonl")
    figures = []
    if all(r.get("train_loss") is not None for r in records[1:]) and len(records) > 1:
        figures.append(str(plot_copy_and_loss([records[1:] if records[0]["train_loss"] is None else records],
                                              out / "copy_and_loss_vs_steps.png")))
        if all(r.get("tokens") for r in records[1:]):
            figures.append(str(plot_copy_and_loss([[r for r in records if r.get("train_loss") is not None]],
                                                  out / "copy_and_loss_vs_tokens.png", x="tokens")))
    if induction is not None:
        figures.append(str(plot_induction_heatmap(records, out / "induction_heatmap.png")))
    summary = onsets(records).as_row()
    click.echo(_json({"checkpoints": len(records), "records": str(out / "copying.jsonl"), "figures": figures,
                      "copy_acc": [r["copy_acc"] for r in records], "onsets": summary}))


@click.group(name="copying", cls=KitGroup)
def group() -> None:
    """Copying as grokking (arXiv 2409.09281): copy accuracy and induction heads of a model or a run."""


group.add_command(track_command, "track")


@group.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@_task_options
def eval_command(model: Path, samples: int, task_path: Path | None, exclude_ids: str | None, half_len: int,
                 sequences: int, no_induction: bool, seed: int) -> None:
    """Copy accuracy (per query position) and per-head induction scores of one saved model (kit or HF folder)."""
    from llm_dynamics_kit.cli import resolve_model_dir
    from llm_dynamics_kit.copying.track import evaluate_model, load_checkpoint_model

    path = Path(model)
    if not (path / "config.json").is_file():
        path = resolve_model_dir(path)
    lm = load_checkpoint_model(path)
    task, induction = _build(lm, samples, seed, task_path, exclude_ids, None, half_len, sequences, no_induction)
    click.echo(_json(evaluate_model(lm, task, induction)))
