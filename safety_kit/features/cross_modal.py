"""Cross-modal agreement between two feature blocks of a post (brief §2.1 "cross-modal" row).

The paper uses a cross-modal transformer plus headline/image/article cosines [rev]. Offline we keep the cosine
part [recon]: two blocks living in the same space (headline vs description embeddings) are compared directly;
blocks from different spaces (text vs image statistics) are first aligned by a ridge map B -> A learned on the
training posts, so "agreement" means "the image looks like the images that usually come with such text".
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from shared.errors import ConfigError


class CrossModalAgreement(TransformerMixin, BaseEstimator):
    """X = [A | B] (first ``split`` columns are A) -> [cosine(A, f(B)), ‖A − f(B)‖, image-less flag].

    ``projection="none"`` compares A and B directly (same width required); ``"ridge"`` learns f(B) = B W + c by
    ridge regression onto A (``alpha``) on the fitting data. Rows whose B block is all zero (no image / no
    description) get cosine 0, distance 0 and flag 1.
    """

    def __init__(self, split: int = 384, projection: str = "ridge", alpha: float = 1.0):
        self.split = split
        self.projection = projection
        self.alpha = alpha

    def _blocks(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = check_array(X, dtype=np.float64)
        if not 0 < self.split < X.shape[1]:
            raise ConfigError(f"split={self.split} must lie strictly inside the {X.shape[1]} input columns")
        return X[:, :self.split], X[:, self.split:]

    def fit(self, X, y=None):
        """Learn the B -> A ridge map (or check the widths match for ``projection='none'``)."""
        if self.projection not in ("none", "ridge"):
            raise ConfigError(f"projection must be 'none' or 'ridge', got {self.projection!r}")
        A, B = self._blocks(X)
        self.n_features_in_ = A.shape[1] + B.shape[1]
        if self.projection == "none":
            if A.shape[1] != B.shape[1]:
                raise ConfigError(f"projection='none' needs equal widths, got {A.shape[1]} and {B.shape[1]}")
            self.coef_, self.intercept_ = np.eye(B.shape[1]), np.zeros(A.shape[1])
            return self
        present = np.abs(B).sum(axis=1) > 0
        A, B = A[present], B[present]
        if len(B) == 0:
            self.coef_, self.intercept_ = np.zeros((B.shape[1], A.shape[1])), np.zeros(A.shape[1])
            return self
        b_mean, a_mean = B.mean(axis=0), A.mean(axis=0)
        Bc, Ac = B - b_mean, A - a_mean
        # ridge in closed form: W = (BᵀB + αI)⁻¹ BᵀA, shapes (d_B, d_A)
        self.coef_ = np.linalg.solve(Bc.T @ Bc + self.alpha * np.eye(B.shape[1]), Bc.T @ Ac)
        self.intercept_ = a_mean - b_mean @ self.coef_
        return self

    def transform(self, X) -> np.ndarray:
        """(n, d_A + d_B) -> (n, 3) float32: cosine, distance, B-missing flag."""
        check_is_fitted(self, "coef_")
        A, B = self._blocks(X)
        missing = np.abs(B).sum(axis=1) == 0
        P = B @ self.coef_ + self.intercept_  # (n, d_A)
        cos = (A * P).sum(axis=1) / np.maximum(np.linalg.norm(A, axis=1) * np.linalg.norm(P, axis=1), 1e-8)
        dist = np.linalg.norm(A - P, axis=1)
        cos[missing], dist[missing] = 0.0, 0.0
        return np.stack([cos, dist, missing.astype(np.float64)], axis=1).astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``cosine``, ``distance``, ``missing``."""
        return np.array(["cosine", "distance", "missing"], dtype=object)
