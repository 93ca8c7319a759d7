"""The one progress-bar helper (tqdm), so every long loop looks and can be silenced the same way."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

PROGRESS_ENV = "PAPERKITS_PROGRESS"


def _disabled() -> bool | None:
    """``PAPERKITS_PROGRESS=0`` silences bars, ``=1`` forces them; unset shows them only on a terminal."""
    value = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return True
    if value in {"1", "true", "yes", "on"}:
        return False
    return None  # tqdm: disable when not attached to a TTY


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = False, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` (or count manually with ``.update``) in a progress bar."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=_disabled(),
                dynamic_ncols=True, **kwargs)
