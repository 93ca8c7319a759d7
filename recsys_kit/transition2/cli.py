"""`paperkits recsys transition2 …`: build a cross-domain mixed-feedback dataset, train and evaluate Transition²."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from shared.cli import KitGroup, config_option, out_option, seed_option
from shared.config import load_config, save_config
from shared.results import atomic_write_text


@click.group(name="transition2", cls=KitGroup)
def group() -> None:
    """Transition² (arXiv 2408.08209): domain and feedback transitions in cross-domain sequential rec."""


@group.command("build-data")
@config_option()
@out_option("runs/transition2/data")
@click.option("--source-dir", default=None, help="Folder with <source-name>.inter/.item (default: RecBole's ml-100k).")
@click.option("--source-name", default=None, help="Atomic file stem of the source dataset.")
@click.option("--name", default=None, help="Name of the dataset to write (default ML100K-T2).")
@click.option("--domain-field", default=None, help=".item field with the domain token or genres.")
@click.option("--domain-map", default=None, help="TSV item_id<TAB>domain overriding --domain-field.")
@click.option("--label-field", default=None, help=".inter column with explicit pos/neg labels (instead of ratings).")
@click.option("--pos-threshold", type=float, default=None, help="rating >= this is positive feedback.")
@click.option("--neg-threshold", type=float, default=None, help="rating <= this is negative feedback.")
@click.option("--neutral", type=click.Choice(["drop", "neg", "pos"]), default=None, help="Ratings in between.")
@click.option("--max-users", type=int, default=None, help="Seeded user subsample (0 = all).")
def build_data(config_path: Path | None, overrides: tuple[str, ...], out: Path, source_dir: str | None,
               source_name: str | None, name: str | None, domain_field: str | None, domain_map: str | None,
               label_field: str | None, pos_threshold: float | None, neg_threshold: float | None, neutral: str | None,
               max_users: int | None) -> None:
    """Write <out>/<name>/<name>.inter/.item: interactions labelled with domain and pos/neg feedback."""
    from recsys_kit.transition2.data import BuildConfig, build_t2_dataset

    flags = {"source_dir": source_dir, "source_name": source_name, "name": name, "domain_field": domain_field,
             "domain_map_file": domain_map, "label_field": label_field, "pos_threshold": pos_threshold,
             "neg_threshold": neg_threshold,
             "neutral": neutral, "max_users": max_users}
    extra = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    if domain_field is not None and not any(o.startswith("domain_families") for o in overrides):
        extra.append("domain_families={}")  # a plain domain field: each token is a domain
    cfg = load_config(BuildConfig, config_path, [*overrides, *extra])
    stats = build_t2_dataset(cfg, out)
    click.echo(json.dumps(dataclasses.asdict(stats), indent=2))


@group.command("train")
@config_option()
@seed_option()
@out_option("runs/transition2")
@click.option("--arm", default=None, help="sasrec_mixed | sasrec_neg | c2dsr_lite | t2_v1 | t2_v2 (default).")
@click.option("--epochs", type=int, default=None, help="Maximum epochs (early stopping on validation NDCG@10).")
@click.option("--data-dir", default=None,
              help="Folder holding <build.name>/ (built there if missing or built with other build settings).")
@click.option("--hidden-size", type=int, default=None, help="Embedding/hidden size d (default 64).")
@click.option("--inner-size", type=int, default=None, help="Transformer FFN width (default 4 × hidden size).")
def train(config_path: Path | None, overrides: tuple[str, ...], seed: int, out: Path, arm: str | None,
          epochs: int | None, data_dir: str | None, hidden_size: int | None, inner_size: int | None) -> None:
    """Train one arm, evaluate it per domain on the test split, and save config, metrics and checkpoint."""
    from recsys_kit.transition2.train import TrainConfig, prepare, train_arm

    flags = (("arm", arm), ("epochs", epochs), ("data_dir", data_dir), ("hidden_size", hidden_size),
             ("inner_size", inner_size))
    extra = [f"seed={seed}"] + [f"{k}={v}" for k, v in flags if v is not None]
    cfg = load_config(TrainConfig, config_path, [*overrides, *extra])
    run_dir = Path(out) / f"{cfg.build.name}-{cfg.arm}-seed{cfg.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    prepared = prepare(cfg)
    result = train_arm(prepared, cfg, checkpoint=run_dir / "checkpoint.pt")
    metrics = {**result.test.metrics, "valid_full_ndcg@10": result.valid_ndcg, "epochs": result.epochs_run,
               "best_epoch": result.best_epoch, "edge_weights": result.edge_weights, "loss_curve": result.loss_curve}
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    domains = sorted(set(result.test.domains))
    columns = ["ndcg@5", "ndcg@10", "hr@5", "hr@10", "mrr"]
    click.echo(f"{'domain':8s} " + " ".join(f"{c.upper():>8s}" for c in columns)
               + "   (full in-domain ranking, test; MRR over the whole ranking)")
    for domain in [*domains, "all"]:
        prefix = "" if domain == "all" else f"{domain}_"
        click.echo(f"{domain:8s} " + " ".join(f"{metrics[f'{prefix}full_{c}']:8.4f}" for c in columns))
    click.echo(f"epochs run {result.epochs_run} (best {result.best_epoch}); edge weights W: {result.edge_weights}; "
               f"saved to {run_dir}")
