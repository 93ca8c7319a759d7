"""DA-MRS's positive and negative controls on planted data (:mod:`recsys_kit.damrs.synthetic`).

- positive: true-similarity features with planted wrong feature edges + 20% injected interactions. DA-MRS must
  beat the backbone and the raw multimodal graph without denoising (``raw-graph``: IIG views, no consistency
  mask, plain BPR, no AU/AI), and its w⁺ must rank the injected pairs below the genuine ones (AUC > 0.8).
- negative: random features, clean interactions: DA-MRS's gain over the backbone must vanish.
- self-loop check: random features + injected interactions, DA-MRS with and without each item in its own
  neighbour lists: if w⁺ still finds the injected pairs with random content only when the item is in its own
  list, the weight mirrors the collaborative score rather than the content.
Each runs at several densities (training interactions per user). The behaviour graph is off in every control
arm (``use_iib=False``) so that the content path alone is tested. Every row also carries the data's ceilings
(``ceiling_*``, :func:`recsys_kit.damrs.synthetic.planted_ceilings`): e.g. at ~20 interactions per user the
plain backbone already reaches the Bayes ranker's Recall@20, so no method can show a gain there.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from recsys_kit.damrs.diagnostics import injected_pair_scores
from recsys_kit.damrs.prepare import read_injected
from recsys_kit.damrs.synthetic import planted_ceilings, planted_dataset
from recsys_kit.damrs.train import DAMRSConfig, TrainConfig, train_damrs

DENSITIES = {"sparse": 5, "dense": 20}
# (control, features, add_ratio, arms)
SCENARIOS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "positive": ("true", 0.2, ("LightGCN", "raw-graph", "DA-MRS")),
    "negative": ("random", 0.0, ("LightGCN", "DA-MRS")),
    "selfloop": ("random", 0.2, ("DA-MRS", "DA-MRS-noself")),
}
# small planted data: the arms differ only in the DA-MRS switches (identical trainer, negatives, stopping)
CONTROL_DATA: dict[str, Any] = {"n_users": 400, "n_items": 1000, "n_clusters": 20, "wrong_edge_share": 0.4}
# ai_max_items: AI anchors sub-sampled per batch (CPU knob, as the ml-100k benchmark's 256)
CONTROL_TRAIN = {"learning_rate": 5e-3, "stopping_step": 10, "train_batch_size": 512, "embedding_size": 32,
                 "ai_max_items": 128}


def control_arm(method: str) -> DAMRSConfig:
    """Model config of a control arm (the behaviour graph off everywhere: the content path is under test)."""
    d = CONTROL_TRAIN["embedding_size"]
    arms = {
        "LightGCN": DAMRSConfig.plain_backbone("lightgcn", embedding_size=d),
        "raw-graph": DAMRSConfig(embedding_size=d, use_iib=False, use_consistency=False, use_dbpr=False,
                                 kl_weight=0.0, neighbor_weight=0.0),
        "DA-MRS": DAMRSConfig(embedding_size=d, use_iib=False, ai_max_items=CONTROL_TRAIN["ai_max_items"]),
        "DA-MRS-noself": DAMRSConfig(embedding_size=d, use_iib=False, include_self=False,
                                     ai_max_items=CONTROL_TRAIN["ai_max_items"]),
    }
    if method not in arms:
        raise KeyError(f"unknown control arm {method!r}; known: {sorted(arms)}")
    return arms[method]


def control_dataset(root: Path, control: str, density: str, seed: int, **overrides: Any) -> Path:
    """The planted dataset folder of one (control, density, seed)."""
    features, add_ratio, _ = SCENARIOS[control]
    data = {**CONTROL_DATA, **overrides}
    return planted_dataset(root, f"{control}-{density}-s{seed}", features=features, add_ratio=add_ratio,
                           train_per_user=DENSITIES[density], seed=seed, **data)


def run_control_arm(root: Path, control: str, density: str, method: str, seed: int, epochs: int,
                    runs: Path, **data_overrides: Any) -> dict[str, Any]:
    """Train one control arm and return its row (test metrics, epochs, and the injected-pair scores)."""
    folder = control_dataset(root, control, density, seed, **data_overrides)
    model = control_arm(method)
    cfg = TrainConfig(model=model, epochs=epochs, seed=seed, learning_rate=CONTROL_TRAIN["learning_rate"],
                      stopping_step=CONTROL_TRAIN["stopping_step"],
                      train_batch_size=CONTROL_TRAIN["train_batch_size"])
    start = time.perf_counter()
    result = train_damrs(folder, cfg, runs / f"{folder.name}-{method}")
    row: dict[str, Any] = {"dataset": f"control-{control}-{density}", "control": control, "density": density,
                           "train_per_user": DENSITIES[density], "method": method, "seed": seed,
                           "train_time_s": time.perf_counter() - start, "best_epoch": result.best_epoch,
                           "epochs_run": result.epochs_run, "valid_recall@20": result.valid["recall@20"]}
    row.update({f"test_{k}": v for k, v in result.test.items()})
    if SCENARIOS[control][1] > 0:
        row.update(injected_pair_scores(result, read_injected(folder)))
    # what any model could reach on this data (Bayes ranker's Recall@20, AUC ceilings): a gain or AUC bar above
    # them cannot be met by any method, so the claims say so instead of blaming DA-MRS
    row.update({f"ceiling_{key}": value for key, value in planted_ceilings(folder).items()})
    return row


def control_plan(densities: list[str], controls: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(control, density, method) triples."""
    return [(c, d, m) for c in (controls or list(SCENARIOS)) for d in densities for m in SCENARIOS[c][2]]


def control_settings() -> dict[str, Any]:
    """What the controls ran with (for the results' config)."""
    return {"densities": DENSITIES, "data": CONTROL_DATA, "scenarios": {k: {"features": v[0], "add_ratio": v[1], "arms": list(v[2])}
                                                  for k, v in SCENARIOS.items()},
            "train": CONTROL_TRAIN, "arms": {m: dataclasses.asdict(control_arm(m))
                                             for m in ("LightGCN", "raw-graph", "DA-MRS", "DA-MRS-noself")}}
