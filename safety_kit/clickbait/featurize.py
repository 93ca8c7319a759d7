"""Posts -> one fused feature matrix with named column groups (brief §2.1's feature groups).

Groups: ``headline`` (text embedding), ``headline_tfidf`` (TF-IDF word 1–2-grams of the headline: the exact
wording the embedding blurs, so the detector sees what TF-IDF + LR sees), ``description`` (same encoder), ``linguistic`` (hand-crafted cues of the
headline and headline–description disparities), ``image`` (colour/texture statistics or a plugged encoder),
``cross_modal`` (headline–description cosine and a learned headline–image agreement). The classifier projects
each group separately (``Linear → LayerNorm → GELU``) before fusing them.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from safety_kit.clickbait.data import Posts
from safety_kit.features.cross_modal import CrossModalAgreement
from safety_kit.features.image import ImageFeatures
from safety_kit.features.linguistic import LinguisticFeatures
from safety_kit.features.text import TfidfNgramFeatures, make_text_embedder
from shared.errors import DataError


def as_posts(X) -> Posts:
    """A :class:`Posts`, a list of strings (headlines only) or a list of dicts with ``text`` keys."""
    if isinstance(X, Posts):
        return X
    items = list(X)
    if items and isinstance(items[0], dict):
        return Posts(texts=[str(r.get("text") or "") for r in items],
                     descriptions=[str(r.get("description") or "") for r in items],
                     images=[r.get("image") for r in items])
    if items and all(isinstance(t, str) for t in items):
        return Posts(texts=items)
    raise DataError("expected Posts, a list of headlines, or a list of {'text': ..., 'image': ...} dicts")


class PostFeaturizer(TransformerMixin, BaseEstimator):
    """Posts -> (n, d) float32 features; ``feature_groups_`` maps each group name to its (start, stop) columns.

    ``text_model``: ``"minilm"`` (bundled all-MiniLM-L6-v2), a sentence-transformers folder, or ``"lexical"``.
    ``tfidf_max_features``: width of the ``headline_tfidf`` group (0 = no TF-IDF group); TF-IDF covers the
    headline only — descriptions are the channel a disguise rides on, and their embedding is already a group.
    ``image``: ``"stats"``, a callable encoder, or ``None`` (no image group). Groups whose field is absent from
    the fitting posts are dropped, so a headline-only corpus gives headline (+ TF-IDF) + linguistic features.
    """

    def __init__(self, text_model: str = "minilm", tfidf_max_features: int = 5000, use_description: bool = True,
                 use_linguistic: bool = True, image="stats", use_cross_modal: bool = True,
                 on_missing_image: str = "zeros", image_size: int = 32):
        self.text_model = text_model
        self.tfidf_max_features = tfidf_max_features
        self.use_description = use_description
        self.use_linguistic = use_linguistic
        self.image = image
        self.use_cross_modal = use_cross_modal
        self.on_missing_image = on_missing_image
        self.image_size = image_size

    def fit(self, X, y=None):
        """Fit every group's extractor on the posts (vocabularies, ridge maps)."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None, **_) -> np.ndarray:
        """Fit and return the fused feature matrix."""
        posts = as_posts(X)
        self.text_ = make_text_embedder(self.text_model)
        if self.text_model == "lexical":
            self.text_.fit(posts.texts + (posts.descriptions or []))
        else:
            self.text_.fit(posts.texts)
        self.has_description_ = bool(self.use_description and posts.descriptions is not None
                                     and any(d.strip() for d in posts.descriptions))
        self.has_image_ = bool(self.image is not None and posts.images is not None)
        self.tfidf_ = (TfidfNgramFeatures(max_features=self.tfidf_max_features).fit(posts.texts)
                       if self.tfidf_max_features else None)
        self.linguistic_ = LinguisticFeatures().fit(posts.texts) if self.use_linguistic else None
        self.image_ = (ImageFeatures(encoder=self.image, size=self.image_size, on_missing=self.on_missing_image)
                       .fit(posts.images) if self.has_image_ else None)
        blocks = self._blocks(posts, fitting=True)
        return self._stack(blocks)

    def _blocks(self, posts: Posts, fitting: bool) -> dict[str, np.ndarray]:
        blocks: dict[str, np.ndarray] = {"headline": self.text_.transform(posts.texts)}
        if self.tfidf_ is not None:
            blocks["headline_tfidf"] = self.tfidf_.transform(posts.texts)
        descs = posts.descriptions if posts.descriptions is not None else [""] * len(posts)
        if self.has_description_:
            emb = self.text_.transform([d if d.strip() else " " for d in descs])
            emb[[not d.strip() for d in descs]] = 0.0  # an absent description is a zero block, not the embedding of " "
            blocks["description"] = emb
        if self.linguistic_ is not None:
            pairs = np.array(list(zip(posts.texts, descs)), dtype=object)
            blocks["linguistic"] = self.linguistic_.transform(pairs)
        if self.image_ is not None:
            images = posts.images if posts.images is not None else [None] * len(posts)
            blocks["image"] = self.image_.transform(images)
        if self.use_cross_modal and ("description" in blocks or "image" in blocks):
            parts = []
            if fitting:
                self.cross_ = {}
            for name in ("description", "image"):
                if name not in blocks:
                    continue
                pair = np.hstack([blocks["headline"], blocks[name]])
                if fitting:
                    head_dim = blocks["headline"].shape[1]
                    self.cross_[name] = CrossModalAgreement(
                        split=head_dim, projection="none" if name == "description" else "ridge").fit(pair)
                parts.append(self.cross_[name].transform(pair))
            blocks["cross_modal"] = np.hstack(parts)
        return blocks

    def _stack(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        groups, start = {}, 0
        for name, block in blocks.items():
            groups[name] = (start, start + block.shape[1])
            start += block.shape[1]
        self.feature_groups_ = groups
        self.n_features_out_ = start
        return np.hstack(list(blocks.values())).astype(np.float32)

    def transform(self, X) -> np.ndarray:
        """Posts -> (n, d) features in the fitted group layout."""
        check_is_fitted(self, "feature_groups_")
        posts = as_posts(X)
        layout = dict(self.feature_groups_)
        out = self._stack(self._blocks(posts, fitting=False))
        if self.feature_groups_ != layout:
            raise DataError(f"these posts give feature groups {self.feature_groups_}, the featurizer was fitted on "
                            f"{layout}")
        return out

    def group_slices(self) -> list[tuple[str, int, int]]:
        """``[(name, start, stop), ...]`` — pass as ``feature_groups`` to the classifiers."""
        check_is_fitted(self, "feature_groups_")
        return [(name, a, b) for name, (a, b) in self.feature_groups_.items()]

    def fresh(self) -> PostFeaturizer:
        """An unfitted copy with the same settings."""
        return clone(self)
