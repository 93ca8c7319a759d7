"""`paperkits agents …`: the agents_kit command group."""

from __future__ import annotations

import click

from shared.cli import KitGroup


@click.group(name="agents", cls=KitGroup)
def group() -> None:
    """Internet of Agents: IM-style agent server, protocol, teaming and conversation flow."""
