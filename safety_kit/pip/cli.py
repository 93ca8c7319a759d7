"""`paperkits safety pip train|scan`: train a PIP detector, then scan image files for adversarial ones."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from safety_kit.pip.detector_bundle import DetectorBundle, PIPTrainConfig, train_detector
from shared.cli import config_option, out_option, seed_option, user_errors
from shared.config import load_config, save_config
from shared.errors import DataError


@click.group(name="pip")
def group() -> None:
    """PIP: detect adversarial images for VLMs from the attention of an irrelevant probe question."""


@group.command("train")
@config_option()
@seed_option()
@out_option(default="runs/pip")
@click.option("--backend", type=click.Choice(["tiny", "blip2", "instructblip", "llava"]), default=None,
              help="Model: the embedded tiny VLM (default) or a Hugging Face checkpoint (--checkpoint).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Local HF checkpoint directory (for blip2/instructblip/llava).")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Folder of clean training images (HF backends; the tiny VLM generates scenes).")
@click.option("--probe", "probes", multiple=True, help="Probe question (repeatable); default: the built-in probes.")
@user_errors
def train(config_path: Path | None, overrides: tuple[str, ...], seed: int, out: Path, backend: str | None,
          checkpoint: Path | None, images: Path | None, probes: tuple[str, ...]) -> None:
    """Attack clean images (PGD-L∞ on the answer loss), extract probe attention, fit the SVM detector."""
    config = load_config(PIPTrainConfig, config_path, overrides)
    changes = {k: v for k, v in {"backend": backend, "checkpoint": str(checkpoint) if checkpoint else None,
                                 "images": str(images) if images else None,
                                 "probes": list(probes) or None}.items() if v is not None}
    config = dataclasses.replace(config, **changes, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    bundle, metrics = train_detector(config, out)
    path = bundle.save(out / "detector.pkl")
    click.echo(json.dumps(metrics, indent=2))
    click.echo(f"detector saved to {path}; scan images with: paperkits safety pip scan IMAGES... --detector {path}")


@group.command("scan")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--detector", "detector_path", type=click.Path(path_type=Path), required=True,
              help="A detector.pkl written by `paperkits safety pip train`.")
@click.option("--resize", is_flag=True, help="Resize images to the model's input size instead of refusing them.")
@click.option("--threshold", type=float, default=0.0, show_default=True,
              help="Flag when the score exceeds this (raise it to trade recall for fewer false alarms).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image instead of a table.")
@user_errors
def scan(images: tuple[Path, ...], detector_path: Path, resize: bool, threshold: float, as_json: bool) -> None:
    """Print a verdict and score per image; exit 1 if any image is flagged (2 if only errors occurred)."""
    if not images:
        raise DataError("no images given; usage: paperkits safety pip scan IMAGE [IMAGE...] --detector model.pkl")
    bundle = DetectorBundle.load(detector_path)
    flagged = errors = 0
    for result in bundle.scan(images, resize=resize, threshold=threshold):
        if result["verdict"] == "error":
            errors += 1
            click.echo(json.dumps(result) if as_json else f"{result['path']}\tERROR\t{result['error']}", err=not as_json)
            continue
        flagged += result["verdict"] == "adversarial"
        click.echo(json.dumps(result) if as_json else
                   f"{result['path']}\t{result['verdict'].upper()}\tscore={result['score']:+.4f}")
    click.echo(f"{flagged} flagged, {len(images) - flagged - errors} clean, {errors} unreadable", err=True)
    if flagged:
        sys.exit(1)
    if errors:
        sys.exit(2)



