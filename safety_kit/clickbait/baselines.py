"""Baselines on the same features and network width: logistic regression, ERM-MLP, GroupDRO, IRM, V-REx.

The torch baselines share the debiased model's group projector and fused width (``FusedMLP``) and its training
loop, so differences come from the objective alone. GroupDRO/IRM/V-REx need environments: pass them to
``fit(X, y, environments=...)`` (e.g. the benchmark's true training environments), or let the model infer them
with within-class k-means on the standardised inputs (``n_environments``). Model selection (``selection``) is
the shared rule of :mod:`safety_kit.clickbait.training` (default: a fixed schedule); under early stopping no
epoch before ``penalty_anneal_epochs`` (the full IRM/V-REx penalty) is selected.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from safety_kit.clickbait import losses as L
from safety_kit.clickbait.environments import one_hot, within_class_kmeans
from safety_kit.clickbait.network import FusedMLP
from safety_kit.clickbait.training import TorchBinaryClassifier, as_environment_array, parse_groups
from shared.errors import ConfigError

OBJECTIVES = ("erm", "groupdro", "irm", "vrex")


def make_logistic_baseline(C: float = 1.0, random_state: int | None = 0) -> Pipeline:
    """StandardScaler + L2 logistic regression (the linear head on the same features)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=random_state))


def make_tfidf_baseline(C: float = 1.0, random_state: int | None = 0) -> Pipeline:
    """TF-IDF word 1–2-grams of the headline (full vocabulary, sublinear tf) + L2 logistic regression.

    The simplest strong clickbait baseline (issue 21: a detector must match it in distribution); it takes raw
    headline strings, not the fused feature matrix, and is blind to every other field.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=C, max_iter=2000, random_state=random_state))


class InvariantMLPClassifier(TorchBinaryClassifier):
    """MLP on the fused features trained with ``objective``: ``erm``, ``groupdro`` (robust over environments,
    exponentiated-gradient weights with step ``dro_eta``), ``irm`` (IRMv1) or ``vrex`` (risk variance); the
    penalty weight ``penalty_weight`` applies after ``penalty_anneal_epochs`` (before it, weight 1 as in the
    IRM/V-REx reference code; from then on the loss is divided by it, and with ``reset_optimiser`` Adam restarts
    there, as in DomainBed, so the smaller loss does not shrink the steps)."""

    def __init__(self, objective: str = "erm", feature_groups=None, group_dim: int = 256, fused_dim: int = 256,
                 hidden_dim: int = 128, dropout: float = 0.1, penalty_weight: float = 10.0,
                 penalty_anneal_epochs: int = 2, reset_optimiser: bool = True, dro_eta: float = 0.01, n_environments: int = 4,
                 max_epochs: int = 30, batch_size: int = 128, learning_rate: float = 1e-3, weight_decay: float = 1e-4,
                 selection: str = "fixed", validation_fraction: float = 0.1, patience: int = 5,
                 validation_environment=None, random_state=None):
        self.objective = objective
        self.feature_groups = feature_groups
        self.group_dim = group_dim
        self.fused_dim = fused_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.penalty_weight = penalty_weight
        self.penalty_anneal_epochs = penalty_anneal_epochs
        self.reset_optimiser = reset_optimiser
        self.dro_eta = dro_eta
        self.n_environments = n_environments
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.validation_environment = validation_environment
        self.random_state = random_state

    def fit(self, X, y, environments=None):
        """Train; ``environments`` (n,) used by groupdro/irm/vrex (inferred by within-class k-means when None)."""
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        X, y01 = self._check_fit_data(X, y)
        self.groups_ = parse_groups(self.feature_groups, X.shape[1])
        given = as_environment_array(environments, len(y01), self)
        if self.objective == "erm" and given is not None and self.selection != "leave_one_environment_out":
            warnings.warn("objective='erm' pools all environments: the environments passed to fit are not used",
                          UserWarning, stacklevel=2)
        env = given
        if self.objective != "erm" and env is None:
            env = within_class_kmeans(X, y01, self.n_environments, seed=self._seed() % 1000)
        self._train(X, y01, env if self.objective != "erm" else None, desc=f"{self.objective} baseline",
                    selection_groups=given)
        return self

    def _first_stoppable_epoch(self) -> int:
        # IRM/V-REx run at weight 1 until the anneal ends: an earlier checkpoint is an ERM network in disguise
        return self.penalty_anneal_epochs if self.objective in ("irm", "vrex") else 0

    def _optimiser_reset_epoch(self) -> int | None:
        if self.objective in ("irm", "vrex") and self.penalty_weight > 1.0 and self.reset_optimiser:
            return self.penalty_anneal_epochs
        return None

    def _build(self, n_features: int, environments) -> None:
        self.n_environments_ = 1 if environments is None else int(environments.max()) + 1
        self.network_ = FusedMLP([(a, b) for _, a, b in self.groups_], self.group_dim, self.fused_dim,
                                 self.hidden_dim, self.dropout)
        self.group_weights_ = torch.full((self.n_environments_,), 1.0 / self.n_environments_)

    def _epoch_environments(self, epoch, X, y, env, seed):
        return None if env is None else torch.from_numpy(one_hot(env, self.n_environments_))

    def _batch_loss(self, xb, yb, envb, epoch):
        logits, _ = self.network_(xb)
        per_row = F.binary_cross_entropy_with_logits(logits, yb, reduction="none")
        if self.objective == "erm" or envb is None:
            return {"cls": per_row.mean()}
        weight = self.penalty_weight if epoch >= self.penalty_anneal_epochs else 1.0
        if self.objective == "groupdro":
            present = envb.sum(dim=0) > 0
            risks = torch.zeros(self.n_environments_)
            risks[present] = L.environment_risks(per_row, envb)
            self.group_weights_ = L.group_dro_weights(risks, self.group_weights_, self.dro_eta)
            return {"cls": (self.group_weights_ * risks).sum()}
        penalty = L.vrex_penalty(per_row, envb) if self.objective == "vrex" else L.irm_penalty(logits, yb, envb)
        terms = {"cls": per_row.mean(), "penalty": weight * penalty}
        if weight > 1.0:  # the reference implementations rescale the loss so the penalty does not blow up Adam
            terms = {k: v / weight for k, v in terms.items()}
        return terms

    def _forward_logits(self, x: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        return net(x)[0]

    def transform(self, X) -> np.ndarray:
        """The fused representation h (n, fused_dim) the head reads (for probing what the model encodes), float64."""
        Xs = torch.from_numpy(self._check_predict_data(X).astype(np.float64))
        with torch.no_grad():
            return self._scoring_network()(Xs)[1].numpy()


def make_baseline(name: str, **kwargs):
    """``logreg`` | ``tfidf_logreg`` (takes headline strings) | ``erm`` | ``groupdro`` | ``irm`` | ``vrex`` -> an
    unfitted estimator."""
    if name in ("logreg", "tfidf_logreg"):
        make = make_logistic_baseline if name == "logreg" else make_tfidf_baseline
        return make(**{k: v for k, v in kwargs.items() if k in ("C", "random_state")})
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown baseline {name!r}; choose from {['logreg', 'tfidf_logreg', *OBJECTIVES]}")
    return InvariantMLPClassifier(objective=name, **kwargs)
