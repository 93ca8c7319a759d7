"""Measured CPU speed of dense vs sparse (MoEfied) inference (SSD brief §8.3).

Timings are interleaved (dense, then each sparse setting, repeated ``repeats`` times) so machine load hits all
settings alike; we report medians of tokens/s and the median of the per-repeat speed ratios. Two measurements:

* :func:`ffn_speed`: one FFN layer with synthetic weights (d, D = 4d), batch-1 decode (one token) and a
  batched prefill (``prefill_tokens`` tokens), for each path (gather / loop / grouped) and k/E.
* :func:`model_speed`: the whole kit model; decode = a one-token forward at batch 1 (the kit model has no KV
  cache, so this is the per-token cost of the FFN/projection/head work of a cached decoder step without
  attention over the cache), prefill = one sequence of ``prefill_tokens`` tokens.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from llm_dynamics_kit.model import Transformer
from llm_dynamics_kit.ssd.moefied import MoEfiedFFN, moefy, set_mode
from llm_dynamics_kit.ssd.sparse_infer import sparse_ffn


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def _summary(times: dict[str, list[float]], tokens: int, baseline: str = "dense") -> dict[str, dict[str, float]]:
    out = {}
    for name, values in times.items():
        ratios = [b / v for b, v in zip(times[baseline], values)]
        out[name] = {"tokens_per_s": tokens / statistics.median(values), "speedup": statistics.median(ratios)}
    return out


@torch.no_grad()
def ffn_speed(d_model: int = 512, hidden: int | None = None, n_experts: int = 16,
              fractions: Sequence[float] = (0.125, 0.25, 0.5), repeats: int = 30, prefill_tokens: int = 128,
              paths: Sequence[str] = ("gather", "loop", "grouped"), threads: int = 1, seed: int = 0) -> list[dict]:
    """FFN-only dense vs sparse tokens/s at each k/E and path (synthetic weights, contiguous experts)."""
    torch.set_num_threads(threads)
    hidden = hidden or 4 * d_model
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(hidden, d_model, generator=g) / d_model ** 0.5
    w_out_t = torch.randn(hidden, d_model, generator=g) / hidden ** 0.5  # W_outᵀ, (D, d)
    w_out = w_out_t.t().contiguous()
    m = hidden // n_experts
    blocks_in, blocks_out = w_in.view(n_experts, m, d_model), w_out_t.view(n_experts, m, d_model)
    rows = []
    for shape, n_tokens in (("decode", 1), ("prefill", prefill_tokens)):
        x = torch.randn(n_tokens, d_model, generator=g)
        fns: dict[str, Callable[[], Any]] = {"dense": lambda x=x: F.linear(F.relu(F.linear(x, w_in)), w_out)}
        for frac in fractions:
            k = max(1, round(frac * n_experts))
            experts = torch.stack([torch.randperm(n_experts, generator=g)[:k] for _ in range(n_tokens)])
            for path in paths:
                if shape == "decode" and path == "grouped" or shape == "prefill" and path != "grouped":
                    continue
                fns[f"{path}@{frac}"] = (lambda x=x, e=experts, p=path:
                                         sparse_ffn(x, blocks_in, blocks_out, e, F.relu, p))
        summary = _summary(_interleaved(fns, repeats), n_tokens)
        for name, values in summary.items():
            path, _, frac = name.partition("@")
            rows.append({"scope": "ffn", "shape": shape, "d_model": d_model, "hidden": hidden, "n_experts": n_experts,
                         "k_fraction": float(frac) if frac else 1.0, "path": path, **values})
    return rows


@torch.no_grad()
def model_speed(model: Transformer, fractions: Sequence[float] = (0.125, 0.25, 0.5), repeats: int = 20,
                prefill_tokens: int = 128, threads: int = 1, n_iter: int = 5, seed: int = 0) -> list[dict]:
    """Whole-model dense vs SMoE tokens/s: batch-1 one-token decode and a ``prefill_tokens`` prefill."""
    torch.set_num_threads(threads)
    model.eval()
    if not all(isinstance(f, MoEfiedFFN) for f in model.ffns):
        moefy(model, n_experts=model.config.ffn.n_experts, top_k=1, n_iter=n_iter, seed=seed)
    n_experts = model.ffns[0].n_experts
    g = torch.Generator().manual_seed(seed)
    rows = []
    prefill_tokens = min(prefill_tokens, model.config.max_seq_len)
    for shape, length in (("decode", 1), ("prefill", prefill_tokens)):
        x = torch.randint(0, model.config.vocab_size, (1, length), generator=g)

        def run(mode: str, k: int | None = None, x=x) -> None:
            set_mode(model, mode, top_k=k)
            model(x)

        fns: dict[str, Callable[[], Any]] = {"dense": lambda: run("dense")}
        for frac in fractions:
            k = max(1, round(frac * n_experts))
            fns[f"auto@{frac}"] = lambda k=k: run("sparse", k)
        summary = _summary(_interleaved(fns, repeats), length)
        for name, values in summary.items():
            path, _, frac = name.partition("@")
            rows.append({"scope": "model", "shape": shape, "d_model": model.config.d_model,
                         "hidden": model.config.ffn.hidden, "n_experts": n_experts,
                         "k_fraction": float(frac) if frac else 1.0, "path": path, **values})
    set_mode(model, "dense")
    return rows
