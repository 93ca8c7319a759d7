"""Test-wide settings: offline model loading, and the one data setting (PAPERKITS_DATA).

When the handbook folder ``../shared/data`` sits beside the project and ``PAPERKITS_DATA`` is unset, tests
use it. Tests that need real data ask for the ``handbook_data`` fixture and are skipped (with the reason)
when it is absent, so the suite still runs for a user without the handbook.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PAPERKITS_PROGRESS", "0")

_HANDBOOK = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("PAPERKITS_DATA") and _HANDBOOK.is_dir():
    os.environ["PAPERKITS_DATA"] = str(_HANDBOOK)


@pytest.fixture
def handbook_data() -> Path:
    """The real-dataset folder (``PAPERKITS_DATA``); skips the test when it is not available."""
    value = os.environ.get("PAPERKITS_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("PAPERKITS_DATA is not set (the handbook datasets are not available)")
    return Path(value)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point PAPERKITS_CACHE at a fresh folder so tests never share or pollute a user cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PAPERKITS_CACHE", str(cache))
    return cache
