"""`paperkits llm …`: the llm_dynamics_kit command group; each paper's commands load lazily from its subpackage."""

from __future__ import annotations

import click

from shared.cli import LazyKitGroup

# command name -> "module:click object"; a paper adds its line here when it lands.
PAPER_COMMANDS: dict[str, str] = {}


@click.group(name="llm", cls=LazyKitGroup, lazy_commands=PAPER_COMMANDS)
def group() -> None:
    """LLM training dynamics: HMoE heterogeneous experts, SSD sparse–dense training + MoEfication, copying as grokking."""
