"""Olsson et al.'s in-context-learning score: loss late in the context minus loss early in it (brief §2.4, §8.4).

The paper's discussion uses it (loss at token 500 − loss at token 50, ≈ −0.5 nats after ≈ 4000 steps) to
argue that in-context ability on the training distribution saturates long before the copy jump. For
shorter contexts the two positions are scaled (default: ``T // 10`` and ``T − 1``, i.e. 50 and 500 of 512).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from llm_dynamics_kit.copying.adapters import as_adapter
from shared.errors import DataError


def icl_score(model: Any, tokens: np.ndarray, seq_len: int | None = None, early: int | None = None,
              late: int | None = None, n_windows: int = 64, batch_size: int = 16) -> float:
    """Mean next-token loss at position ``late`` minus at ``early`` over fixed windows of ``tokens`` (nats;
    negative = later tokens are predicted better thanks to the context)."""
    adapter = as_adapter(model)
    seq_len = seq_len or adapter.max_len
    early = seq_len // 10 if early is None else early
    late = seq_len - 1 if late is None else late
    if not 0 <= early < late < seq_len:
        raise DataError(f"ICL positions must satisfy 0 <= early < late < seq_len, got {early}, {late}, {seq_len}")
    n = min(n_windows, (len(tokens) - 1) // seq_len)
    if n < 1:
        raise DataError(f"{len(tokens)} tokens are too few for one {seq_len}-token ICL window")
    windows = np.stack([np.asarray(tokens[i * seq_len:(i + 1) * seq_len + 1], dtype=np.int64) for i in range(n)])
    diffs = []
    with adapter.evaluating():
        for start in range(0, n, batch_size):
            chunk = torch.from_numpy(windows[start:start + batch_size]).to(adapter.device)  # (B, T+1)
            logits = adapter.logits(chunk[:, :-1]).float()  # (B, T, V)
            at = torch.tensor([early, late], device=chunk.device)
            loss = F.cross_entropy(logits[:, at].reshape(-1, logits.shape[-1]), chunk[:, 1:][:, at].reshape(-1),
                                   reduction="none").view(-1, 2)  # (B, 2)
            diffs.append((loss[:, 1] - loss[:, 0]).cpu())
    return float(torch.cat(diffs).mean())
