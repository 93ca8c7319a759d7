"""Brief §8.3's pilot, replicated as a diagnostic: does a plain invariance penalty recover the disguise drop?

The brief's sanity check (single seed, "not a result to quote"): MiniLM headline embeddings plus an 8-d
"thumbnail-style" disguise feature (+1.5 mean shift when disguised, N(0, 1) noise), three training environments
with P(disguise | bait) / P(disguise | non-bait) = 0.1/0.9, 0.2/0.8, 0.3/0.7 (assigned at random, independent of
the text), ID test 0.2/0.8, OOD test 0.9/0.1, a 60/20/20 split; a plain MLP (one hidden layer of 128, 60
full-batch Adam epochs) drops ~18 F1 points OOD and V-REx (weight 100 after 10 epochs) recovers ~12.

Here every model runs on the same features over several seeds, twice: with the raw features, as the pilot, and
with every column standardised on the training rows. ``plain`` is the pilot's MLP (written here, in torch, as
the brief describes it); ``kit`` is :class:`~safety_kit.clickbait.baselines.InvariantMLPClassifier`, whose
per-group ``Linear → LayerNorm`` projection puts both groups on one scale. What it showed (issue 21): the
pilot's drop and recovery reproduce with the raw features, and vanish once the columns share a scale — the
unit-norm 384-d embedding has per-column s.d. ≈ 0.05 against the disguise's 1, so a plain MLP fits the
disguise first. The kit's detectors are not exposed to that, which is why the benchmarks plant the shortcut at
matched scale (:func:`safety_kit.clickbait.synthetic.planted_shortcut`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from safety_kit.clickbait.synthetic import TEST_ID, TEST_OOD, TRAIN_RATES, draw_disguise
from shared.errors import ConfigError, DataError

MODELS = ("plain", "kit")


@dataclass(frozen=True)
class PilotConfig:
    """The pilot's settings (brief §8.3); ``penalties`` 0 = ERM."""

    disguise_dim: int = 8
    disguise_shift: float = 1.5
    hidden: int = 128
    epochs: int = 60
    warmup_epochs: int = 10  # V-REx at weight 1 before, the full weight from here on
    learning_rate: float = 1e-3
    penalties: tuple[float, ...] = (0.0, 100.0, 1000.0)


def pilot_data(embeddings: np.ndarray, labels: np.ndarray, seed: int, cfg: PilotConfig = PilotConfig()):
    """``(X, y, env, train, test_id, test_ood)``: the embeddings with the disguise columns appended."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise DataError(f"pilot: embeddings must be (n, d) with one label per row, got {embeddings.shape} and "
                        f"{labels.shape}")
    if len(labels) < 50 or set(np.unique(labels)) != {0, 1}:
        raise DataError("pilot: needs at least 50 rows with both labels 0 and 1")
    rng = np.random.default_rng(seed)
    n = len(labels)
    order = rng.permutation(n)
    train, test_id, test_ood = order[: int(0.6 * n)], order[int(0.6 * n): int(0.8 * n)], order[int(0.8 * n):]
    env = rng.integers(0, len(TRAIN_RATES), n)  # random: the environment is not readable from the text
    flags = np.zeros(n, dtype=bool)
    for rows, rates in ((train, list(TRAIN_RATES)), (test_id, TEST_ID), (test_ood, TEST_OOD)):
        flags[rows] = draw_disguise(labels[rows], rates, env[rows], rng)
    disguise = rng.normal(size=(n, cfg.disguise_dim)) + cfg.disguise_shift * flags[:, None]
    X = np.hstack([embeddings, disguise]).astype(np.float32)
    return X, labels, env, train, test_id, test_ood


def fit_plain_mlp(X: np.ndarray, y: np.ndarray, env: np.ndarray, penalty: float, seed: int,
                  cfg: PilotConfig = PilotConfig()):
    """The pilot's MLP, full batch; ``penalty`` > 0 adds V-REx (variance of the per-environment mean BCE) at
    weight 1 for ``warmup_epochs``, then at ``penalty`` with the loss divided by it and Adam restarted (the V-REx /
    DomainBed recipe, the same as the kit's baselines)."""
    import torch

    from safety_kit.clickbait.losses import vrex_penalty

    torch.manual_seed(seed)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float32)
    env_weights = torch.as_tensor(np.unique(env) == np.asarray(env)[:, None], dtype=torch.float32)  # one-hot (n, E)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, 1))
    optimiser = torch.optim.Adam(net.parameters(), cfg.learning_rate)
    for epoch in range(cfg.epochs):
        if penalty > 0 and epoch == cfg.warmup_epochs:
            optimiser = torch.optim.Adam(net.parameters(), cfg.learning_rate)
        losses = torch.nn.functional.binary_cross_entropy_with_logits(net(Xt).squeeze(1), yt, reduction="none")
        weight = (penalty if epoch >= cfg.warmup_epochs else 1.0) if penalty > 0 else 0.0
        loss = losses.mean() + weight * vrex_penalty(losses, env_weights)
        if weight > 1.0:
            loss = loss / weight
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pilot MLP: loss is {loss.item()} at epoch {epoch} (penalty {penalty})")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (net(torch.as_tensor(rows)).squeeze(1) > 0).numpy().astype(int)

    return predict


def _fit_kit(X, y, env, penalty: float, seed: int, cfg: PilotConfig, text_dim: int):
    from safety_kit.clickbait.baselines import InvariantMLPClassifier

    model = InvariantMLPClassifier("vrex" if penalty > 0 else "erm",
                                   feature_groups=[("text", 0, text_dim), ("disguise", text_dim, X.shape[1])],
                                   penalty_weight=max(penalty, 1.0), penalty_anneal_epochs=cfg.warmup_epochs,
                                   max_epochs=cfg.epochs, batch_size=len(y), learning_rate=cfg.learning_rate,
                                   random_state=seed)
    model.fit(X, y, environments=env if penalty > 0 else None)
    return model.predict


def run_pilot(embeddings: np.ndarray, labels: np.ndarray, seeds: Sequence[int], cfg: PilotConfig = PilotConfig(),
              models: Sequence[str] = ("plain", "kit")) -> list[dict]:
    """One row per (model, scaling, penalty, seed): ID / OOD bait-class F1 on the pilot's splits."""
    from sklearn.metrics import f1_score

    unknown = set(models) - set(MODELS)
    if unknown:
        raise ConfigError(f"pilot: unknown models {sorted(unknown)}; use any of {list(MODELS)}")
    text_dim = np.asarray(embeddings).shape[1]

    def fit(model: str, X, y, env, penalty: float, seed: int):
        if model == "plain":
            return fit_plain_mlp(X, y, env, penalty, seed, cfg)
        return _fit_kit(X, y, env, penalty, seed, cfg, text_dim)

    rows = []
    for seed in seeds:
        X, y, env, train, test_id, test_ood = pilot_data(embeddings, labels, seed, cfg)
        for scaling in ("raw", "standardised"):
            Z = X if scaling == "raw" else (X - X[train].mean(0)) / (X[train].std(0) + 1e-6)
            for model in models:
                for penalty in cfg.penalties:
                    predict = fit(model, Z[train], y[train], env[train], penalty, seed)
                    rows.append({"model": model, "scaling": scaling, "penalty": penalty, "seed": int(seed),
                                 "id_f1": float(f1_score(y[test_id], predict(Z[test_id]), zero_division=0)),
                                 "ood_f1": float(f1_score(y[test_ood], predict(Z[test_ood]), zero_division=0))})
    return rows


def summarise_pilot(rows: list[dict]) -> dict:
    """Mean ID/OOD F1 per (model, scaling, penalty) and each penalty's paired OOD gain over ERM (mean, SE)."""
    out: dict = {}
    keys = sorted({(r["model"], r["scaling"]) for r in rows})
    for model, scaling in keys:
        cell = [r for r in rows if r["model"] == model and r["scaling"] == scaling]
        erm = {r["seed"]: r["ood_f1"] for r in cell if r["penalty"] == 0}
        entry = {}
        for penalty in sorted({r["penalty"] for r in cell}):
            group = [r for r in cell if r["penalty"] == penalty]
            item = {"id_f1": float(np.mean([r["id_f1"] for r in group])),
                    "ood_f1": float(np.mean([r["ood_f1"] for r in group])), "n_seeds": len(group)}
            diffs = [r["ood_f1"] - erm[r["seed"]] for r in group if r["seed"] in erm]
            if penalty > 0 and diffs:
                item["ood_gain_vs_erm"] = float(np.mean(diffs))
                item["ood_gain_se"] = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else None
            entry[f"penalty_{penalty:g}"] = item
        out[f"{model}/{scaling}"] = entry
    return out


def describe_pilot(summary: dict) -> str:
    """One clause per model/scaling: ERM's ID → OOD F1 and every penalty's paired OOD gain (no best-of pick)."""
    parts = []
    for key, entry in summary.items():
        erm = entry.get("penalty_0")
        if erm is None:
            continue
        gains = [f"{name.removeprefix('penalty_')}: {v['ood_gain_vs_erm']:+.3f}"
                 + (f" (SE {v['ood_gain_se']:.3f})" if v.get("ood_gain_se") is not None else "")
                 for name, v in entry.items() if "ood_gain_vs_erm" in v]
        text = f"{key}: ERM F1 {erm['id_f1']:.3f} ID → {erm['ood_f1']:.3f} OOD"
        parts.append(text + (f", V-REx OOD gain at weight {', '.join(gains)}" if gains else ""))
    return "; ".join(parts)
