"""``paperkits recsys negsample-bench`` and ``negsample-samplers``: compare samplers fairly on any RecBole dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from shared.cli import out_option
from shared.errors import ConfigError, DataError


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@click.command("negsample-samplers")
def negsample_samplers() -> None:
    """List the samplers, their family and their cost per step."""
    from recsys_kit.negsampling import SAMPLERS, sampler_names

    for name in sampler_names():
        cls = SAMPLERS[name]
        click.echo(f"{cls.family:12s} {name:13s} {cls.cost}")


@click.command("negsample-bench")
@click.option("--dataset", default="ml-100k", show_default=True,
              help="RecBole atomic dataset name (folder <data-path>/<dataset>/ with <dataset>.inter).")
@click.option("--data-path", type=click.Path(path_type=Path), default=None,
              help="Folder that contains <dataset>/; default: the ml-100k RecBole ships.")
@click.option("--models", default="BPR,LightGCN", show_default=True, help="RecBole models: BPR, LightGCN.")
@click.option("--samplers", default="all", show_default=True,
              help="Comma-separated sampler names, 'all', or 'recbole_uniform' for RecBole's own sampler.")
@click.option("--settings", default="all_positive", show_default=True,
              help="all_positive and/or low_ratings_negative (ratings <= 2 become known negatives).")
@click.option("--seeds", "n_seeds", type=int, default=3, show_default=True, help="Number of seeds (2020, 2021, ...).")
@click.option("--epochs", type=int, default=60, show_default=True, help="Epoch budget (equal for every sampler).")
@click.option("--eval-step", type=int, default=5, show_default=True)
@click.option("--stopping-step", type=int, default=3, show_default=True)
@click.option("--embedding-size", type=int, default=64, show_default=True)
@click.option("--profile", type=click.Choice(["quick", "default", "full"]), default="full", show_default=True,
              help="Profile label written into the results file.")
@out_option("runs/negsamp")
def negsample_bench(dataset: str, data_path: Path | None, models: str, samplers: str, settings: str, n_seeds: int,
                    epochs: int, eval_step: int, stopping_step: int, embedding_size: int, profile: str, out: Path) -> None:
    """Train RecBole's BPR/LightGCN with each sampler under one protocol; write JSON, table and figures."""
    from recsys_kit.negsampling import sampler_names
    from recsys_kit.negsampling.bench import ALL_SAMPLERS, KIT, GridSpec, build_result, run_grid
    from recsys_kit.negsampling.experiment import NATIVE_UNIFORM, SETTINGS
    from recsys_kit.recbole_compat import recbole_dataset_dir
    from shared.results import write_results

    chosen = ALL_SAMPLERS if samplers == "all" else _split(samplers)
    unknown = [s for s in chosen if s not in sampler_names() + [NATIVE_UNIFORM]]
    if unknown:
        raise ConfigError(f"unknown sampler(s) {unknown}; choose from {sampler_names() + [NATIVE_UNIFORM]} or 'all'")
    if "uniform" not in chosen:
        chosen = ["uniform", *chosen]  # the reference every cost ratio and paired gain is computed against
    model_list = _split(models)
    bad_models = [m for m in model_list if m not in ("BPR", "LightGCN")]
    if bad_models:
        raise ConfigError(f"unsupported model(s) {bad_models}; use BPR and/or LightGCN")
    setting_list = _split(settings)
    if any(s not in SETTINGS for s in setting_list):
        raise ConfigError(f"settings must be among {list(SETTINGS)}, got {setting_list}")
    if n_seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    root = Path(data_path) if data_path else recbole_dataset_dir("ml-100k").parent
    if not (root / dataset / f"{dataset}.inter").is_file():
        raise DataError(f"missing {root / dataset / (dataset + '.inter')}; --data-path must be the folder that "
                        f"contains {dataset}/{dataset}.inter (RecBole atomic format)")
    chosen = [s for s in chosen if s != "predefined"]  # added automatically in low_ratings_negative
    spec = GridSpec(models=model_list, samplers=chosen, settings=setting_list, epochs=epochs, eval_step=eval_step,
                    stopping_step=stopping_step, embedding_size=embedding_size, dataset=dataset,
                    data_path=str(root))
    seeds = [2020 + i for i in range(n_seeds)]
    rows = run_grid(spec, seeds, Path(out), {"cli": dataclasses.asdict(spec)})
    result = build_result(spec, seeds, rows, Path(out) / KIT, profile)
    path = write_results(result, out=out, profile=profile, seeds=seeds, wall_time_s=sum(r["fit_wall_s"] for r in rows))
    click.echo(_table(rows))
    click.echo(result.summary)
    click.echo(f"results: {path}")


def _table(rows: list[dict]) -> str:
    import numpy as np

    arms: dict[tuple, list[dict]] = {}
    for r in rows:
        arms.setdefault((r["setting"], r["model"], r["sampler"]), []).append(r)
    lines = [f"{'setting':20s} {'model':9s} {'sampler':16s} {'R@20':>15s} {'N@20':>15s} {'CPU x unif':>10s} {'FN rate':>8s}"]
    def ms(members: list[dict], key: str) -> str:
        values = [m[key] for m in members if key in m]
        if not values:
            return "-"
        return f"{np.mean(values):.4f}±{np.std(values, ddof=1) if len(values) > 1 else 0:.4f}"

    for (setting, model, sampler), members in arms.items():
        cost = [m["cpu_time_vs_uniform"] for m in members if "cpu_time_vs_uniform" in m]
        fn = [m["false_negative_rate"] for m in members if "false_negative_rate" in m]
        lines.append(f"{setting:20s} {model:9s} {sampler:16s} {ms(members, 'test_recall@20'):>15s} {ms(members, 'test_ndcg@20'):>15s} "
                     f"{(np.mean(cost) if cost else float('nan')):10.2f} {(np.mean(fn) if fn else float('nan')):8.4f}")
    return "\n".join(lines)
