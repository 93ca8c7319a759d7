"""`paperkits llm hmoe …`: expert sizes, arm configs, and routing / token-rarity analysis of a trained run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli import KitGroup


@click.group(name="hmoe", cls=KitGroup)
def group() -> None:
    """HMoE (arXiv 2408.10681): heterogeneous experts, P-Penalty, Top-K/Top-P routing."""


@group.command("sizes")
@click.option("--strategy", default="arithmetic", show_default=True,
              help="homogeneous | arithmetic | geometric | hybrid | custom")
@click.option("--experts", type=int, default=8, show_default=True)
@click.option("--total", type=int, default=1024, show_default=True, help="Σ expert hidden sizes per layer.")
@click.option("--multiple-of", type=int, default=8, show_default=True)
@click.option("--ratio", type=float, default=None, help="arithmetic: max/min size ratio (default 23/9).")
@click.option("--custom", default=None, help="custom: comma-separated relative sizes.")
def sizes_command(strategy: str, experts: int, total: int, multiple_of: int, ratio: float | None,
                  custom: str | None) -> None:
    """Print the expert widths a size strategy gives for a budget."""
    from llm_dynamics_kit.moe.sizes import expert_sizes

    rel = [float(c) for c in custom.split(",")] if custom else None
    click.echo(json.dumps(expert_sizes(strategy, experts, total, multiple_of, ratio, rel)))


@group.command("config")
@click.argument("arm")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the run config YAML here.")
@click.option("--total", type=int, default=1024, show_default=True, help="Σ expert hidden sizes per layer.")
def config_command(arm: str, out: Path | None, total: int) -> None:
    """A `paperkits llm train` config for an HMoE arm (e.g. hmoe_topk_pp, moe_topk_lb, dense)."""
    import dataclasses

    import yaml

    from llm_dynamics_kit.hmoe.presets import arm_config
    from llm_dynamics_kit.train import RunConfig
    from shared.config import save_config, to_dict

    config = RunConfig()
    config = dataclasses.replace(config, model=arm_config(arm, config.model, total))
    if out is None:
        click.echo(yaml.safe_dump(to_dict(config), sort_keys=False))
    else:
        click.echo(save_config(config, out))


@group.command("analyze")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--batches", type=int, default=16, show_default=True, help="Validation batches to route.")
@click.option("--labels", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A .npy of one integer class per validation token (-1 = skip): adds routing per class and layer.")
def analyze_command(run: Path, batches: int, labels: Path | None) -> None:
    """Per-layer expert activation, ρ(size, activation), activated params and the token-rarity slope of a run."""
    import numpy as np

    from llm_dynamics_kit.cli import _run_dir_of, resolve_model_dir
    from llm_dynamics_kit.data import prepare_data
    from llm_dynamics_kit.hmoe.analysis import rarity_analysis, routing_report, token_frequencies
    from llm_dynamics_kit.model import Transformer
    from llm_dynamics_kit.train import RunConfig
    from shared.config import load_config

    model_dir = resolve_model_dir(run)
    config = load_config(RunConfig, _run_dir_of(model_dir) / "config.yaml")
    data = prepare_data(config.data)
    model = Transformer.from_pretrained(model_dir)
    classes = np.load(labels) if labels is not None else None
    report = routing_report(model, data.valid, config.train.seq_len, config.train.batch_size, batches, classes)
    rarity = rarity_analysis(report, token_frequencies(data.train, data.vocab_size))
    click.echo(json.dumps({
        **({"by_label": report.by_label()} if classes is not None else {}),
        "sizes": report.sizes,
        "activation_fraction": np.round(report.fractions, 4).tolist(),
        "size_activation_rho": [None if np.isnan(r) else round(float(r), 4) for r in report.size_activation_rho()],
        "experts_per_token": report.experts_per_token.round(4).tolist(),
        "activated_ffn_hidden": report.activated_hidden.round(2).tolist(),
        "activated_params": model.activated_params(),
        "rarity_gate_weighted_size_per_decile": [round(v, 2) for v in rarity["per_bin"]],
        "rarity_slope": rarity["slope"], "rarity_slope_ci95": rarity["slope_ci"],
    }))
