"""``DebiasedClickbaitClassifier``: the disentangling network of brief §2.3 as a scikit-learn estimator.

A reconstruction of Yu et al. (arXiv 2410.07673), whose equations are not public. The fused features h are split
into an invariant factor z_inv (bait intention; its risk is made equal across environments), a causal factor z_c
(scenario-specific deceptive patterns; prior N(μ_e, I) per environment, predictive of the environment) and a noise
factor z_n (label-free by an adversary behind gradient reversal, or by HSIC). The label is predicted from
[z_inv; z_c] only. Every loss term has its own weight (0 switches it off) for ablations.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from safety_kit.clickbait import losses as L
from safety_kit.clickbait.environments import (
    _pair_clusters,
    check_strategy,
    eiil_environments,
    kmeans_environments,
    one_hot,
    within_class_kmeans,
)
from safety_kit.clickbait.network import DisentanglingNetwork
from safety_kit.clickbait.training import (
    TorchBinaryClassifier,
    as_environment_array,
    group_columns,
    parse_groups,
)
from shared.errors import ConfigError

PREDICT_FROM = {"invariant+causal": ("inv", "c"), "invariant": ("inv",), "all": ("inv", "c", "n")}


class DebiasedClickbaitClassifier(TorchBinaryClassifier):
    """Clickbait detector that predicts from invariant + causal factors and discards the noise factor.

    Parameters marked [recon] in the docs are reconstructions (brief §2.3–§3 defaults). ``fit(X, y,
    environments=None)``; ``transform(X)`` returns ``[μ_inv | μ_c | μ_n]`` (n, 3·latent_dim); :meth:`factors`
    returns them by name.

    Loss weights: ``beta_kl`` (KL to the factor priors, warmed up linearly over ``warmup_epochs``),
    ``lambda_rec`` (reconstruction of the standardised input features, or of h), ``lambda_aux`` (BCE of the
    invariant head — a reconstruction outside the brief's total loss: without it V-REx is met by a constant
    head), ``lambda_grl`` (gradient-reversal strength of the noise adversary, brief's λ_grl), ``lambda_inv`` (V-REx or IRMv1 across environments;
    ``rescale_penalty=True`` divides the loss by it after the warm-up when it exceeds 1, as the IRM/V-REx reference
    code and the baselines here do; off by default: the brief's total loss has no such division), ``lambda_env`` (z_c predicts the
    environment), ``lambda_noise`` (z_n is label-free: GRL adversary or HSIC), ``lambda_orth`` (cross-correlation
    between factors). Environment strategies: ``auto`` (default: the environments given to ``fit`` when there
    are some, else ``kmeans``), ``kmeans``, ``kmeans_within_class``, ``learned``, ``given``, ``eiil``; the one
    used is ``environment_strategy_``.

    Model selection (``selection``): ``fixed`` (default; the last of ``max_epochs``), ``training_domain`` or
    ``leave_one_environment_out`` — see :mod:`safety_kit.clickbait.training`. Under early stopping no epoch of
    the warm-up (before the invariance and noise terms apply) is ever selected. Widths default to the brief's
    §3 values (group_dim = fused_dim = 256, latent_dim = 64).
    """

    def __init__(self, feature_groups=None, group_dim: int = 256, fused_dim: int = 256, latent_dim: int = 64,
                 hidden_dim: int = 128, dropout: float = 0.1, n_environments: int = 4,
                 environment_strategy: str = "auto", environment_features: str = "fused",
                 env_temperature: float = 1.0, lambda_balance: float = 1.0, beta_kl: float = 1e-3,
                 lambda_rec: float = 1.0, reconstruct: str = "input", lambda_aux: float = 1.0, lambda_grl: float = 1.0,
                 lambda_inv: float = 1.0, invariance_penalty: str = "vrex", rescale_penalty: bool = False,
                 invariance_target: str = "invariant_head", lambda_env: float = 0.1, lambda_noise: float = 0.1,
                 noise_penalty: str = "grl", lambda_orth: float = 0.1, predict_from: str = "invariant+causal",
                 warmup_epochs: int = 2, max_epochs: int = 30, batch_size: int = 128, learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4, selection: str = "fixed", validation_fraction: float = 0.1,
                 patience: int = 5, validation_environment=None, random_state=None):
        self.feature_groups = feature_groups
        self.group_dim = group_dim
        self.fused_dim = fused_dim
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.n_environments = n_environments
        self.environment_strategy = environment_strategy
        self.environment_features = environment_features
        self.env_temperature = env_temperature
        self.lambda_balance = lambda_balance
        self.beta_kl = beta_kl
        self.lambda_rec = lambda_rec
        self.reconstruct = reconstruct
        self.lambda_aux = lambda_aux
        self.lambda_grl = lambda_grl
        self.lambda_inv = lambda_inv
        self.rescale_penalty = rescale_penalty
        self.invariance_penalty = invariance_penalty
        self.invariance_target = invariance_target
        self.lambda_env = lambda_env
        self.lambda_noise = lambda_noise
        self.noise_penalty = noise_penalty
        self.lambda_orth = lambda_orth
        self.predict_from = predict_from
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.validation_environment = validation_environment
        self.random_state = random_state

    # ---- configuration ----------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_strategy(self.environment_strategy)
        choices = {"reconstruct": ("input", "fused"), "invariance_penalty": ("vrex", "irm"),
                   "invariance_target": ("invariant_head", "classifier", "both"), "noise_penalty": ("grl", "hsic"),
                   "predict_from": tuple(PREDICT_FROM)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in ("beta_kl", "lambda_rec", "lambda_aux", "lambda_inv", "lambda_env", "lambda_noise",
                     "lambda_orth", "lambda_balance"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0 (0 switches the term off), got {getattr(self, name)}")

    def fit(self, X, y, environments=None):
        """Train on features X (n, d) and binary labels y; ``environments`` (n,): scenario ids (publisher,
        month, ...) used by strategies 'given'/'auto' and by leave-one-environment-out selection."""
        self._check_params()
        X, y01 = self._check_fit_data(X, y)
        self.groups_ = parse_groups(self.feature_groups, X.shape[1])
        env = as_environment_array(environments, len(y01), self)
        strategy = self.environment_strategy
        if strategy == "auto":
            strategy = "given" if env is not None else "kmeans"
        if strategy == "given" and env is None:
            raise ConfigError("environment_strategy='given' needs fit(X, y, environments=...) (e.g. publisher ids)")
        if env is not None and strategy != "given" and self.selection != "leave_one_environment_out":
            warnings.warn(f"environment_strategy={strategy!r} infers its own environments: the environments passed "
                          "to fit are not used; set environment_strategy='given' (or 'auto') to train with them",
                          UserWarning, stacklevel=2)
        self.environment_strategy_ = strategy
        self._train(X, y01, env if strategy == "given" else None, desc="debiased clickbait", selection_groups=env)
        return self

    def _n_env(self, environments) -> int:
        if self.environment_strategy_ == "given":
            return int(environments.max()) + 1
        if self.environment_strategy_ == "eiil":
            return 2
        return int(self.n_environments)

    def _build(self, n_features: int, environments) -> None:
        self.n_environments_ = self._n_env(environments)
        rec_dim = n_features if self.reconstruct == "input" else self.fused_dim
        self.network_ = DisentanglingNetwork(
            n_features, [(a, b) for _, a, b in self.groups_], self.group_dim, self.fused_dim, self.latent_dim,
            self.hidden_dim, self.n_environments_, PREDICT_FROM[self.predict_from], rec_dim, self.dropout)
        self._current_env = None

    def _first_stoppable_epoch(self) -> int:
        return self.warmup_epochs

    def _optimiser_reset_epoch(self) -> int | None:
        # with the loss divided by λ_inv, Adam restarts when the penalty starts (DomainBed; see InvariantMLPClassifier)
        return self.warmup_epochs if self.rescale_penalty and self.lambda_inv > 1.0 else None

    # ---- environments -----------------------------------------------------------------------------------
    def _env_representation(self, X: torch.Tensor) -> np.ndarray:
        feats = self.environment_features
        if feats == "input":
            return X.numpy()
        if feats not in ("fused", "causal"):
            a, b = group_columns(self.groups_, feats)
            return X[:, a:b].numpy()
        self.network_.eval()
        with torch.no_grad():
            out = self.network_(X, sample=False)
        self.network_.train()
        return (out["h"] if feats == "fused" else out["mu_c"]).numpy()

    def _epoch_environments(self, epoch, X, y, env, seed):
        """One-hot environment weights (n_train, E) for this epoch, or None during warm-up / for 'learned'."""
        strategy = self.environment_strategy_
        if epoch < self.warmup_epochs or strategy == "learned":
            return None
        if strategy == "given":
            return torch.from_numpy(one_hot(env, self.n_environments_))
        if strategy == "eiil":
            if self._current_env is None:  # the reference model is the warmed-up classifier, inferred once
                self.network_.eval()
                with torch.no_grad():
                    logits = self.network_(X, sample=False)["logit"].numpy()
                self.network_.train()
                self._current_env = eiil_environments(logits, y.numpy(), seed=seed)
                self.train_environments_ = self._current_env
            return torch.from_numpy(one_hot(self._current_env, 2))
        Z = self._env_representation(X)
        if strategy == "kmeans":
            new = kmeans_environments(Z, self.n_environments_, seed + epoch)
        else:
            new = within_class_kmeans(Z, y.numpy(), self.n_environments_, seed + epoch)
        if self._current_env is not None:  # keep ids stable across refreshes so μ_e and the probe stay meaningful
            E = self.n_environments_
            overlap = np.zeros((E, E))
            np.add.at(overlap, (self._current_env, new), 1)
            pairing = _pair_clusters(overlap)  # old id i <- new id pairing[i]
            relabel = np.empty(E, dtype=np.int64)
            relabel[pairing] = np.arange(E)
            new = relabel[new]
        self._current_env = new
        self.train_environments_ = new
        return torch.from_numpy(one_hot(new, self.n_environments_))

    # ---- losses -----------------------------------------------------------------------------------------
    def _terms(self, x: torch.Tensor, y: torch.Tensor, env_w: torch.Tensor | None, warm: bool,
               beta: float) -> dict[str, torch.Tensor]:
        """Weighted loss terms of one batch (a term switched off by a zero weight is absent)."""
        net = self.network_
        out = net(x, sample=True)
        terms: dict[str, torch.Tensor] = {"cls": F.binary_cross_entropy_with_logits(out["logit"], y)}
        if self.lambda_aux > 0:
            terms["aux"] = self.lambda_aux * F.binary_cross_entropy_with_logits(out["logit_inv"], y)
        if self.lambda_rec > 0:
            target = x if self.reconstruct == "input" else out["h"]
            terms["rec"] = self.lambda_rec * (out["recon"] - target).pow(2).mean()
        if self.environment_strategy_ == "learned" and not warm:
            env_w = F.softmax(net.environment_assigner(out["z_c"]) / self.env_temperature, dim=1)  # (B, E)
            if self.lambda_balance > 0:
                terms["balance"] = self.lambda_balance * L.balance_penalty(env_w)
        if beta > 0:
            kl = L.kl_to_standard_normal(out["mu_inv"], out["logvar_inv"])
            kl = kl + L.kl_to_standard_normal(out["mu_n"], out["logvar_n"])
            if env_w is None:
                kl = kl + L.kl_to_standard_normal(out["mu_c"], out["logvar_c"])
            else:
                kl = kl + L.kl_to_environment_prior(out["mu_c"], out["logvar_c"], net.environment_means, env_w)
            terms["kl"] = beta * kl
        if warm:  # brief §2.4 stage 1: classification, KL and reconstruction only
            return terms
        # the learned assigner π is trained by L_env and the balance term (brief §2.3 option B), never by the
        # invariance penalty: π that minimises Var_e[R_e] picks environments of equal risk and voids the penalty
        inv_w = env_w.detach() if env_w is not None else None
        if self.lambda_inv > 0 and env_w is not None:
            penalty = torch.zeros(())
            targets = {"invariant_head": ["logit_inv"], "classifier": ["logit"],
                       "both": ["logit_inv", "logit"]}[self.invariance_target]
            for key in targets:
                if self.invariance_penalty == "vrex":
                    per_row = F.binary_cross_entropy_with_logits(out[key], y, reduction="none")
                    penalty = penalty + L.vrex_penalty(per_row, inv_w)
                else:
                    penalty = penalty + L.irm_penalty(out[key], y, inv_w)
            terms["inv"] = self.lambda_inv * penalty
        if self.lambda_env > 0 and env_w is not None:
            target = env_w.detach() if self.environment_strategy_ != "learned" else env_w
            terms["env"] = self.lambda_env * L.soft_cross_entropy(net.environment_probe(out["z_c"]), target)
        if self.lambda_noise > 0:
            if self.noise_penalty == "grl":
                # the head learns to predict y from z_n; the reversed gradient makes the encoder remove that signal
                logit_n = net.noise_head(L.grad_reverse(out["z_n"], self.lambda_grl)).squeeze(1)
                terms["noise"] = self.lambda_noise * F.binary_cross_entropy_with_logits(logit_n, y)
            else:
                terms["noise"] = self.lambda_noise * L.hsic(out["z_n"], y)
        if self.lambda_orth > 0:
            terms["orth"] = self.lambda_orth * L.orthogonality([out["mu_inv"], out["mu_c"], out["mu_n"]])
        return terms

    def _batch_loss(self, xb, yb, envb, epoch):
        warm = epoch < self.warmup_epochs
        beta = self.beta_kl * min(1.0, (epoch + 1) / max(self.warmup_epochs, 1))
        terms = self._terms(xb, yb, envb, warm, beta)
        if self.rescale_penalty and not warm and self.lambda_inv > 1.0 and "inv" in terms:
            # the IRM/V-REx reference code (and InvariantMLPClassifier) divide the whole loss by the penalty weight
            # once the penalty applies; Adam restarts there (_optimiser_reset_epoch), else its second moment, still
            # holding the warm-up's larger gradients, shrinks the steps ~λ-fold: an early stop ERM does not get
            terms = {k: v / self.lambda_inv for k, v in terms.items()}
        return terms

    def loss_terms(self, X, y, environments=None, warm: bool = False) -> dict[str, torch.Tensor]:
        """The weighted loss terms (with autograd graphs) of the fitted network on (X, y) — for inspection/tests.

        ``environments``: integer ids (n,) or None; with strategy 'learned' they are computed by the network.
        """
        Xs = torch.from_numpy(self._check_predict_data(X))
        y01 = torch.from_numpy((np.asarray(y) == self.classes_[1]).astype(np.float32))
        env_w = None
        if environments is not None:
            env_w = torch.from_numpy(one_hot(np.asarray(environments), self.n_environments_))
        self.network_.train()
        terms = self._terms(Xs, y01, env_w, warm, self.beta_kl)
        self.network_.eval()
        return terms

    # ---- outputs ----------------------------------------------------------------------------------------
    def _forward_logits(self, x: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        return net(x, sample=False)["logit"]

    def factors(self, X) -> dict[str, np.ndarray]:
        """Posterior means ``{"invariant": μ_inv, "causal": μ_c, "noise": μ_n}``, each (n, latent_dim), float64
        (computed by the float64 copy of the network, so a row's factors do not depend on the batch)."""
        Xs = torch.from_numpy(self._check_predict_data(X).astype(np.float64))
        net = self._scoring_network()
        with torch.no_grad():
            out = net(Xs, sample=False)
        return {"invariant": out["mu_inv"].numpy(), "causal": out["mu_c"].numpy(), "noise": out["mu_n"].numpy()}

    def transform(self, X) -> np.ndarray:
        """(n, d) -> (n, 3·latent_dim) = [μ_inv | μ_c | μ_n]."""
        f = self.factors(X)
        return np.hstack([f["invariant"], f["causal"], f["noise"]])

    def infer_environments(self, X) -> np.ndarray:
        """Environment ids of new rows under the learned assigner (strategy 'learned') or the causal probe."""
        f = torch.from_numpy(self.factors(X)["causal"].astype(np.float32))
        with torch.no_grad():
            head = (self.network_.environment_assigner if self.environment_strategy_ == "learned"
                    else self.network_.environment_probe)
            return head(f).argmax(dim=1).numpy()
