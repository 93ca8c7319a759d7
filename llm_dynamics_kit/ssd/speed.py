"""Measured CPU speed of dense vs sparse (MoEfied) inference (SSD brief §8.3).

Timings are interleaved (dense, then each sparse setting, repeated ``repeats`` times) so machine load hits all
settings alike; we report medians of tokens/s and the median of the per-repeat speed ratios. Two measurements:

* :func:`ffn_speed`: one FFN layer with synthetic weights (d, D = 4d), batch-1 decode (one token) and a
  batched prefill (``prefill_tokens`` tokens), for each path (gather / loop / grouped) and k/E.
* :func:`model_speed`: the whole kit model; decode = a one-token forward at batch 1 with no context (the
  FFN/projection/head work of a decode step without attention over a cache), prefill = one sequence of
  ``prefill_tokens`` tokens.
* :func:`decode_speed` (issue 25): whole-model batch-1 decode against a KV cache of ``context`` tokens — the
  step a served model repeats — dense vs sparse at each k/E, with its target, and :func:`decode_profile`, where
  a decode step's time goes (FFN / attention / head / overhead).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from llm_dynamics_kit.model import KVCache, Transformer
from llm_dynamics_kit.ssd.moefied import MoEfiedFFN, moefy, set_mode
from llm_dynamics_kit.ssd.sparse_infer import sparse_ffn
from llm_dynamics_kit.timing import interleaved


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
        summary = _summary(interleaved(fns, repeats), n_tokens)
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
        summary = _summary(interleaved(fns, repeats), length)
        for name, values in summary.items():
            path, _, frac = name.partition("@")
            rows.append({"scope": "model", "shape": shape, "d_model": model.config.d_model,
                         "hidden": model.config.ffn.hidden, "n_experts": n_experts,
                         "k_fraction": float(frac) if frac else 1.0, "path": path, **values})
    set_mode(model, "dense")
    return rows


DECODE_TARGETS = {0.25: 1.5, 0.125: 1.8}  # issue 25: whole-model batch-1 cached decode speed-up over dense


def _cached_step(model: Transformer, context: int, seed: int) -> tuple[Callable[[], Any], KVCache]:
    """A function that runs one batch-1 decode step against a ``context``-token cache (restored after each)."""
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, model.config.vocab_size, (1, context), generator=g)
    token = torch.randint(0, model.config.vocab_size, (1, 1), generator=g)
    cache = KVCache()
    model(prompt, cache=cache)  # the cache is the same for every mode: attention does not depend on the FFN

    def step() -> None:
        model(token, cache=cache)
        cache.crop(context)

    return step, cache


@torch.no_grad()
def decode_speed(model: Transformer, fractions: Sequence[float] = (0.125, 0.25), context: int = 128,
                 repeats: int = 30, threads: int = 1, n_iter: int = 5, seed: int = 0) -> list[dict]:
    """Whole-model batch-1 decode tokens/s against a KV cache of ``context`` tokens: dense vs sparse at each k/E.

    Interleaved timings (dense, then each k/E, ``repeats`` times); one row per setting with the median speed-up,
    its target (:data:`DECODE_TARGETS`) and whether it is met, and the cache size. A dense model is MoEfied first
    (random weights: the cost depends on shapes and k only).
    """
    torch.set_num_threads(threads)
    model.eval()
    if not all(isinstance(f, MoEfiedFFN) for f in model.ffns):
        moefy(model, n_experts=model.config.ffn.n_experts, top_k=1, n_iter=n_iter, seed=seed)
    n_experts = model.ffns[0].n_experts
    context = min(context, model.config.max_seq_len - 1)
    step, cache = _cached_step(model, context, seed)

    def run(mode: str, k: int | None = None) -> None:
        set_mode(model, mode, top_k=k)
        step()

    fns: dict[str, Callable[[], Any]] = {"dense": lambda: run("dense")}
    for frac in fractions:
        fns[f"sparse@{frac}"] = lambda k=max(1, round(frac * n_experts)): run("sparse", k)
    summary = _summary(interleaved(fns, repeats), 1)
    rows = []
    for name, values in summary.items():
        path, _, frac = name.partition("@")
        target = DECODE_TARGETS.get(float(frac)) if frac else None
        rows.append({"scope": "model", "shape": "cached_decode", "d_model": model.config.d_model,
                     "hidden": model.config.ffn.hidden, "n_experts": n_experts, "n_layers": model.config.n_layers,
                     "vocab_size": model.config.vocab_size, "k_fraction": float(frac) if frac else 1.0,
                     "path": path, "threads": threads, "context": context, "cache_mb": cache.nbytes() / 2**20,
                     "target": target, "target_met": None if target is None else bool(values["speedup"] >= target),
                     **values})
    set_mode(model, "dense")
    return rows


@torch.no_grad()
def decode_profile(model: Transformer, fractions: Sequence[float] = (0.25,), context: int = 128, steps: int = 20,
                   threads: int = 1, seed: int = 0) -> list[dict]:
    """Where a batch-1 cached decode step's time goes: FFN, attention (projections + cache), head (final norm +
    LM head) and overhead (embedding, norms, residuals, Python) = wall time − the three; ms per step (median).

    Timed with forward hooks on the modules (their own cost lands in ``overhead``); run it apart from
    :func:`decode_speed`, whose timings carry no hooks. The model must already be MoEfied.
    """
    torch.set_num_threads(threads)
    model.eval()
    n_experts = model.ffns[0].n_experts
    context = min(context, model.config.max_seq_len - 1)
    step, _ = _cached_step(model, context, seed)
    parts = {"ffn": [b.ffn for b in model.blocks], "attention": [b.attn for b in model.blocks],
             "head": [model.norm, model.lm_head]}
    spent = dict.fromkeys(parts, 0.0)
    handles = []
    for part, modules in parts.items():
        for module in modules:
            def pre(_m, _i, part=part, module=module) -> None:
                module._t0 = time.perf_counter()

            def post(_m, _i, _o, part=part, module=module) -> None:
                spent[part] += time.perf_counter() - module._t0

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    rows = []
    try:
        for mode, frac in [("dense", 1.0)] + [("sparse", f) for f in fractions]:
            set_mode(model, mode, top_k=max(1, round(frac * n_experts)) if mode == "sparse" else None)
            for _ in range(2):
                step()
            per_step: dict[str, list[float]] = {name: [] for name in (*parts, "total")}
            for _ in range(steps):
                for name in spent:
                    spent[name] = 0.0
                start = time.perf_counter()
                step()
                per_step["total"].append(time.perf_counter() - start)
                for name in parts:
                    per_step[name].append(spent[name])
            ms = {f"{name}_ms": 1e3 * statistics.median(v) for name, v in per_step.items()}
            ms["overhead_ms"] = ms["total_ms"] - ms["ffn_ms"] - ms["attention_ms"] - ms["head_ms"]
            rows.append({"scope": "decode_profile", "mode": mode, "k_fraction": frac, "threads": threads,
                         "d_model": model.config.d_model, "n_layers": model.config.n_layers, "context": context,
                         **ms})
    finally:
        for handle in handles:
            handle.remove()
        set_mode(model, "dense")
    return rows
