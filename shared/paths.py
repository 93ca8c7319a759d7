"""Where data, caches and results live.

Handbook/real datasets are found through one setting, the ``PAPERKITS_DATA`` environment variable; the
main job never needs it (every benchmark has an embedded default). Caches go to ``PAPERKITS_CACHE`` or the
user cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.errors import DataError

DATA_ENV = "PAPERKITS_DATA"
CACHE_ENV = "PAPERKITS_CACHE"
RESULTS_ENV = "PAPERKITS_RESULTS"


def project_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``) for an editable install."""
    return Path(__file__).resolve().parent.parent


def data_root() -> Path | None:
    """The folder named by ``PAPERKITS_DATA``, or ``None`` when the variable is unset or empty."""
    value = os.environ.get(DATA_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataError(f"{DATA_ENV}={value!r} is not a directory; point it at the datasets folder or unset it")
    return root


def has_data(relative: str | os.PathLike) -> bool:
    """True when ``PAPERKITS_DATA`` is set and contains ``relative``."""
    try:
        root = data_root()
    except DataError:
        return False
    return root is not None and (root / relative).exists()


def require_data(relative: str | os.PathLike) -> Path:
    """Resolve ``relative`` under ``PAPERKITS_DATA`` or raise a :class:`DataError` saying what to set."""
    root = data_root()
    if root is None:
        raise DataError(
            f"dataset '{relative}' needs the {DATA_ENV} environment variable: set it to the folder that "
            f"contains '{relative}' (e.g. export {DATA_ENV}=/path/to/data)"
        )
    path = root / relative
    if not path.exists():
        raise DataError(f"expected '{relative}' under {DATA_ENV}={root}, but {path} does not exist")
    return path


def cache_dir(*parts: str) -> Path:
    """A cache folder (created): ``$PAPERKITS_CACHE/<parts>`` or ``~/.cache/paperkits/<parts>``."""
    base = os.environ.get(CACHE_ENV, "").strip()
    root = Path(base).expanduser() if base else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "paperkits"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Where benchmark results go: ``$PAPERKITS_RESULTS`` or ``<project>/results``."""
    value = os.environ.get(RESULTS_ENV, "").strip()
    return Path(value).expanduser() if value else project_root() / "results"
