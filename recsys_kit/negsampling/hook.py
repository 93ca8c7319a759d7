"""The hook that plugs any sampler into RecBole's own ``Config``/``create_dataset``/``data_preparation``/``Trainer``.

Usage with RecBole's own models (no fork)::

    config = recbole_config("BPR", config_dict={...})          # or recsys_kit.negsampling.negsampling_config
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = BPR(config, train.dataset)
    trainer = NegSamplingTrainer(config, model, get_sampler("dns", n_candidates=16))   # the one extra line
    trainer.fit(train, valid)                                  # RecBole's loop, early stopping, checkpoints
    trainer.evaluate(test)                                     # RecBole's full-ranking evaluator

``NegSamplingTrainer`` subclasses RecBole's ``Trainer`` and overrides only ``_train_epoch``: the train
loader is swapped for :class:`PositiveTrainDataLoader` (RecBole's loader minus its own negatives), and each
batch's loss is ``sampler.training_loss(model, interaction)`` — by default RecBole's ``calculate_loss`` with
the sampler's negative in ``neg_item_id``. It also calls the sampler's epoch/step hooks, trains sampler
parameters (DENS gates) with their own Adam at the model's learning rate, and records per-epoch wall/CPU
time and the false-negative rate (share of sampled negatives that are held-out valid/test positives).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from recbole.data.dataloader.general_dataloader import TrainDataLoader
from recbole.trainer import Trainer

from recsys_kit.negsampling.base import NegativeSampler, PositiveIndex, SamplingContext, context_from_arrays
from recsys_kit.recbole_compat import patch_graph_models
from shared.errors import DataError, TrainingDivergedError

# importing the plug-in makes RecBole's own Config/models/Trainer work on today's SciPy and torch (idempotent)
patch_graph_models()


class PositiveTrainDataLoader(TrainDataLoader):
    """RecBole's ``TrainDataLoader`` yielding positives only: negatives come from a :class:`NegativeSampler`."""

    def _neg_sampling(self, inter_feat):
        return inter_feat


def _pairs(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    inter = dataset.inter_feat
    return inter[dataset.uid_field].numpy(), inter[dataset.iid_field].numpy()


def known_negatives_from_ratings(dataset: Any, max_rating: float = 2.0, inter_path: str | Path | None = None) -> PositiveIndex:
    """(user, item) pairs rated ``<= max_rating`` in the raw ``.inter`` file, as a :class:`PositiveIndex`.

    Pairs whose user or item is unknown to ``dataset`` (e.g. only ever rated low) are dropped.
    """
    config = dataset.config
    path = Path(inter_path) if inter_path else Path(config["data_path"]) / f"{config['dataset']}.inter"
    if not path.is_file():
        raise DataError(f"known negatives need the raw interactions file {path}")
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    rating_field = config["RATING_FIELD"] or "rating"
    if rating_field not in frame.columns:
        raise DataError(f"{path.name} has no '{rating_field}' column; the predefined sampler needs explicit ratings")
    low = frame[pd.to_numeric(frame[rating_field], errors="coerce") <= max_rating]
    user_ids, item_ids = dataset.field2token_id[dataset.uid_field], dataset.field2token_id[dataset.iid_field]
    users = low[dataset.uid_field].map(user_ids)
    items = low[dataset.iid_field].map(item_ids)
    keep = users.notna() & items.notna()
    return PositiveIndex(users[keep].to_numpy(np.int64), items[keep].to_numpy(np.int64),
                         dataset.user_num, dataset.item_num)


def build_context(train_dataset: Any, heldout_datasets: tuple[Any, ...] = (), negative_max_rating: float | None = None,
                  with_kg: bool = False, max_epochs: int | None = None) -> SamplingContext:
    """A :class:`SamplingContext` from RecBole's train split (+ optional held-out splits, known negatives, KG)."""
    users, items = _pairs(train_dataset)
    extra: dict[str, Any] = {"max_epochs": int(max_epochs or train_dataset.config["epochs"] or 1)}
    if heldout_datasets:
        pairs = [_pairs(d) for d in heldout_datasets]
        extra["heldout"] = PositiveIndex(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]),
                                         train_dataset.user_num, train_dataset.item_num)
    if negative_max_rating is not None:
        extra["known_negatives"] = known_negatives_from_ratings(train_dataset, negative_max_rating)
    if with_kg:
        from recsys_kit.negsampling.knowledge import load_knowledge_graph

        config = train_dataset.config
        extra["kg"] = load_knowledge_graph(config["data_path"], config["dataset"],
                                           train_dataset.field2token_id[train_dataset.iid_field], train_dataset.item_num)
    return context_from_arrays(users, items, train_dataset.user_num, train_dataset.item_num, **extra)


def _invalidate_eval_cache(model: torch.nn.Module) -> None:
    """Drop cached full-sort embeddings (LightGCN's ``restore_user_e``/``restore_item_e``).

    RecBole's ``calculate_loss`` does this itself; samplers with their own loss (MixGCF, DENS, PRIS, T-CE)
    would otherwise leave a stale cache that evaluation — and the saved checkpoint — would use (brief §5.4).
    """
    for name in getattr(model, "other_parameter_name", []) or []:
        if name.startswith("restore_") and getattr(model, name, None) is not None:
            setattr(model, name, None)


class NegSamplingTrainer(Trainer):
    """RecBole's ``Trainer`` whose training negatives come from a :class:`NegativeSampler`."""

    def __init__(self, config: Any, model: torch.nn.Module, sampler: NegativeSampler,
                 context: SamplingContext | None = None) -> None:
        super().__init__(config, model)
        self.sampler = sampler
        self.context = context
        self.sampler_optimizer: torch.optim.Optimizer | None = None
        self.epoch_wall_s: list[float] = []
        self.epoch_cpu_s: list[float] = []
        self.false_negative_rate: list[float] = []
        self._fn_hits = self._fn_total = 0.0

    def bind(self, train_data: Any) -> None:
        """Bind the sampler to the training split (once), building the context when none was given."""
        if self.sampler.ctx is not None:
            return
        if self.context is None:
            self.context = build_context(train_data.dataset, with_kg=self.sampler.family == "knowledge")
        if self.sampler.seed is None:
            self.sampler.generator.manual_seed(int(self.config["seed"]))
        self.sampler.bind(self.context)
        if hasattr(self.sampler, "build_gates"):
            self.sampler.build_gates(self.model)
        params = self.sampler.parameters()
        if params:
            self.sampler_optimizer = torch.optim.Adam(params, lr=self.config["learning_rate"])

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """RecBole's ``fit`` on a positives-only copy of ``train_data`` with the sampler bound."""
        if not isinstance(train_data, PositiveTrainDataLoader):
            train_data = PositiveTrainDataLoader(self.config, train_data.dataset, train_data._sampler, shuffle=True)
        self.bind(train_data)
        return super().fit(train_data, valid_data, verbose=verbose, saved=saved, show_progress=show_progress,
                           callback_fn=callback_fn)

    def _count_false_negatives(self, users: torch.Tensor) -> None:
        held = self.context.heldout if self.context is not None else None
        chosen = self.sampler.last_negatives
        if held is None or chosen is None:
            return
        items = chosen.items
        users = users.cpu().reshape(-1, *([1] * (items.dim() - 1))).expand_as(items)
        hit = held.contains(users, items).float()
        weights = chosen.weights if chosen.weights is not None else torch.full_like(hit, 1.0 / hit.shape[-1] if hit.dim() > 1 else 1.0)
        self._fn_hits += float((hit * weights).sum())
        self._fn_total += float(weights.sum())

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        from shared.progress import progress

        self.bind(train_data)
        wall, cpu = time.perf_counter(), time.process_time()
        self.sampler.on_epoch_start(self.model, epoch_idx)
        self.model.train()
        total = 0.0
        self._fn_hits = self._fn_total = 0.0
        batches = (progress(train_data, total=len(train_data), desc=f"{self.sampler.name} epoch {epoch_idx}",
                            unit="batch") if show_progress else train_data)
        for interaction in batches:
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad()
            if self.sampler_optimizer is not None:
                self.sampler_optimizer.zero_grad()
            _invalidate_eval_cache(self.model)
            loss = self.sampler.training_loss(self.model, interaction)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"non-finite training loss with sampler {self.sampler.name!r} at epoch "
                                            f"{epoch_idx}; lower learning_rate or the sampler's hardness")
            loss.backward()
            if self.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
            self.optimizer.step()
            if self.sampler_optimizer is not None:
                self.sampler_optimizer.step()
            self._count_false_negatives(interaction[self.model.USER_ID])
            self.sampler.after_step(self.model, interaction)
            total += loss.item()
        self.epoch_wall_s.append(time.perf_counter() - wall)
        self.epoch_cpu_s.append(time.process_time() - cpu)
        if self._fn_total:
            self.false_negative_rate.append(self._fn_hits / self._fn_total)
        return total
