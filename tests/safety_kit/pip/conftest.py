"""The tiny VLM shared by the PIP tests: the quick profile's model, trained once into the user cache."""

from __future__ import annotations

import pytest
import torch

from safety_kit.pip import scenes as sc
from safety_kit.pip.adapters import TinyVLMAdapter
from safety_kit.pip.bench import QUICK_VLM
from safety_kit.pip.experiment import make_task_set
from safety_kit.pip.tiny_vlm import pretrained_tiny_vlm


@pytest.fixture(scope="session")
def tiny_vlm():
    """(model, info) of the quick-profile tiny VLM (cached in shared.paths.cache_dir after the first run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield pretrained_tiny_vlm(QUICK_VLM, show_progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def adapter(tiny_vlm):
    return TinyVLMAdapter(tiny_vlm[0])


@pytest.fixture(scope="session")
def task_set(tiny_vlm):
    return make_task_set(tiny_vlm[0], 24, seed=5)


PROBE = sc.DEFAULT_PROBES[0]
