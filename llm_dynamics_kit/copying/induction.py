"""Induction-head scores per layer and head: prefix-matching attention × OV-circuit eigenvalue positivity.

Brief §2.3: ``I(L,H) = Ā(L,H) · EP(L,H)`` in [-1, 1].

- ``Ā`` (prefix matching, Olsson et al. 2022): on random sequences repeated twice, ``x_0…x_{s-1} x_0…x_{s-1}``,
  the mean attention from query ``s+i-1`` (holding ``x_{i-1}``) to key ``i`` (what followed ``x_{i-1}`` the first
  time), over ``i = 1 … s-1`` and the batch. A BOS token shifts every position by one.
- ``EP`` (Elhage et al. 2021, the plain "copying score"): ``Σλ / Σ|λ|`` over the eigenvalues of the full OV
  circuit ``W_U W_O W_V W_E`` (V × V). Its non-zero eigenvalues are those of the small d_head × d_head matrix
  ``W_V W_E W_U W_O`` (cyclic identity), computed in float64.

Also returned: the TransformerLens-style induction score ("mul": attention mass on every key that follows
an earlier occurrence of the query token, over all queries), the previous-token score (mean attention to
position t−1, the partner head an induction head needs in an earlier layer) and the induction loss (mean
next-token loss on the repeated half).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from llm_dynamics_kit.copying.adapters import as_adapter
from llm_dynamics_kit.copying.task import distinct_rows, token_pool
from shared.errors import ConfigError


@dataclass
class InductionScores:
    """Per (layer, head) scores, each an array (n_layers, n_heads)."""

    induction: np.ndarray  # Ā · EP, the paper's I(L,H)
    prefix_matching: np.ndarray  # Ā
    ov_positivity: np.ndarray  # EP (the plain OV copying score)
    prefix_matching_mul: np.ndarray  # TransformerLens detect_head("induction_head", error_measure="mul")
    previous_token: np.ndarray  # mean attention to the previous position
    induction_loss: float  # mean next-token loss on the repeated half (nats)
    half_len: int

    def per_layer_max(self) -> np.ndarray:
        """max over heads of I(L, h), one value per layer (the heat-map rows)."""
        return self.induction.max(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {k: (v.round(6).tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def repeated_random_tokens(half_len: int, n_sequences: int, pool: np.ndarray, seed: int = 0,
                           bos_id: int | None = None) -> torch.Tensor:
    """(n_sequences, [1 +] 2·half_len) ids: a random half drawn from ``pool``, then the same half again."""
    rng = np.random.default_rng(seed)
    half = rng.choice(np.asarray(pool, dtype=np.int64), size=(n_sequences, half_len))
    ids = np.concatenate([half, half], axis=1)
    if bos_id is not None:
        ids = np.concatenate([np.full((n_sequences, 1), bos_id), ids], axis=1)
    return torch.from_numpy(ids)


def prefix_matching_score(attention: torch.Tensor, half_len: int, offset: int = 0) -> torch.Tensor:
    """Ā per head from attention (B, H, T, T) on repeated sequences: mean of A[s+i−1, i], i = 1…s−1 -> (H,)."""
    s = half_len
    i = torch.arange(1, s)
    queries, keys = offset + s + i - 1, offset + i
    return attention[:, :, queries, keys].mean(dim=(0, 2))


def tl_induction_mul_score(attention: torch.Tensor, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """TransformerLens-style "mul" induction score per head -> (H,): attention mass on keys j with
    ``token[j-1] == token[query]`` (j < query), divided by the total mass, BOS query/keys excluded."""
    tokens = ids[:, offset:]  # (B, T')
    att = attention[:, :, offset:, offset:]  # (B, H, T', T')
    t = tokens.shape[1]
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]  # prev[j] = token[j-1]
    pattern = (prev[:, None, :] == tokens[:, :, None]) & torch.ones(t, t, dtype=torch.bool).tril(-1)  # (B, T', T')
    return (att * pattern[:, None]).sum(dim=(0, 2, 3)) / att.sum(dim=(0, 2, 3))


def previous_token_score(attention: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Mean attention from each query to the position just before it -> (H,)."""
    t = attention.shape[-1]
    q = torch.arange(offset + 1, t)
    return attention[:, :, q, q - 1].mean(dim=(0, 2))


def eigen_positivity(small_ov: torch.Tensor) -> torch.Tensor:
    """``Σλ / Σ|λ|`` of square matrices (..., n, n) -> (...,); 0 where every eigenvalue is 0."""
    eig = torch.linalg.eigvals(small_ov.double())
    denom = eig.abs().sum(-1)
    return torch.where(denom > 0, eig.sum(-1).real / denom.clamp_min(1e-300), torch.zeros_like(denom))


def ov_eigen_positivity(w_e: torch.Tensor, w_v: torch.Tensor, w_o: torch.Tensor, w_u: torch.Tensor) -> torch.Tensor:
    """EP per head of ``W_U W_O W_V W_E`` via the d_head × d_head matrix ``W_V W_E W_U W_O``.

    Shapes (column convention): ``w_e`` (d, V), ``w_v`` (H, D, d), ``w_o`` (H, d, D), ``w_u`` (V, d) -> (H,).
    """
    embed_unembed = w_e.double() @ w_u.double()  # (d, d): the V-sized product done once
    small = w_v.double() @ embed_unembed @ w_o.double()  # (H, D, D)
    return eigen_positivity(small)


def induction_scores(model: Any, *, half_len: int = 100, n_sequences: int = 64, seed: int = 0,
                     vocab_pool: np.ndarray | None = None, bos_id: int | None = None, fold_norms: bool = True,
                     batch_size: int = 16) -> InductionScores:
    """Every head's induction score ``I = Ā · EP`` (and its parts) for a native or HF causal LM.

    ``half_len`` (the paper's s = 100) is shortened to fit the model's context; ``fold_norms`` folds the
    layer's input-norm gain into W_V and the final-norm gain into W_U (TransformerLens' default, brief §2.3).
    """
    adapter = as_adapter(model)
    if adapter.n_layers == 0:
        raise ConfigError("induction scores need a model with attention layers (not a plain logits function)")
    offset = int(bos_id is not None)
    s = min(half_len, (adapter.max_len - offset) // 2)
    if s < 2:
        raise ConfigError(f"the model's context ({adapter.max_len}) is too short for repeated sequences")
    pool = vocab_pool if vocab_pool is not None else token_pool(adapter.vocab_size)
    ids = repeated_random_tokens(s, n_sequences, pool, seed, bos_id)
    n_l, n_h = adapter.n_layers, adapter.n_heads
    sums = {k: torch.zeros(n_l, n_h, dtype=torch.float64) for k in ("pm", "mul", "prev")}
    loss_total, loss_count = 0.0, 0
    with adapter.evaluating():
        for start in range(0, n_sequences, batch_size):
            chunk = ids[start:start + batch_size].to(adapter.device)
            weight = len(chunk) / n_sequences
            attentions = adapter.attention(chunk)
            for layer, att in enumerate(attentions):
                att = att.float().cpu()
                sums["pm"][layer] += weight * prefix_matching_score(att, s, offset).double()
                sums["mul"][layer] += weight * tl_induction_mul_score(att, chunk.cpu(), offset).double()
                sums["prev"][layer] += weight * previous_token_score(att, offset).double()
            logits = adapter.logits(chunk).float()
            second = slice(offset + s, offset + 2 * s - 1)  # positions predicting tokens of the repeated half
            targets = chunk[:, offset + s + 1:offset + 2 * s]
            loss = F.cross_entropy(logits[:, second].reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   reduction="sum")
            loss_total += float(loss)
            loss_count += targets.numel()
        ep = torch.stack([ov_eigen_positivity(**_ov(adapter.ov_weights(layer, fold_norms))) for layer in range(n_l)])
    pm = sums["pm"].numpy()
    return InductionScores(induction=pm * ep.numpy(), prefix_matching=pm, ov_positivity=ep.numpy(),
                           prefix_matching_mul=sums["mul"].numpy(), previous_token=sums["prev"].numpy(),
                           induction_loss=loss_total / max(loss_count, 1), half_len=s)


def _ov(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"w_e": weights["W_E"].detach().cpu(), "w_v": weights["W_V"].detach().cpu(),
            "w_o": weights["W_O"].detach().cpu(), "w_u": weights["W_U"].detach().cpu()}


def transformer_lens_induction_scores(hooked_model: Any, tokens: torch.Tensor) -> np.ndarray | None:
    """Cross-check: TransformerLens' ``detect_head(..., "induction_head")`` (n_layers, n_heads), or None when
    ``transformer_lens`` is not installed (it is an optional dependency, never required by the kit)."""
    try:
        from transformer_lens.head_detector import detect_head
    except ImportError:
        return None
    return detect_head(hooked_model, tokens, "induction_head", error_measure="mul").detach().cpu().numpy()


# ------------------------------------------------------------------ induction vs positional copying
#
# An induction head is a *content* rule (attend to what followed the earlier occurrence of the current token) and
# works at any repeat length and position; a fixed-offset copier (attend d positions back, learned when every
# training repeat has the same length d) matches it only at that one geometry. The paper's Ā uses one geometry
# (s = 100 from position 0), so a copier trained at s can read as a perfect induction head there. The probes below
# score every head at several (repeat length, lead-in) geometries and keep each one and the minimum: a head is an
# induction head only when it scores at all of them.


def default_probes(max_len: int, bos: bool = False, half_len: int = 100) -> list[tuple[int, int]]:
    """(repeat length s, random lead-in before the first copy) geometries that fit a ``max_len`` context.

    The paper's (s, 0) [s = min(100, context / 2)], plus two with other lengths and other start positions
    (≈ s/2 after a lead-in of ≈ s/3, ≈ s/4 after ≈ s/2): distinct copy distances, distinct absolute positions.
    Lengths are odd-shifted so that no probe length is a multiple of another (a copier at distance d also scores
    at d/2 or 2d when one half is periodic).
    """
    room = max_len - int(bos)
    s = min(half_len, room // 2)
    if s < 4:
        raise ConfigError(f"the model's context ({max_len}) is too short for induction probes")
    probes = [(s, 0), (max(2, s // 2 + 3), max(1, s // 3 + 1)), (max(2, s // 4 + 1), max(1, s // 2 + 5))]
    return [(length, lead) for length, lead in probes if lead + 2 * length <= room]


@dataclass
class ProbeScores:
    """Scores of every head at several repeat geometries, each probe's and their minimum."""

    probes: list[tuple[int, int]]  # (repeat length, lead-in)
    prefix_matching: np.ndarray  # (P, L, H) Ā at each probe
    induction: np.ndarray  # (P, L, H) Ā · EP at each probe
    repeat_acc: np.ndarray  # (P,) argmax accuracy on the scored tokens of the second copy (``copied_context``)
    repeat_loss: np.ndarray  # (P,) mean next-token loss there (nats)
    ov_positivity: np.ndarray  # (L, H)
    # (P,) accuracy predicting the copy's 2nd token, one copied token in context (the position that is ambiguous
    # when tokens recur by chance; reported whether or not ``copied_context`` scores it)
    repeat_acc_first: np.ndarray | None = None
    copied_context: int = 1

    @property
    def induction_min(self) -> np.ndarray:
        """(L, H): each head's worst induction score over the probes (the robust induction score)."""
        return self.induction.min(axis=0)

    @property
    def prefix_matching_min(self) -> np.ndarray:
        return self.prefix_matching.min(axis=0)

    def per_layer_max(self) -> np.ndarray:
        """max over heads of the robust score, one value per layer."""
        return self.induction_min.max(axis=1)

    def as_record(self) -> dict[str, Any]:
        """Flat JSON-serialisable fields for tracker records (the ``probe_`` keys)."""
        return {"probe_geometries": [list(p) for p in self.probes],
                "probe_induction_layer_max": self.induction.max(axis=2).round(5).tolist(),  # (P, L)
                "probe_prefix_matching_max": self.prefix_matching.max(axis=(1, 2)).round(5).tolist(),  # (P,)
                "induction_min": self.induction_min.round(5).tolist(),
                "induction_min_layer_max": self.per_layer_max().round(5).tolist(),
                "repeat_acc": self.repeat_acc.round(5).tolist(), "repeat_acc_min": float(self.repeat_acc.min()),
                "repeat_loss": self.repeat_loss.round(5).tolist(), "repeat_copied_context": self.copied_context,
                **({"repeat_acc_first": self.repeat_acc_first.round(5).tolist()}
                   if self.repeat_acc_first is not None else {})}


def probe_ids(length: int, lead: int, n_sequences: int, pool: np.ndarray, seed: int = 0,
              bos_id: int | None = None, distinct: bool = False) -> torch.Tensor:
    """(n, [1 +] lead + 2·length): ``lead`` random tokens, a random segment, the same segment again.

    ``distinct``: no token occurs twice in a sequence's lead-in + segment. With a small pool a token recurs
    often, and a one-token induction head (attend after each earlier occurrence of the current token, copy what
    followed) cannot tell which occurrence to follow: with 127 tokens its accuracy ceiling on a 9-token repeat
    after 21 tokens is 0.88 (simulated). Distinct tokens make that ceiling 1.
    """
    rng = np.random.default_rng([seed, length, lead])
    pool = np.asarray(pool, dtype=np.int64)
    if distinct:
        both = distinct_rows(rng, pool, n_sequences, lead + length, "a distinct-token probe (lead-in + length)")
        lead_in, half = both[:, :lead], both[:, lead:]
    else:
        lead_in = rng.choice(pool, size=(n_sequences, lead))
        half = rng.choice(pool, size=(n_sequences, length))
    ids = np.concatenate([lead_in, half, half], axis=1)
    if bos_id is not None:
        ids = np.concatenate([np.full((n_sequences, 1), bos_id), ids], axis=1)
    return torch.from_numpy(ids)


def probe_scores(model: Any, probes: list[tuple[int, int]] | None = None, *, n_sequences: int = 32, seed: int = 0,
                 vocab_pool: np.ndarray | None = None, bos_id: int | None = None, fold_norms: bool = True,
                 batch_size: int = 16, ov_positivity: np.ndarray | None = None,
                 distinct: bool = False, copied_context: int = 1) -> ProbeScores:
    """Ā, Ā·EP, and the copy accuracy/loss on the repeated half, at each (repeat length, lead-in) probe
    (``distinct``: probe tokens never recur within a sequence, see :func:`probe_ids`).

    ``copied_context``: a copy token is scored once at least this many tokens of the copy precede it (1: tokens
    2 … s, the default; the copy's first token is never predictable). 2 skips the 2nd token, predicted from one
    matching token: for a model trained where tokens also recur by chance, one match is genuinely ambiguous (it
    rightly waits for a second), so that position measures its prior, not whether it copies. The accuracy at
    that position is always reported (``repeat_acc_first``).

    ``probes`` default to :func:`default_probes` for the model's context. Pass ``ov_positivity`` (L, H) when
    it is already computed (it does not depend on the probe).
    """
    adapter = as_adapter(model)
    if adapter.n_layers == 0:
        raise ConfigError("induction probes need a model with attention layers (not a plain logits function)")
    offset = int(bos_id is not None)
    probes = [tuple(map(int, p)) for p in (probes or default_probes(adapter.max_len, bos_id is not None))]
    for length, lead in probes:
        if length < 2 or lead < 0 or offset + lead + 2 * length > adapter.max_len:
            raise ConfigError(f"probe (length {length}, lead-in {lead}) needs {offset + lead + 2 * length} tokens; "
                              f"the model's context is {adapter.max_len} (length >= 2, lead-in >= 0)")
    if not 1 <= copied_context < min(length for length, _ in probes):
        raise ConfigError(f"copied_context must be >= 1 and leave a scored token at the shortest probe "
                          f"(length {min(length for length, _ in probes)}), got {copied_context}")
    pool = vocab_pool if vocab_pool is not None else token_pool(adapter.vocab_size)
    n_l, n_h = adapter.n_layers, adapter.n_heads
    pm = np.zeros((len(probes), n_l, n_h))
    acc, losses, first = np.zeros(len(probes)), np.zeros(len(probes)), np.zeros(len(probes))
    with adapter.evaluating():
        if ov_positivity is None:
            ov_positivity = torch.stack([ov_eigen_positivity(**_ov(adapter.ov_weights(layer, fold_norms)))
                                         for layer in range(n_l)]).numpy()
        for p, (length, lead) in enumerate(probes):
            ids = probe_ids(length, lead, n_sequences, pool, seed, bos_id, distinct=distinct)
            start = offset + lead
            hits = total = first_hits = 0
            loss_sum = 0.0
            for b in range(0, n_sequences, batch_size):
                chunk = ids[b:b + batch_size].to(adapter.device)
                weight = len(chunk) / n_sequences
                for layer, att in enumerate(adapter.attention(chunk)):
                    pm[p, layer] += weight * prefix_matching_score(att.float().cpu(), length, start).double().numpy()
                logits = adapter.logits(chunk).float()
                # the logits at copy position j (0-based) predict copy token j + 1, with j + 1 copied tokens seen
                copy = start + length
                pred = logits[:, copy + copied_context - 1:copy + length - 1]
                target = chunk[:, copy + copied_context:copy + length]
                hits += int((pred.argmax(-1) == target).sum())
                first_hits += int((logits[:, copy].argmax(-1) == chunk[:, copy + 1]).sum())
                total += target.numel()
                loss_sum += float(F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1),
                                                  reduction="sum"))
            acc[p], losses[p] = hits / max(total, 1), loss_sum / max(total, 1)
            first[p] = first_hits / n_sequences
    ep = np.asarray(ov_positivity, dtype=float)
    return ProbeScores(probes=probes, prefix_matching=pm, induction=pm * ep[None], repeat_acc=acc,
                       repeat_loss=losses, ov_positivity=ep, repeat_acc_first=first, copied_context=copied_context)
