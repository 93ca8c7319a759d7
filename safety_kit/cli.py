"""`paperkits safety …`: the safety_kit command group."""

from __future__ import annotations

import click

from shared.cli import KitGroup


@click.group(name="safety", cls=KitGroup)
def group() -> None:
    """Multimodal safety: debiased clickbait detection, PIP adversarial-image detection for VLMs."""
