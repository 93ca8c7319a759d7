"""A planted two-difficulty language for HMoE's positive and negative controls.

The stream is a sequence of independent segments (nothing predicts which segment comes next):

* **hard** segment ``a b v``: ``a`` from a set A, ``b`` from a set B, then ``v = table[a, b]`` from a value set:
  the position of ``b`` must output a *random function of the token pair* — ``|A|·|B|`` associations that only
  FFN capacity can store (an embedding or bigram can not: ``v`` depends on both tokens; attention only brings
  ``a`` to ``b``'s position). These positions are labelled ``HARD``.
* **easy** segment: a run ``e, e+1, e+2, …`` (mod the size of the easy set) of ``easy_len`` tokens: every next
  token is the current one plus one — a bigram the embeddings solve with almost no FFN. Labelled ``EASY``.

Positions whose target starts a new segment (and the ``a`` position, whose target ``b`` is uniform) are
``OTHER``: unpredictable, excluded from the per-class loss and routing.

``uniform=True`` is the negative control: easy segments are replaced by a second pair-lookup table of the
same size (class ``EASY`` is then just as hard as ``HARD``), so a router has no reason to prefer one class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.errors import ConfigError

OTHER, EASY, HARD = -1, 0, 1
CLASS_NAMES = {EASY: "easy", HARD: "hard"}


@dataclass
class PlantedLanguage:
    """Sizes of the planted language; token ids: easy set, then A, B, values (and A', B' when uniform)."""

    n_easy: int = 16
    n_a: int = 16
    n_b: int = 16
    n_values: int = 32
    easy_len: int = 4
    hard_fraction: float = 0.5  # share of segments that are hard (by count)
    uniform: bool = False  # negative control: both classes are pair lookups of the same size
    seed: int = 0  # the lookup tables (the stream has its own seed)

    def __post_init__(self) -> None:
        if min(self.n_easy, self.n_a, self.n_b, self.n_values) < 2 or self.easy_len < 2:
            raise ConfigError("planted language: every token set needs >= 2 tokens and easy_len >= 2")
        if not 0.0 < self.hard_fraction < 1.0:
            raise ConfigError(f"planted language: hard_fraction must be in (0, 1), got {self.hard_fraction}")

    @property
    def vocab_size(self) -> int:
        extra = self.n_a + self.n_b if self.uniform else 0
        return self.n_easy + self.n_a + self.n_b + self.n_values + extra

    def _offsets(self) -> dict[str, int]:
        a0 = self.n_easy
        b0 = a0 + self.n_a
        v0 = b0 + self.n_b
        a2 = v0 + self.n_values
        return {"a": a0, "b": b0, "v": v0, "a2": a2, "b2": a2 + self.n_a}

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The two random (|A|, |B|) value tables (the second is used only when ``uniform``)."""
        rng = np.random.default_rng(self.seed)
        return (rng.integers(0, self.n_values, (self.n_a, self.n_b)),
                rng.integers(0, self.n_values, (self.n_a, self.n_b)))

    def generate(self, n_tokens: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, labels)`` of length ``n_tokens``; ``labels[t]`` is the class of predicting ``tokens[t+1]``."""
        if n_tokens < 8:
            raise ConfigError(f"planted language: n_tokens must be >= 8, got {n_tokens}")
        off = self._offsets()
        table, table2 = self.tables()
        rng = np.random.default_rng(seed)
        tokens: list[int] = []
        labels: list[int] = []
        while len(tokens) < n_tokens:
            if rng.random() < self.hard_fraction:
                a, b = int(rng.integers(self.n_a)), int(rng.integers(self.n_b))
                tokens += [off["a"] + a, off["b"] + b, off["v"] + int(table[a, b])]
                labels += [OTHER, HARD, OTHER]
            elif self.uniform:  # the "easy" class is a second, equally large lookup
                a, b = int(rng.integers(self.n_a)), int(rng.integers(self.n_b))
                tokens += [off["a2"] + a, off["b2"] + b, off["v"] + int(table2[a, b])]
                labels += [OTHER, EASY, OTHER]
            else:
                start = int(rng.integers(self.n_easy))
                tokens += [(start + i) % self.n_easy for i in range(self.easy_len)]
                labels += [EASY] * (self.easy_len - 1) + [OTHER]
        return np.asarray(tokens[:n_tokens], dtype=np.int64), np.asarray(labels[:n_tokens], dtype=np.int64)


def class_loss(model, tokens: np.ndarray, labels: np.ndarray, seq_len: int, batch_size: int = 16,
               max_batches: int = 8) -> dict[str, float]:
    """Mean next-token cross-entropy (nats) per class over fixed validation windows (``OTHER`` excluded)."""
    import torch
    import torch.nn.functional as F

    from llm_dynamics_kit.data import eval_batches

    sums = {c: 0.0 for c in CLASS_NAMES}
    counts = {c: 0 for c in CLASS_NAMES}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for (x, y), (lab, _) in zip(eval_batches(tokens, seq_len, batch_size, max_batches),
                                    eval_batches(labels, seq_len, batch_size, max_batches)):
            logits = model(torch.from_numpy(x).to(device)).logits
            ce = F.cross_entropy(logits.flatten(0, 1).float(), torch.from_numpy(y).to(device).flatten(),
                                 reduction="none").cpu().numpy()
            lab = lab.reshape(-1)
            for c in CLASS_NAMES:
                sums[c] += float(ce[lab == c].sum())
                counts[c] += int((lab == c).sum())
    model.train(was_training)
    return {CLASS_NAMES[c]: sums[c] / max(counts[c], 1) for c in CLASS_NAMES}
