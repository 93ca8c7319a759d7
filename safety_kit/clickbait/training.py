"""The scikit-learn side shared by the debiased model and the torch baselines: input checks, standardisation,
the model-selection rule, mini-batch loop, divergence checks, batch-invariant predict/proba.

Model selection (``selection``, the same rule for every arm) follows the domain-generalisation literature
(Gulrajani & Lopez-Paz, "In Search of Lost Domain Generalization", DomainBed):

* ``"fixed"`` (default) — a fixed schedule: train ``max_epochs`` and keep the last network. It needs no
  validation split and no environment labels, so it can neither reward the shortcut a debiasing method exists
  to drop (an in-distribution split does: the disguise predicts the label there) nor pick a network from
  before the invariance penalty is switched on;
* ``"training_domain"`` — early stopping on validation F1 of a stratified ``validation_fraction`` of the
  training rows (all environments pooled): DomainBed's training-domain validation;
* ``"leave_one_environment_out"`` — the rows of one environment (``validation_environment``; default: the
  last in sorted order) are held out of training and early stopping uses their F1; needs
  ``fit(..., environments=...)``.

Under both early-stopping rules no checkpoint from before the method's loss term applies (the debiased
model's warm-up, the IRM/V-REx anneal) is ever selected.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from shared.errors import ConfigError, TrainingDivergedError
from shared.progress import progress

SELECTION_RULES = ("fixed", "training_domain", "leave_one_environment_out")


def parse_groups(feature_groups, n_features: int) -> list[tuple[str, int, int]]:
    """``None`` (one group), ``[(name, start, stop)]``, ``[(start, stop)]`` or ``{name: (start, stop)}`` ->
    validated ``[(name, start, stop)]`` covering columns without overlap."""
    if feature_groups is None:
        return [("all", 0, n_features)]
    items = feature_groups.items() if isinstance(feature_groups, dict) else enumerate(feature_groups)
    groups = []
    for key, spec in items:
        spec = tuple(spec)
        name, (a, b) = (str(spec[0]), spec[1:]) if len(spec) == 3 else (str(key), spec)
        if not 0 <= int(a) < int(b) <= n_features:
            raise ConfigError(f"feature group {name!r} = ({a}, {b}) does not fit {n_features} input columns")
        groups.append((name, int(a), int(b)))
    return groups


class TorchBinaryClassifier(ClassifierMixin, BaseEstimator):
    """Base class: subclasses define ``_build``, ``_batch_loss`` and ``_forward_logits``/``_represent``."""

    def _more_tags(self):  # pragma: no cover - old sklearn
        return {"binary_only": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = False
        if hasattr(self, "transform"):  # transform() exposes the learned representation (factors / h)
            from sklearn.utils import TransformerTags

            tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags

    # ---- data -------------------------------------------------------------------------------------------
    def _check_fit_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_min_samples=2)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"this classifier needs samples of 2 classes, but the data contains only one class: "
                             f"{classes[0]!r}")
        self.classes_ = classes
        y01 = (y == self.classes_[1]).astype(np.float32)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.where(X.std(axis=0) > 1e-6, X.std(axis=0), 1.0).astype(np.float32)
        return self._standardise(X), y01

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _check_selection(self, selection_groups: np.ndarray | None) -> None:
        if self.selection not in SELECTION_RULES:
            raise ConfigError(f"selection must be one of {list(SELECTION_RULES)}, got {self.selection!r}")
        if self.selection == "leave_one_environment_out":
            if selection_groups is None:
                raise ConfigError("selection='leave_one_environment_out' holds one environment out for validation: "
                                  "pass fit(X, y, environments=...)")
            if len(np.unique(selection_groups)) < 3:
                raise ConfigError("selection='leave_one_environment_out' needs ≥ 3 environments (one is held out, "
                                  "≥ 2 remain to train on)")

    def _split(self, y: np.ndarray, rng: np.random.Generator,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(training rows, validation rows or None) under the selection rule."""
        n = len(y)
        idx = rng.permutation(n)
        if self.selection == "fixed":
            return idx, None
        if self.selection == "leave_one_environment_out":
            values = list(getattr(self, "environment_values_", np.unique(groups)))
            if self.validation_environment is None:
                held = len(values) - 1
            elif self.validation_environment in values:  # the value as passed to fit, e.g. "2017-Mar"
                held = values.index(self.validation_environment)
            else:
                raise ConfigError(f"validation_environment={self.validation_environment!r} is not one of the "
                                  f"environments {values}")
            val = idx[groups[idx] == held]
            train = idx[groups[idx] != held]
            if len(np.unique(y[train])) < 2 or len(np.unique(y[val])) < 2:
                raise ConfigError(f"holding out environment {values[held]!r} leaves one class only in training or "
                                  "validation; choose another validation_environment")
            self.validation_environment_ = values[held]
            return train, val
        n_val = int(round(self.validation_fraction * n))
        if n_val < 10 or n - n_val < 10:
            warnings.warn(f"selection='training_domain': {n} rows are too few for a validation split; keeping the "
                          "last epoch (the fixed schedule)", stacklevel=4)
            return idx, None
        # stratified: take the validation share of each class
        val = np.concatenate([idx[y[idx] == c][: max(1, int(round(self.validation_fraction * (y == c).sum())))]
                              for c in (0.0, 1.0)])
        train = np.setdiff1d(idx, val, assume_unique=True)
        if len(np.unique(y[train])) < 2:
            return idx, None
        return rng.permutation(train), val

    # ---- the loop ---------------------------------------------------------------------------------------
    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.randint(0, 2**31 - 1))
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(0, 2**31 - 1))
        return int(self.random_state)

    def _train(self, X: np.ndarray, y: np.ndarray, environments: np.ndarray | None, desc: str,
               selection_groups: np.ndarray | None = None) -> None:
        """Train under the selection rule; ``selection_groups`` (n,) are the environments it may hold out."""
        self._check_selection(selection_groups)
        seed = self._seed()
        rng = np.random.default_rng(seed)
        train_idx, val_idx = self._split(y, rng, selection_groups)
        self.train_rows_ = train_idx  # the rows trained on, in training order (per-row diagnostics line up with it)
        self.selected_epoch_ = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(X.shape[1], environments)
            params = [p for p in self.network_.parameters() if p.requires_grad]
            optimiser = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
            Xtr, ytr = torch.from_numpy(X[train_idx]), torch.from_numpy(y[train_idx])
            env_tr = None if environments is None else environments[train_idx]
            best, best_score, waited, self.history_ = None, -math.inf, 0, []
            first = self._first_stoppable_epoch()
            reset_at = self._optimiser_reset_epoch()
            for epoch in progress(range(self.max_epochs), desc=desc, unit="epoch"):
                self.network_.train()
                if epoch == reset_at and epoch > 0:
                    # DomainBed resets Adam when the penalty starts and the loss is divided by its weight: Adam's second
                    # moment still holds the larger warm-up gradients, so without a reset the steps shrink by ~the
                    # weight and the network all but stops fitting (an early stop only the penalty arms get; issue 21:
                    # ERM given the same stop matched the debiased model's OOD F1 on the planted control)
                    optimiser = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
                env_epoch = self._epoch_environments(epoch, Xtr, ytr, env_tr, seed)
                order = torch.from_numpy(rng.permutation(len(train_idx)))
                totals: dict[str, float] = {}
                for start in range(0, len(order), self.batch_size):
                    rows = order[start:start + self.batch_size]
                    if len(rows) < 2:
                        continue
                    terms = self._batch_loss(Xtr[rows], ytr[rows],
                                             None if env_epoch is None else env_epoch[rows], epoch)
                    loss = sum(terms.values())
                    if not torch.isfinite(loss):
                        raise TrainingDivergedError(
                            f"{type(self).__name__}: non-finite loss at epoch {epoch} ({ {k: float(v) for k, v in terms.items()} }); "
                            "lower learning_rate or the loss weights")
                    optimiser.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 5.0)
                    optimiser.step()
                    self._after_step(terms)
                    for k, v in terms.items():
                        totals[k] = totals.get(k, 0.0) + float(v.detach()) * len(rows) / len(order)
                record = {"epoch": epoch, **totals}
                if val_idx is not None:
                    pred = self._predict01(X[val_idx])
                    record["val_f1"] = float(f1_score(y[val_idx], pred, zero_division=0))
                    record["val_acc"] = float((pred == y[val_idx]).mean())
                self.history_.append(record)
                # checkpoints from before the method's loss term applies are never candidates
                if val_idx is None or epoch < first:
                    continue
                score = record["val_f1"] + 1e-3 * record["val_acc"]
                if score > best_score + 1e-6:
                    best, best_score, waited = copy.deepcopy(self.network_.state_dict()), score, 0
                    self.selected_epoch_ = epoch
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
            if best is not None:
                self.network_.load_state_dict(best)
            else:  # fixed schedule (or no eligible epoch): the last network
                self.selected_epoch_ = len(self.history_) - 1
        self.network_.eval()
        self.n_epochs_ = len(self.history_)

    def _first_stoppable_epoch(self) -> int:
        return 0

    def _optimiser_reset_epoch(self) -> int | None:
        """The epoch at which the loss is divided by the penalty weight (the optimiser restarts there), or None."""
        return None

    def _epoch_environments(self, epoch, X, y, env, seed):
        return None if env is None else torch.from_numpy(env)

    def _after_step(self, terms) -> None:
        return None

    # ---- prediction -------------------------------------------------------------------------------------
    def _scoring_network(self) -> torch.nn.Module:
        """A float64 copy of the trained network for inference.

        float32 matrix products round differently with the batch size (BLAS blocking), so a row's score would
        change by ~1e-6 with the rows scored beside it (sklearn's check_methods_subset_invariance); in float64
        that rounding is ~1e-15, far below any tolerance.
        """
        return copy.deepcopy(self.network_).double().eval()

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Logits of standardised X (n, d) -> (n,), batch-invariant (float64)."""
        net = self._scoring_network()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 4096):
                out.append(self._forward_logits(torch.from_numpy(X[start:start + 4096].astype(np.float64)),
                                                net).numpy())
        return np.concatenate(out).astype(np.float64)

    def _predict01(self, X_std: np.ndarray) -> np.ndarray:
        return (self._scores(X_std) > 0).astype(np.float32)

    def _check_predict_data(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self._standardise(X)

    def decision_function(self, X) -> np.ndarray:
        """The bait-class logit per row (positive -> ``classes_[1]``)."""
        return self._scores(self._check_predict_data(X))

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) class probabilities in ``classes_`` order."""
        p = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -50, 50)))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X) -> np.ndarray:
        """Predicted class labels."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def fit_transform(self, X, y, **fit_params) -> np.ndarray:
        """``fit(X, y, **fit_params).transform(X)``: the learned representation of the training rows."""
        return self.fit(X, y, **fit_params).transform(X)


def as_environment_array(environments, n: int, estimator=None) -> np.ndarray | None:
    """Environment values (any hashable labels) -> integer codes (n,), or None; the distinct values (in code
    order) are kept on ``estimator.environment_values_`` when an estimator is given."""
    if environments is None:
        return None
    from safety_kit.clickbait.environments import encode_environments

    values = np.asarray(environments)
    if values.shape[0] != n:
        raise ValueError(f"environments has {values.shape[0]} entries, X has {n} rows")
    codes, uniq = encode_environments(values)
    if estimator is not None:
        estimator.environment_values_ = uniq.tolist()
    return codes


def group_columns(groups: Sequence[tuple[str, int, int]], name: str) -> tuple[int, int]:
    """(start, stop) of the named group or a ConfigError listing the names."""
    for g, a, b in groups:
        if g == name:
            return a, b
    raise ConfigError(f"no feature group {name!r}; groups are {[g for g, _, _ in groups]}")
