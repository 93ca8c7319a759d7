"""Hand-crafted linguistic cues of bait language (brief §2.1, "linguistic" row), pure Python.

The cue list is a reconstruction [recon]: the review names "hand-crafted properties incl. disparities" but its
list is cut off, so we take the standard clickbait cues (length, numerals, 2nd person, forward references,
hyperbole, punctuation, casing, sentiment, readability) plus headline–description disparities.
"""

from __future__ import annotations

import math
import re

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from safety_kit.features.text import as_texts

SECOND_PERSON = {"you", "your", "you're", "yours", "yourself", "u", "ur", "you'll", "you've", "you'd"}
FORWARD_REFERENCE = {"this", "these", "here", "here's", "that", "those", "what", "why", "how", "which", "who"}
HYPERBOLE = {"amazing", "incredible", "unbelievable", "shocking", "insane", "epic", "awesome", "best", "worst",
             "ever", "literally", "totally", "absolutely", "genius", "perfect", "mind", "blown", "stunning",
             "hilarious", "adorable", "crazy", "ultimate", "must", "secret", "secrets", "actually", "really",
             "omg", "wtf", "lol", "cutest", "weirdest", "greatest"}
CURIOSITY = {"believe", "guess", "happens", "happened", "next", "reasons", "things", "ways", "facts", "signs",
             "need", "know", "won't", "will", "should", "everyone", "nobody", "surprising", "revealed", "truth"}
POSITIVE = {"good", "great", "love", "best", "happy", "amazing", "awesome", "beautiful", "win", "wins", "cute",
            "perfect", "wonderful", "fun", "funny", "adorable", "brilliant", "success", "gain", "gains"}
NEGATIVE = {"bad", "worst", "hate", "sad", "kill", "killed", "dies", "dead", "death", "war", "crisis", "fail",
            "attack", "crash", "loss", "losses", "fear", "terrible", "horrible", "awful", "shocking", "wrong"}
SUPERLATIVE_RE = re.compile(r"\b\w+est\b|\bmost\b|\bleast\b", re.I)
WORD_RE = re.compile(r"[A-Za-z0-9']+")

FEATURE_NAMES = (
    "n_chars", "n_words", "mean_word_len", "long_word_ratio", "starts_with_number", "has_number", "number_ratio",
    "second_person", "first_person", "forward_reference_start", "forward_reference", "hyperbole", "curiosity",
    "superlatives", "question_marks", "exclamation_marks", "ends_with_question", "quotes", "all_caps_ratio",
    "title_case_ratio", "stopword_ratio", "positive", "negative", "sentiment", "subjectivity", "syllables_per_word",
    "flesch_reading_ease", "has_colon", "desc_length_ratio", "desc_word_overlap", "desc_sentiment_gap",
    "desc_present",
)
STOPWORDS = {"the", "a", "an", "of", "to", "in", "on", "for", "and", "or", "is", "are", "was", "were", "be", "at",
             "by", "with", "from", "as", "it", "its", "that", "this"}
FIRST_PERSON = {"i", "me", "my", "we", "our", "us", "i'm", "we're"}


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(1, count)


def _sentiment(words: list[str]) -> tuple[int, int]:
    return sum(w in POSITIVE for w in words), sum(w in NEGATIVE for w in words)


def headline_cues(text: str, description: str = "") -> list[float]:
    """The :data:`FEATURE_NAMES` cues of one headline (and optional description), as floats."""
    tokens = WORD_RE.findall(text)
    words = [t.lower() for t in tokens]
    n = max(len(words), 1)
    pos, neg = _sentiment(words)
    syll = sum(_syllables(w) for w in words) / n
    flesch = 206.835 - 1.015 * len(words) - 84.6 * syll  # one-sentence headline: words per sentence = n
    desc_words = [t.lower() for t in WORD_RE.findall(description)]
    d_pos, d_neg = _sentiment(desc_words)
    overlap = len(set(words) & set(desc_words)) / max(len(set(words) | set(desc_words)), 1) if desc_words else 0.0
    first = words[0] if words else ""
    return [
        float(len(text)), float(len(words)), sum(map(len, words)) / n, sum(len(w) > 6 for w in words) / n,
        float(first[:1].isdigit()), float(any(w.isdigit() for w in words)), sum(w.isdigit() for w in words) / n,
        sum(w in SECOND_PERSON for w in words) / n, sum(w in FIRST_PERSON for w in words) / n,
        float(first in FORWARD_REFERENCE), sum(w in FORWARD_REFERENCE for w in words) / n,
        sum(w in HYPERBOLE for w in words) / n, sum(w in CURIOSITY for w in words) / n,
        len(SUPERLATIVE_RE.findall(text)) / n, float(text.count("?")), float(text.count("!")),
        float(text.rstrip().endswith("?")), float(text.count('"') + text.count("'") // 2),
        sum(t.isupper() and len(t) > 1 for t in tokens) / n, sum(t[:1].isupper() for t in tokens) / n,
        sum(w in STOPWORDS for w in words) / n, pos / n, neg / n, (pos - neg) / n, (pos + neg) / n, syll,
        flesch / 100.0, float(":" in text),
        math.log1p(len(desc_words)) - math.log1p(len(words)) if desc_words else 0.0, overlap,
        ((pos - neg) / n - (d_pos - d_neg) / max(len(desc_words), 1)) if desc_words else 0.0,
        float(bool(desc_words)),
    ]


class LinguisticFeatures(TransformerMixin, BaseEstimator):
    """Hand-crafted bait cues per headline (32 columns, :data:`FEATURE_NAMES`).

    ``X`` is a sequence of headlines, or an (n, 2) array of (headline, description) pairs so the headline–
    description disparity cues are filled. ``log_counts`` log-compresses the count columns.
    """

    def __init__(self, log_counts: bool = True):
        self.log_counts = log_counts

    def fit(self, X, y=None):
        """Stateless; records the output width."""
        self.n_features_out_ = len(FEATURE_NAMES)
        return self

    def transform(self, X) -> np.ndarray:
        """(n,) headlines or (n, 2) (headline, description) -> (n, 32) float32."""
        if not hasattr(self, "n_features_out_"):
            self.fit(X)
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 2:
            heads, descs = as_texts(arr[:, 0]), as_texts(arr[:, 1], what="descriptions")
        else:
            heads = as_texts(X)
            descs = [""] * len(heads)
        feats = np.array([headline_cues(h, d) for h, d in zip(heads, descs)], dtype=np.float64)
        if self.log_counts:
            for name in ("n_chars", "n_words", "question_marks", "exclamation_marks", "quotes"):
                col = FEATURE_NAMES.index(name)
                feats[:, col] = np.log1p(feats[:, col])
        return feats.astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The cue names."""
        return np.array(FEATURE_NAMES, dtype=object)
