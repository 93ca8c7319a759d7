"""The emotion *student*: frozen sentence features + a softmax head trained with focal loss (brief §2.1).

The paper fine-tunes GPT-2 on 5,082 LLM-labelled seeker utterances with focal loss (class imbalance) and then
labels every seeker utterance with a 9-way probability distribution. Here the encoder is frozen (MiniLM, or
TF-IDF as the fallback) and only a linear head is trained — cheap on a CPU, same loss and same output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from recsys_kit.ecr.labels import EMOTION_INDEX, EMOTIONS
from recsys_kit.ecr.text import TextFeaturizer
from shared.errors import DataError, TrainingDivergedError


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Softmax focal loss with soft targets: ``-Σ_c y_c (1 - p_c)^γ log p_c``, averaged over the batch.

    logits, targets: (B, C); each target row sums to 1 (multi-label annotations spread their mass).
    ``gamma = 0`` is plain cross-entropy.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    modulation = (1.0 - log_p.exp()).clamp_min(0.0) ** gamma
    return -(targets * modulation * log_p).sum(dim=-1).mean()


def label_matrix(annotations: Sequence[Mapping[str, float]]) -> np.ndarray:
    """(n, 9) row-normalised target matrix from ``{label: prob}`` annotations."""
    matrix = np.zeros((len(annotations), len(EMOTIONS)), dtype=np.float32)
    for i, annotation in enumerate(annotations):
        for label, prob in annotation.items():
            if label not in EMOTION_INDEX:
                raise DataError(f"unknown emotion label {label!r}; expected one of {EMOTIONS}")
            matrix[i, EMOTION_INDEX[label]] = float(prob)
        total = matrix[i].sum()
        if total <= 0:
            raise DataError(f"annotation {i} has no positive label probability")
        matrix[i] /= total
    return matrix


def recall_at_k(probs: np.ndarray, annotations: Sequence[Mapping[str, float]], k: int = 2) -> float:
    """Mean over utterances of |gold labels ∩ top-k predictions| / |gold labels| (the paper's Recall@2)."""
    top = np.argsort(-probs, axis=1)[:, :k]
    scores = []
    for row, annotation in zip(top, annotations):
        gold = {EMOTION_INDEX[label] for label in annotation}
        scores.append(len(gold & set(row.tolist())) / len(gold))
    return float(np.mean(scores)) if scores else float("nan")


class EmotionClassifier:
    """Featurizer + linear softmax head trained with focal loss; ``predict_proba`` gives the 9-way distribution."""

    def __init__(self, featurizer: TextFeaturizer, gamma: float = 2.0, epochs: int = 60, lr: float = 0.05,
                 weight_decay: float = 1e-4, batch_size: int = 256, seed: int = 0):
        self.featurizer = featurizer
        self.gamma = gamma
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, texts: Sequence[str], annotations: Sequence[Mapping[str, float]]) -> EmotionClassifier:
        """Fit the featurizer and the head on teacher/LLM annotations."""
        if len(texts) != len(annotations) or not texts:
            raise DataError(f"need as many annotations as texts (got {len(texts)} texts, {len(annotations)} labels)")
        self.featurizer.fit(texts)
        features = torch.from_numpy(self.featurizer.transform(texts))  # (n, dim)
        targets = torch.from_numpy(label_matrix(annotations))  # (n, 9)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):  # the head's init from the run's seed, not torch's global state
            torch.manual_seed(self.seed)
            self.head_ = nn.Linear(features.shape[1], len(EMOTIONS))
        optimizer = torch.optim.Adam(self.head_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.losses_ = []
        for _ in range(self.epochs):
            order = torch.randperm(len(texts), generator=generator)
            total = 0.0
            for start in range(0, len(texts), self.batch_size):
                index = order[start:start + self.batch_size]
                loss = focal_loss(self.head_(features[index]), targets[index], self.gamma)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError("emotion classifier loss is not finite; lower the learning rate")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(index)
            self.losses_.append(total / len(texts))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 9) softmax distribution over :data:`EMOTIONS`."""
        if not hasattr(self, "head_"):
            raise DataError("EmotionClassifier.predict_proba called before fit")
        if not texts:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        with torch.no_grad():
            logits = self.head_(torch.from_numpy(self.featurizer.transform(texts)))
        return torch.softmax(logits, dim=-1).numpy()

    def annotate(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Full sorted ``{label: prob}`` dicts, the format of ECR's released data."""
        out = []
        for row in self.predict_proba(texts):
            out.append({EMOTIONS[i]: float(row[i]) for i in np.argsort(-row)})
        return out
