"""`paperkits safety …`: the safety_kit command group; each paper's commands load lazily from its subpackage."""

from __future__ import annotations

import click

from shared.cli import LazyKitGroup

# command name -> "module:click object"; a paper adds its line here when it lands.
PAPER_COMMANDS: dict[str, str] = {
    "clickbait": "safety_kit.clickbait.cli:group",
    "pip": "safety_kit.pip.cli:group",
}


@click.group(name="safety", cls=LazyKitGroup, lazy_commands=PAPER_COMMANDS)
def group() -> None:
    """Multimodal safety: debiased clickbait detection, PIP adversarial-image detection for VLMs."""
