"""Copy accuracy: does the model, given ``context + prefix_i``, greedily reproduce what followed ``prefix_i``?

One forward pass per query replaces the greedy generation loop exactly (brief §8.1): greedy decoding
emits gold token k iff it emitted gold tokens 1…k−1 (so its input equals the teacher-forced input) and the
argmax there is gold token k. Hence "greedy reproduces the whole continuation" ⟺ "with the gold
continuation appended, the argmax at every answer position is the gold token". :func:`greedy_copy_accuracy`
runs real generation for cross-checks (tests prove the two agree query by query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from llm_dynamics_kit.copying.adapters import as_adapter
from llm_dynamics_kit.copying.task import CopyTask, fit_to_context, make_copy_task, token_pool
from shared.errors import ConfigError
from shared.progress import progress


@dataclass
class CopyResult:
    """Copy-task scores: exact match (the paper's metric) and its continuous companions."""

    exact_match: float  # share of queries whose whole continuation is reproduced (mean over samples × positions)
    token_accuracy: float  # share of answer tokens that are the argmax under teacher forcing
    gold_logprob: float  # mean over queries of log p(gold continuation | prompt), nats
    per_position: dict[int, float]  # query position i (1-based) -> exact match
    per_query: np.ndarray = field(repr=False)  # (n_samples, n_positions) bool
    n_queries: int = 0

    def as_row(self, prefix: str = "copy") -> dict[str, float]:
        """Flat metrics for logs / result rows."""
        row = {f"{prefix}_acc": self.exact_match, f"{prefix}_token_acc": self.token_accuracy,
               f"{prefix}_gold_logprob": self.gold_logprob}
        row.update({f"{prefix}_acc_pos{p}": v for p, v in self.per_position.items()})
        return row


def default_task(model: Any, n_samples: int = 500, seed: int = 0, vocab_pool: np.ndarray | None = None,
                 bos_id: int | None = None, **kwargs: Any) -> CopyTask:
    """The paper's task scaled to the model's context (≤ 50 sequences of 12 + 6 random tokens)."""
    adapter = as_adapter(model)
    pool = vocab_pool if vocab_pool is not None else token_pool(adapter.vocab_size)
    if "n_seqs" not in kwargs:
        kwargs["n_seqs"] = fit_to_context(adapter.max_len, kwargs.get("prefix_len", 12), kwargs.get("suffix_len", 6),
                                          kwargs.get("mid_len_range", (0, 0))[1], bos=bos_id is not None)
    return make_copy_task(pool, n_samples=n_samples, seed=seed, bos_id=bos_id, **kwargs)


def _batches(task: CopyTask, batch_size: int):
    queries = task.queries()
    for start in range(0, len(queries), batch_size):
        yield queries[start:start + batch_size]


def copy_accuracy(model: Any, task: CopyTask | None = None, *, n_samples: int = 500, seed: int = 0,
                  vocab_pool: np.ndarray | None = None, batch_size: int = 32, show_progress: bool = False,
                  **task_kwargs: Any) -> CopyResult:
    """The paper's copy accuracy with one teacher-forced forward per query (exactly equal to greedy decoding).

    ``task`` is a fixed :class:`CopyTask` (pass the same one to every checkpoint); without it the default
    task for the model's context is built from ``n_samples``, ``seed``, ``vocab_pool`` and ``task_kwargs``.
    """
    adapter = as_adapter(model)
    task = task or default_task(adapter, n_samples=n_samples, seed=seed, vocab_pool=vocab_pool, **task_kwargs)
    if task.max_query_length() > adapter.max_len:
        raise ConfigError(f"copy queries need {task.max_query_length()} tokens but the model's context is "
                          f"{adapter.max_len}; build the task with fewer sequences (fit_to_context)")
    exact, token_hits, token_total, logprobs = [], 0, 0, []
    batches = _batches(task, batch_size)
    if show_progress:
        batches = progress(batches, total=-(-len(task.queries()) // batch_size), desc="copy eval", unit="batch")
    with adapter.evaluating():
        for batch in batches:
            # right padding is exact under the causal mask: padded positions come after every scored one
            length = max(len(p) + len(g) - 1 for _, _, p, g in batch)
            ids = torch.zeros(len(batch), length, dtype=torch.long)
            for row, (_, _, prompt, gold) in enumerate(batch):
                seq = np.concatenate([prompt, gold[:-1]])
                ids[row, :len(seq)] = torch.from_numpy(seq)
            logp = adapter.logits(ids.to(adapter.device)).float().log_softmax(-1).cpu()  # (B, T, V)
            for row, (_, _, prompt, gold) in enumerate(batch):
                at = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(gold))  # positions predicting gold
                scores = logp[row, at]  # (K, V)
                target = torch.from_numpy(gold)
                hits = scores.argmax(-1) == target
                exact.append(bool(hits.all()))
                token_hits += int(hits.sum())
                token_total += len(gold)
                logprobs.append(float(scores.gather(1, target[:, None]).sum()))
    per_query = np.array(exact, dtype=bool).reshape(task.n_samples, len(task.query_positions))
    per_position = {p: float(per_query[:, j].mean()) for j, p in enumerate(task.query_positions)}
    return CopyResult(exact_match=float(per_query.mean()), token_accuracy=token_hits / max(token_total, 1),
                      gold_logprob=float(np.mean(logprobs)), per_position=per_position, per_query=per_query,
                      n_queries=per_query.size)


def greedy_copy_accuracy(model: Any, task: CopyTask) -> CopyResult:
    """Copy accuracy by real greedy generation (``generate``), one query at a time: the slow reference."""
    adapter = as_adapter(model)
    raw = adapter.model
    exact, token_hits, token_total = [], 0, 0
    with adapter.evaluating():
        for _, _, prompt, gold in task.queries():
            ids = torch.from_numpy(prompt)[None].to(adapter.device)
            if raw is not None and hasattr(raw, "generate") and hasattr(raw, "config") \
                    and hasattr(raw.config, "model_type"):  # HF: its own generation loop
                out = raw.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(gold),
                                   do_sample=False, pad_token_id=0)
            elif raw is not None and hasattr(raw, "generate"):  # the kit's Transformer
                out = raw.generate(ids, len(gold), temperature=0)
            else:
                out = ids
                for _ in range(len(gold)):
                    out = torch.cat([out, adapter.logits(out)[:, -1:].argmax(-1)], dim=1)
            generated = out[0, len(prompt):].cpu().numpy()
            hits = generated == gold
            exact.append(bool(hits.all()))
            token_hits += int(hits.sum())
            token_total += len(gold)
    per_query = np.array(exact, dtype=bool).reshape(task.n_samples, len(task.query_positions))
    return CopyResult(exact_match=float(per_query.mean()), token_accuracy=token_hits / max(token_total, 1),
                      gold_logprob=float("nan"),
                      per_position={p: float(per_query[:, j].mean()) for j, p in enumerate(task.query_positions)},
                      per_query=per_query, n_queries=per_query.size)


def one_token_induction_ceiling(task: CopyTask) -> float:
    """Exact match of an ideal *single-token* induction copier (emit what followed the last earlier occurrence
    of the current token), the reference for models that match one token back rather than the whole prefix.

    With a small vocabulary, query tokens recur inside the context, so this copier fails on some queries
    (brief §8.3 note); a full prefix-matching copier scores 1.0.
    """
    hits = []
    for _, _, prompt, gold in task.queries():
        seq = list(prompt)
        ok = True
        for want in gold:
            last = seq[-1]
            earlier = [j for j in range(len(seq) - 1) if seq[j] == last]
            guess = seq[earlier[-1] + 1] if earlier else -1
            if guess != want:
                ok = False
                break
            seq.append(guess)
        hits.append(ok)
    return float(np.mean(hits))
