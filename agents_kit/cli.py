"""`paperkits agents …`: the agents_kit command group; each paper's commands load lazily from its subpackage."""

from __future__ import annotations

import click

from shared.cli import LazyKitGroup

# command name -> "module:click object"; a paper adds its line here when it lands.
PAPER_COMMANDS: dict[str, str] = {
    "server": "agents_kit.commands:server",
    "client": "agents_kit.commands:client",
    "schema": "agents_kit.commands:schema",
    "init-config": "agents_kit.commands:init_config",
}


@click.group(name="agents", cls=LazyKitGroup, lazy_commands=PAPER_COMMANDS)
def group() -> None:
    """Internet of Agents: IM-style agent server, protocol, teaming and conversation flow."""
