"""`paperkits recsys damrs …`: build features, inject noise, convert MMRec data, train."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli import KitGroup, config_option, out_option, seed_option


@click.group(name="damrs", cls=KitGroup)
def group() -> None:
    """DA-MRS (KDD 2024): denoise and align multi-modal content and feedback on RecBole backbones."""


@group.command("build-features")
@click.option("--root", type=click.Path(path_type=Path), default=Path("runs/damrs-data"), show_default=True,
              help="Folder that receives the ml-100k dataset folder.")
@click.option("--modality", "modalities", multiple=True, type=click.Choice(["text", "genre", "kg"]),
              help="Modalities to build (default: all three).")
def build_features(root: Path, modalities: tuple[str, ...]) -> None:
    """Split RecBole's shipped ml-100k and build its text (MiniLM), genre and KG features (cached)."""
    from recsys_kit.damrs.prepare import prepare_ml100k_clean
    from recsys_kit.data.ml100k_features import MODALITIES

    folder = prepare_ml100k_clean(root, modalities=modalities or MODALITIES)
    click.echo(str(folder))


@group.command("convert-mmrec")
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=Path("runs/damrs-data"), show_default=True,
              help="Folder that receives the converted dataset folder.")
def convert_mmrec_command(src: Path, name: str, root: Path) -> None:
    """Convert an MMRec dataset (SRC/NAME.inter + *_feat.npy) into a DA-MRS/RecBole dataset folder."""
    from recsys_kit.damrs.mmrec import convert_mmrec

    click.echo(str(convert_mmrec(src, name, root)))


@group.command("inject-noise")
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--scenario", required=True, help="add<r>, delete<r> or replace<r> with r in percent, e.g. add20.")
@seed_option()
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Where the noisy copy goes (default: beside DATASET).")
def inject_noise(dataset: Path, scenario: str, seed: int, root: Path | None) -> None:
    """Write a seeded noisy copy of DATASET (train split / features only) and record what was injected."""
    from recsys_kit.damrs.prepare import noisy_copy

    click.echo(str(noisy_copy(dataset, scenario, seed, root)))


@group.command("train")
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, file_okay=False))
@config_option()
@seed_option(999)
@out_option("runs/damrs")
def train(dataset: Path, config_path: Path | None, overrides: tuple[str, ...], seed: int, out: Path) -> None:
    """Train DA-MRS on DATASET (a folder with NAME.{train,valid,test}.inter + modalities.json).

    Examples: --set model.backbone=mf, --set model.use_consistency=false (IIG), --set model.kl_weight=0,
    --set model.use_content_graphs=false --set model.use_iib=false ... (plain backbone).
    """
    from recsys_kit.damrs.train import TrainConfig, train_damrs
    from shared.config import load_config
    from shared.results import atomic_write_text

    cfg = load_config(TrainConfig, config_path, [*overrides, f"seed={seed}"])
    result = train_damrs(dataset, cfg, out)
    summary = {"valid": result.valid, "test": result.test, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "graph_stats": result.graph_stats}
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    click.echo(json.dumps(summary["test"]))
