"""`paperkits llm …`: the llm_dynamics_kit command group."""

from __future__ import annotations

import click

from shared.cli import KitGroup


@click.group(name="llm", cls=KitGroup)
def group() -> None:
    """LLM training dynamics: HMoE heterogeneous experts, SSD sparse–dense training + MoEfication, copying as grokking."""
