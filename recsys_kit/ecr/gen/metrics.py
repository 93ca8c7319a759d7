"""Offline proxies for ECR's subjective metrics (brief §8.1) — labelled as proxies wherever reported.

- emotion intensity: Σ lexicon strength of emotion words / number of words (``VALENCE``, 1..3);
- emotion-word rate: share of words found in the lexicon;
- KG-fact precision / hallucination rate: named KG entities mentioned in a response that are (not) one-hop
  neighbours of the recommended item;
- informativeness: number of distinct correct KG facts mentioned;
- lifelikeness proxy: first-person pronoun rate; Dist-n for diversity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from recsys_kit.ecr.emotion.teacher import VALENCE
from recsys_kit.ecr.kg import KnowledgeGraph

FIRST_PERSON = {"i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def emotion_intensity(text: str) -> float:
    """Σ lexicon strength of the words / number of words (0 for empty text)."""
    words = _words(text)
    return sum(VALENCE.get(w, 0) for w in words) / len(words) if words else 0.0


def emotion_word_rate(text: str) -> float:
    """Share of words that are emotion words."""
    words = _words(text)
    return sum(w in VALENCE for w in words) / len(words) if words else 0.0


def first_person_rate(text: str) -> float:
    """Share of first-person pronouns (a crude lifelikeness proxy)."""
    words = _words(text)
    return sum(w in FIRST_PERSON for w in words) / len(words) if words else 0.0


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams / all n-grams over a set of responses."""
    grams = [tuple(w[i:i + n]) for w in (_words(t) for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


class FactChecker:
    """Find named KG entities in a response and check them against the recommended item's neighbourhood."""

    def __init__(self, kg: KnowledgeGraph, min_chars: int = 4, exclude_items: bool = True):
        self.kg = kg
        items = set(kg.item_ids.tolist()) if exclude_items else set()
        self.names: dict[str, int] = {}
        for entity, name in kg.entity_names.items():
            key = name.lower().strip()
            if len(key) >= min_chars and entity not in items and key not in self.names:
                self.names[key] = entity
        self._pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(self.names, key=len, reverse=True))
                                   + r")\b") if self.names else None

    def check(self, text: str, item: int) -> dict[str, float]:
        """``mentioned``, ``correct``, ``precision`` (NaN when nothing is mentioned) and ``hallucinated``."""
        mentioned = set()
        if self._pattern is not None:
            mentioned = {self.names[m] for m in self._pattern.findall(text.lower())}
        neighbours = {t for _, t in self.kg.neighbours(item)}
        correct = mentioned & neighbours
        precision = len(correct) / len(mentioned) if mentioned else float("nan")
        return {"mentioned": float(len(mentioned)), "correct": float(len(correct)), "precision": precision,
                "hallucinated": float(len(mentioned) - len(correct))}


def response_metrics(texts: Sequence[str], items: Sequence[int], checker: FactChecker) -> dict[str, float]:
    """Mean offline metrics over responses for their recommended items."""
    checks = [checker.check(t, i) for t, i in zip(texts, items)]
    mentioned = sum(c["mentioned"] for c in checks)
    hallucinated = sum(c["hallucinated"] for c in checks)
    return {
        "emotion_intensity": float(np.mean([emotion_intensity(t) for t in texts])),
        "emotion_word_rate": float(np.mean([emotion_word_rate(t) for t in texts])),
        "first_person_rate": float(np.mean([first_person_rate(t) for t in texts])),
        "informativeness": float(np.mean([c["correct"] for c in checks])),
        "hallucination_rate": float(hallucinated / mentioned) if mentioned else 0.0,
        "fact_precision": float(1 - hallucinated / mentioned) if mentioned else float("nan"),
        "dist2": distinct_n(texts, 2),
        "length": float(np.mean([len(_words(t)) for t in texts])),
    }
