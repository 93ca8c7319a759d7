"""Training and evaluation of the emotion-aware recommender (brief §2.4 schedule, scaled to a CPU).

``fit_recommender`` runs the optional pre-training stage (context includes the turn, targets its entities,
plain CE) and then recommendation fine-tuning with the feedback-weighted loss, AdamW + linear warmup/decay,
gradient clipping, and the best-validation-loss checkpoint — the official ``train_pre.py``/``train_rec.py`` loop.
Recommendation fine-tuning stops early on validation, by the same rule for every arm: the *unweighted* CE on
the validation split ([R]: one criterion for all arms, so an arm's loss weights cannot change when it stops),
``patience`` epochs without improvement, at most ``epochs`` epochs; the best epoch's weights are kept.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from recsys_kit.ecr.kg import KnowledgeGraph
from recsys_kit.ecr.labels import PAD_EMOTION
from recsys_kit.ecr.rec.loss import emotion_weights, feedback_weights, weighted_cross_entropy
from recsys_kit.ecr.rec.metrics import rank_metrics
from recsys_kit.ecr.rec.model import ECRRecommender, RecModelConfig
from recsys_kit.ecr.rec.samples import RecSample, require_samples
from recsys_kit.ecr.text import TextFeaturizer, make_featurizer
from shared.config import save_config
from shared.errors import DataError, TrainingDivergedError
from shared.progress import progress


@dataclasses.dataclass
class RecTrainConfig:
    """Training knobs (paper/code values in comments; defaults are CPU-sized)."""

    model: RecModelConfig = dataclasses.field(default_factory=RecModelConfig)
    epochs: int = 30  # the most epochs; training stops earlier on validation (code: 5 fixed epochs with a frozen
    # 768-d PLM; a from-scratch CPU model needs more, and a fixed short budget stops before the emotion path is used)
    patience: int = 3  # stop after this many epochs without a lower validation loss (None/0: run all epochs)
    min_delta: float = 1e-4  # an improvement smaller than this does not reset the patience
    pretrain_epochs: int = 0  # code: 10 (train_pre.py)
    batch_size: int = 64  # code: 128
    lr: float = 1e-3  # code: 1e-4 (with a 768-d frozen PLM); a tiny model trained from scratch needs more
    pretrain_lr: float = 1e-3  # code: 5e-4
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    grad_clip: float = 1.0
    loss_weighting: Literal["feedback", "emotion", "none"] = "feedback"
    like_weight: float = 2.0
    dislike_weight: float = 1.0
    not_say_weight: float = 0.5
    loss_over: Literal["entities", "items"] = "entities"  # code: softmax over all entities
    text_features: Literal["tfidf", "minilm"] = "tfidf"
    eval_batch_size: int = 32  # per-batch AUC depends on it (code: 32)
    seed: int = 0


class Encoder:
    """Turns :class:`RecSample` lists into padded tensors; turn features are computed once per unique text."""

    def __init__(self, featurizer: TextFeaturizer, max_turns: int):
        self.featurizer = featurizer
        self.max_turns = max_turns
        self._cache: dict[str, np.ndarray] = {}

    def features(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for text, row in zip(todo, self.featurizer.transform(todo)):
                self._cache[text] = row

    def batch(self, samples: Sequence[RecSample]) -> dict[str, torch.Tensor]:
        """Padded tensors for one batch (shapes in comments)."""
        self.features([t for s in samples for t in s.context[-self.max_turns:]])
        B = len(samples)
        n_t = max(1, max(len(s.context[-self.max_turns:]) for s in samples))
        n_e = max(1, max(len(s.mentions) for s in samples))
        n_f = max(1, max((len(m.labels) for s in samples for m in s.mentions), default=1))
        dim = self.featurizer.dim
        text = np.zeros((B, n_t, dim), dtype=np.float32)
        text_mask = np.zeros((B, n_t), dtype=bool)
        position = np.zeros((B, n_t), dtype=np.int64)
        entities = np.zeros((B, n_e), dtype=np.int64)
        entity_mask = np.zeros((B, n_e), dtype=bool)
        labels = np.full((B, n_e, n_f), PAD_EMOTION, dtype=np.int64)
        probs = np.zeros((B, n_e, n_f), dtype=np.float32)
        for b, s in enumerate(samples):
            turns = s.context[-self.max_turns:]
            for q, turn in enumerate(turns):
                text[b, q] = self._cache[turn]
                position[b, q] = len(turns) - 1 - q  # distance from the latest turn
            text_mask[b, : len(turns)] = True
            for j, m in enumerate(s.mentions):
                entities[b, j] = m.entity
                entity_mask[b, j] = True
                labels[b, j, : len(m.labels)] = m.labels
                probs[b, j, : len(m.probs)] = m.probs
        if not text_mask.any(axis=1).all():
            text_mask[:, 0] = True  # an empty context still needs one (zero) turn to attend to
        return {"text": torch.from_numpy(text), "text_mask": torch.from_numpy(text_mask),
                "turn_position": torch.from_numpy(position), "entities": torch.from_numpy(entities),
                "entity_mask": torch.from_numpy(entity_mask), "emotion_labels": torch.from_numpy(labels),
                "emotion_probs": torch.from_numpy(probs),
                "target": torch.tensor([s.target for s in samples], dtype=torch.long)}


@dataclasses.dataclass
class TrainedRecommender:
    """A trained model with what it needs to rank: the encoder, the item ids, the config and the history."""

    model: ECRRecommender
    encoder: Encoder
    item_ids: np.ndarray
    config: RecTrainConfig
    history: list[dict[str, float]]

    def scores(self, samples: Sequence[RecSample], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(item scores (n, n_items), p(gold) over all entities (n,))."""
        self.model.eval()
        items = torch.from_numpy(self.item_ids)
        all_scores, gold = [], []
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = self.encoder.batch(samples[start:start + batch_size])
                logits = self.model(batch)  # (B, N)
                all_scores.append(logits[:, items].numpy())
                gold.append(torch.softmax(logits, dim=-1).gather(1, batch["target"][:, None]).squeeze(1).numpy())
        return np.concatenate(all_scores), np.concatenate(gold)

    def evaluate(self, samples: Sequence[RecSample]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Metrics plus per-instance ranks/p(gold)/feedback (for paired bootstrap CIs)."""
        require_samples(samples, "evaluation")
        scores, gold_prob = self.scores(samples, self.config.eval_batch_size)
        index = {int(e): i for i, e in enumerate(self.item_ids.tolist())}
        gold_col = np.array([index[s.target] for s in samples])
        gold_score = scores[np.arange(len(samples)), gold_col]
        ranks = (scores > gold_score[:, None]).sum(axis=1)  # 0-based rank among items
        feedback = [s.feedback for s in samples]
        metrics = rank_metrics(ranks, gold_prob, feedback, batch_size=self.config.eval_batch_size)
        return metrics, {"ranks": ranks, "gold_prob": gold_prob, "feedback": np.array(feedback)}

    def recommend(self, sample: RecSample, k: int = 10) -> list[int]:
        """Top-k item entity ids for one context."""
        scores, _ = self.scores([sample])
        return [int(self.item_ids[i]) for i in np.argsort(-scores[0])[:k]]

    def save(self, folder: str | Path) -> Path:
        """Write weights, config and the fitted featurizer to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "model.pt.tmp"
        torch.save(self.model.state_dict(), tmp)
        tmp.replace(folder / "model.pt")
        save_config(self.config, folder / "config.yaml")
        with (folder / "featurizer.pkl.tmp").open("wb") as handle:
            pickle.dump(self.encoder.featurizer if not hasattr(self.encoder.featurizer, "_model") else None, handle)
        (folder / "featurizer.pkl.tmp").replace(folder / "featurizer.pkl")
        np.save(folder / "item_ids.npy", self.item_ids)
        return folder


def load_recommender(folder: str | Path, kg: KnowledgeGraph, cooccurrence: sp.csr_matrix | None) -> TrainedRecommender:
    """Reload a :meth:`TrainedRecommender.save` folder (the KG and co-occurrence matrix must be the same)."""
    from shared.config import load_config

    folder = Path(folder)
    if not (folder / "model.pt").is_file():
        raise DataError(f"no trained recommender in {folder} (model.pt missing); run 'paperkits recsys ecr train-rec'")
    config = load_config(RecTrainConfig, folder / "config.yaml")
    with (folder / "featurizer.pkl").open("rb") as handle:
        featurizer = pickle.load(handle) or make_featurizer("minilm")
    model = ECRRecommender(kg, config.model, cooccurrence if config.model.use_global else None)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    return TrainedRecommender(model, Encoder(featurizer, config.model.max_turns), np.load(folder / "item_ids.npy"),
                              config, [])


def _loss(model: ECRRecommender, batch: dict[str, torch.Tensor], samples: Sequence[RecSample],
          config: RecTrainConfig, items: torch.Tensor | None, weighted: bool) -> torch.Tensor:
    logits = model(batch)
    targets = batch["target"]
    if items is not None:  # restrict the softmax to items; targets become item positions
        lookup = torch.full((logits.shape[1],), -1, dtype=torch.long)
        lookup[items] = torch.arange(len(items))
        logits, targets = logits[:, items], lookup[targets]
    weights = None
    if weighted and config.loss_weighting == "feedback":
        weights = feedback_weights([s.feedback for s in samples], {"like": config.like_weight,
                                   "dislike": config.dislike_weight, "not_say": config.not_say_weight})
    elif weighted and config.loss_weighting == "emotion":
        weights = emotion_weights([s.next_emotion for s in samples])
    return weighted_cross_entropy(logits, targets, weights)


def _run_stage(model, encoder, train, valid, config, epochs, lr, weighted, items, desc, history):
    if epochs <= 0 or not train:
        return
    generator = np.random.default_rng(config.seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=config.weight_decay)
    steps = epochs * math.ceil(len(train) / config.batch_size)
    warmup = max(1, int(config.warmup_frac * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    best, best_state, best_epoch = math.inf, None, 0
    for epoch in range(epochs):
        model.train()
        order = generator.permutation(len(train))
        total = 0.0
        for start in progress(range(0, len(train), config.batch_size), desc=f"{desc} epoch {epoch + 1}/{epochs}"):
            chunk = [train[i] for i in order[start:start + config.batch_size]]
            loss = _loss(model, encoder.batch(chunk), chunk, config, items, weighted)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"{desc}: non-finite loss at epoch {epoch + 1}; lower the learning rate "
                                            f"(now {lr}) or raise grad_clip")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(chunk)
        record = {"stage": desc, "epoch": epoch + 1, "train_loss": total / len(train)}
        if valid:
            model.eval()
            with torch.no_grad():  # unweighted: the same stopping criterion for every arm
                losses = [float(_loss(model, encoder.batch(valid[s:s + 64]), valid[s:s + 64], config, items, False))
                          * len(valid[s:s + 64]) for s in range(0, len(valid), 64)]
            record["valid_loss"] = sum(losses) / len(valid)
            if record["valid_loss"] < best - config.min_delta:
                best, best_epoch = record["valid_loss"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            record["best_epoch"] = best_epoch + 1
        history.append(record)
        if valid and config.patience and epoch - best_epoch >= config.patience:
            break  # early stopping
    if best_state is not None:
        model.load_state_dict(best_state)


def fit_recommender(kg: KnowledgeGraph, train: Sequence[RecSample], valid: Sequence[RecSample],
                    config: RecTrainConfig, cooccurrence: sp.csr_matrix | None = None,
                    pretrain: Sequence[RecSample] = (), featurizer: TextFeaturizer | None = None,
                    out: str | Path | None = None) -> TrainedRecommender:
    """Train ECR (or the baseline, via ``config.model``) and return the best-validation-loss model."""
    require_samples(train, "training")
    torch.manual_seed(config.seed)
    if featurizer is None:
        featurizer = make_featurizer(config.text_features, dim=config.model.text_dim, seed=config.seed)
        featurizer.fit(list(dict.fromkeys(t for s in list(train) + list(pretrain) for t in s.context)))
    model_config = dataclasses.replace(config.model, text_dim=featurizer.dim)
    config = dataclasses.replace(config, model=model_config)
    model = ECRRecommender(kg, model_config, cooccurrence if model_config.use_global else None)
    encoder = Encoder(featurizer, model_config.max_turns)
    items = torch.from_numpy(kg.item_ids) if config.loss_over == "items" else None
    history: list[dict[str, float]] = []
    _run_stage(model, encoder, list(pretrain), [], config, config.pretrain_epochs, config.pretrain_lr, False,
               None, "pre-train", history)
    _run_stage(model, encoder, list(train), list(valid), config, config.epochs, config.lr, True, items,
               "recommend", history)
    trained = TrainedRecommender(model, encoder, np.asarray(kg.item_ids), config, history)
    if out is not None:
        trained.save(out)
    return trained
