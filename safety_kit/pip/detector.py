"""``PIPDetector``: one SVM per probe question on probe-attention features, k-of-n voting (brief §2.3).

A scikit-learn classifier: ``fit(X, y)`` with X of shape ``(N, n_probes · d)`` (the probes' flattened
features side by side, as :class:`safety_kit.pip.probe_features.ProbeAttentionFeatures` produces) or
``(N, n_probes, ...)``; ``y`` holds two classes, the larger one (e.g. 1) meaning "adversarial".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data


class PIPDetector(ClassifierMixin, BaseEstimator):
    """Adversarial-image detector: an SVC per probe; flag an image when ≥ ``alarm_k`` probes flag it.

    Defaults are the official ones: ``SVC(kernel="linear", C=10)``, no class weights, no feature scaling
    (``standardize=False``), one probe, ``alarm_k=1``. ``standardize=True`` adds a StandardScaler per probe,
    which the miniature needs (raw attention values span 1e-4–1e-1; brief §8.4 lesson 1). The paper's
    Table-7 voting is ``n_probes=3, alarm_k=2``.

    ``decision_function`` returns the ``alarm_k``-th largest per-probe SVM margin, so ``score > 0`` holds
    exactly when at least ``alarm_k`` probes vote "adversarial" — a continuous score consistent with
    ``predict`` that also gives ROC curves for the voted detector.
    """

    def __init__(self, n_probes: int = 1, alarm_k: int = 1, C: float = 10.0, kernel: str = "linear",
                 gamma: str | float = "scale", standardize: bool = False, tol: float = 1e-3,
                 max_iter: int = -1):
        self.n_probes = n_probes
        self.alarm_k = alarm_k
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a clean/adversarial detector is binary by design
        return tags

    # -- helpers ---------------------------------------------------------------------------------
    def _flatten(self, X: Any) -> Any:
        """Accept ``(N, n_probes, ...)`` arrays by flattening each probe's block."""
        if hasattr(X, "ndim") and getattr(X, "ndim", 2) > 2:
            if X.shape[1] != self.n_probes:
                raise ValueError(f"X has {X.shape[1]} probes on axis 1 but n_probes={self.n_probes}")
            return np.asarray(X).reshape(X.shape[0], -1)
        return X

    def _blocks(self, X: np.ndarray) -> list[np.ndarray]:
        width = X.shape[1] // self.n_probes
        return [X[:, j * width:(j + 1) * width] for j in range(self.n_probes)]

    def _check_params(self, n_features: int) -> None:
        if not isinstance(self.n_probes, (int, np.integer)) or self.n_probes < 1:
            raise ValueError(f"n_probes must be a positive int, got {self.n_probes!r}")
        if not 1 <= self.alarm_k <= self.n_probes:
            raise ValueError(f"alarm_k must be between 1 and n_probes={self.n_probes}, got {self.alarm_k!r}")
        if n_features % self.n_probes:
            raise ValueError(f"X has {n_features} features, not a multiple of n_probes={self.n_probes}; "
                             f"pass the probes' features side by side, each of equal width")

    # -- estimator API ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> PIPDetector:
        """Train one SVM per probe on clean (smaller label) vs adversarial (larger label) features."""
        X, y = validate_data(self, self._flatten(X), y)
        check_classification_targets(y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) == 1:
            raise ValueError(f"PIPDetector needs clean and adversarial examples, but y has only one class "
                             f"({self.classes_[0]!r}); add examples of the other class")
        if len(self.classes_) != 2:
            raise ValueError(f"Only binary classification is supported. PIPDetector needs exactly 2 classes "
                             f"(clean, adversarial), got {len(self.classes_)} class(es): {list(self.classes_)}")
        self._check_params(X.shape[1])
        target = (y == self.classes_[1]).astype(int)
        base = SVC(kernel=self.kernel, C=self.C, gamma=self.gamma, tol=self.tol, max_iter=self.max_iter)
        self.estimators_ = []
        for block in self._blocks(X):
            model = make_pipeline(StandardScaler(), clone(base)) if self.standardize else clone(base)
            self.estimators_.append(model.fit(block, target))
        svcs = [m[-1] if self.standardize else m for m in self.estimators_]
        self.n_iter_ = int(max(int(np.max(svc.n_iter_)) for svc in svcs))  # libsvm iterations, worst probe
        return self

    def probe_decisions(self, X: Any) -> np.ndarray:
        """Per-probe SVM margins ``(N, n_probes)``; positive means that probe votes "adversarial"."""
        check_is_fitted(self)
        X = validate_data(self, self._flatten(X), reset=False)
        return np.stack([m.decision_function(b) for m, b in zip(self.estimators_, self._blocks(X))], axis=1)

    def decision_function(self, X: Any) -> np.ndarray:
        """The ``alarm_k``-th largest probe margin ``(N,)``; > 0 means flagged (k-of-n vote)."""
        margins = np.sort(self.probe_decisions(X), axis=1)[:, ::-1]
        return margins[:, self.alarm_k - 1]

    def predict(self, X: Any) -> np.ndarray:
        """Class labels: ``classes_[1]`` (adversarial) where at least ``alarm_k`` probes flag the image."""
        flagged = self.decision_function(X) > 0  # also checks that the detector is fitted
        return self.classes_[flagged.astype(int)]


def detection_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.0) -> dict[str, float]:
    """Recall, precision, F1, false-alarm rate and ROC-AUC for adversarial = 1 (brief §5)."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    pred = (scores > threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, pred, average="binary", zero_division=0)
    clean = y_true == 0
    out = {"recall": float(recall), "precision": float(precision), "f1": float(f1),
           "accuracy": float((pred == y_true).mean()),
           "false_alarm_rate": float(pred[clean].mean()) if clean.any() else float("nan")}
    out["auc"] = float(roc_auc_score(y_true, scores)) if len(np.unique(y_true)) == 2 else float("nan")
    return out


def imbalanced_mix(n_clean: int, n_adv: int, ratio: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a clean:adversarial = ratio:1 test mix (the official 1000:100, drawn with seed 0)."""
    rng = np.random.RandomState(seed)
    keep_adv = min(n_adv, max(1, n_clean // ratio))
    return np.arange(n_clean), np.sort(rng.choice(n_adv, size=keep_adv, replace=False))
