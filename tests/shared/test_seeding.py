import random

import numpy as np
import pytest

from shared.seeding import seed_everything


def draw():
    torch = pytest.importorskip("torch")
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_same_seed_same_draws_different_seed_differs():
    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert draw() != first


def test_rejects_bad_seed():
    with pytest.raises(ValueError):
        seed_everything(-1)
