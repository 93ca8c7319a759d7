"""`paperkits recsys …`: the recsys_kit command group."""

from __future__ import annotations

import click

from shared.cli import KitGroup


@click.group(name="recsys", cls=KitGroup)
def group() -> None:
    """Recommender systems: negative sampling zoo, DA-MRS, Transition², ECR (built on RecBole 1.2.1)."""
