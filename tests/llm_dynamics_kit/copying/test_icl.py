import math

import numpy as np
import pytest
import torch

from llm_dynamics_kit.copying.icl import icl_score
from shared.errors import DataError

V = 16


def late_learner(ids: torch.Tensor) -> torch.Tensor:
    """Uniform over the vocabulary in the first half of the window, certain of the next token (cur + 1) after."""
    b, t = ids.shape
    logits = torch.zeros(b, t, V)
    late = torch.arange(t) >= t // 2
    logits[:, late] = 50.0 * torch.nn.functional.one_hot((ids[:, late] + 1) % V, V).float()
    return logits


def test_icl_score_known_answer_and_errors():
    tokens = np.arange(2000) % V
    assert icl_score(late_learner, tokens, seq_len=64) == pytest.approx(-math.log(V), abs=1e-4)
    assert icl_score(lambda ids: torch.zeros(*ids.shape, V), tokens, seq_len=64) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError):
        icl_score(late_learner, tokens[:10], seq_len=64)
    with pytest.raises(DataError):
        icl_score(late_learner, tokens, seq_len=64, early=40, late=20)
