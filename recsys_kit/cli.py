"""`paperkits recsys …`: the recsys_kit command group; each paper's commands load lazily from its subpackage."""

from __future__ import annotations

import click

from shared.cli import LazyKitGroup

# command name -> "module:click object"; a paper adds its line here when it lands.
PAPER_COMMANDS: dict[str, str] = {
    "damrs": "recsys_kit.damrs.cli:group",
    "ecr": "recsys_kit.ecr.cli:group",
    "negsample-bench": "recsys_kit.negsampling.cli:negsample_bench",
    "negsample-samplers": "recsys_kit.negsampling.cli:negsample_samplers",
    "transition2": "recsys_kit.transition2.cli:group",
}


@click.group(name="recsys", cls=LazyKitGroup, lazy_commands=PAPER_COMMANDS)
def group() -> None:
    """Recommender systems: negative sampling zoo, DA-MRS, Transition², ECR (built on RecBole 1.2.1)."""
