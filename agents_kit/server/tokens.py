"""The one tokenisation of agent profiles, shared by the search backends (registry.py) and the store's FTS5 index.

Both must see exactly the same tokens, so the rule lives here, below both, and neither imports the other for it.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and the of to for in on with by or is are be as at from that this it who can i my".split())


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens without stop words; CamelCase names are split (``WikiAgent`` → wiki agent)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]
