"""Empathetic data enlargement, step 1 (brief §2.1): label every seeker turn with an emotion distribution.

Like the paper, a *labeller* (the lexicon teacher, or an LLM) annotates a subset of training seeker turns,
a *student* classifier learns from them with focal loss, and the student labels every seeker turn in every
split. The distribution is stored on the first message of each seeker block (ECR's released format).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from recsys_kit.data.redial import MENTION, Dialogue
from recsys_kit.ecr.emotion.student import EmotionClassifier, recall_at_k
from recsys_kit.ecr.emotion.teacher import LexiconTeacher
from recsys_kit.ecr.labels import EMOTIONS
from recsys_kit.ecr.text import make_featurizer
from shared.errors import ConfigError, DataError


@dataclasses.dataclass
class SeekerBlock:
    """One seeker block: where its emotion is stored and its (mention-masked) text."""

    dialogue: Dialogue
    message_index: int
    text: str


def seeker_blocks(dialogues: Sequence[Dialogue]) -> list[SeekerBlock]:
    """Every block of consecutive seeker messages, text joined, ``@id`` mentions masked as ``movie``."""
    out = []
    for dialogue in dialogues:
        current: SeekerBlock | None = None
        for i, message in enumerate(dialogue.messages):
            if dialogue.role(message) == "seeker":
                text = MENTION.sub("movie", message.text)
                if current is None:
                    current = SeekerBlock(dialogue, i, text)
                    out.append(current)
                else:
                    current.text += " " + text
            else:
                current = None
    return out


@dataclasses.dataclass
class AnnotationReport:
    """How the annotation went: student Recall@2 on held-out labeller labels, agreement with latent labels."""

    method: str
    n_labelled: int
    n_annotated: int
    student_recall_at_2: float | None = None
    labeller_recall_at_2_vs_latent: float | None = None
    student_recall_at_2_vs_latent: float | None = None
    label_shares: dict[str, float] = dataclasses.field(default_factory=dict)
    per_emotion_vs_latent: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def per_emotion_scores(predicted: Sequence[Mapping[str, float]], gold: Sequence[Sequence[str]],
                       beta: float = 0.1) -> dict[str, dict[str, float]]:
    """Per emotion: precision and recall of the labels kept at probability > β (ECR's rule, top-1 if none
    passes) against gold label sets, plus the gold support and the predicted count."""
    out = {}
    kept = []
    for annotation in predicted:
        ranked = sorted(annotation.items(), key=lambda kv: -kv[1])
        kept.append({label for label, p in ranked if p > beta} or {label for label, _ in ranked[:1]})
    for label in EMOTIONS:
        tp = sum(label in k and label in g for k, g in zip(kept, gold))
        n_pred = sum(label in k for k in kept)
        n_gold = sum(label in g for g in gold)
        out[label] = {"precision": tp / n_pred if n_pred else float("nan"),
                      "recall": tp / n_gold if n_gold else float("nan"), "support": n_gold, "predicted": n_pred}
    return out


def annotate_corpus(splits: Mapping[str, Sequence[Dialogue]], *, method: str = "student",
                    featurizer: str = "tfidf", labeller: Callable[[str], Mapping[str, float]] | None = None,
                    n_labelled: int = 5082, holdout: float = 0.2, seed: int = 0,
                    latent: Mapping[tuple[str, int], list[str]] | None = None,
                    keep_given: bool = False) -> tuple[AnnotationReport, EmotionClassifier | None]:
    """Annotate all seeker blocks of every split in place; ``splits["train"]`` supplies the labelled subset.

    ``method="teacher"`` labels everything with the labeller directly; ``"student"`` (the paper's path) labels
    ``n_labelled`` training blocks, trains the focal-loss student on them and labels everything with it.
    ``keep_given=True`` keeps every emotion already stored on a block (a user's labels, or ``annotate --method
    llm`` output): when every block has one nothing is re-annotated (method ``"given"``); otherwise the student
    learns from the given training labels (the paper's LLM-labelled subset) and labels only the blocks without.
    ``latent`` (the simulator's true labels, keyed by (conversation id, message id)) is only used to score.
    """
    if method not in {"teacher", "student"}:
        raise ConfigError(f"annotation method must be 'teacher' or 'student', got {method!r}")
    if "train" not in splits or not splits["train"]:
        raise DataError("annotate_corpus needs a non-empty 'train' split to draw labelled utterances from")
    labeller = labeller or LexiconTeacher()
    blocks = {name: seeker_blocks(dialogues) for name, dialogues in splits.items()}
    every = [b for name in splits for b in blocks[name]]
    report = AnnotationReport(method=method, n_labelled=0, n_annotated=len(every))
    classifier = None
    given = [b for b in every if _stored(b)] if keep_given else []
    if given:
        missing = [b for b in every if not _stored(b)]
        report.method, report.n_labelled, report.n_annotated = "given", len(given), len(missing)
        train_given = [b for b in blocks["train"] if _stored(b)]
        if missing:
            if len(train_given) < 10:
                raise DataError(f"{len(missing)} seeker turns lack emotion labels and only {len(train_given)} "
                                "training turns carry one; label more turns or re-annotate everything")
            report.method = "given+student"
            classifier = EmotionClassifier(make_featurizer(featurizer, dim=128, seed=seed), seed=seed)
            classifier.fit([b.text for b in train_given], [_stored(b) for b in train_given])
            for block, annotation in zip(missing, classifier.annotate([b.text for b in missing])):
                block.dialogue.messages[block.message_index].emotion = annotation
    elif method == "teacher":
        for block in every:
            block.dialogue.messages[block.message_index].emotion = dict(labeller(block.text))
        report.n_labelled = len(every)
    else:
        rng = random.Random(seed)
        pool = list(blocks["train"])
        rng.shuffle(pool)
        chosen = pool[: min(n_labelled, len(pool))]
        if len(chosen) < 10:
            raise DataError(f"only {len(chosen)} seeker turns to label; the student needs at least 10")
        labels = [dict(labeller(b.text)) for b in chosen]
        n_test = max(1, int(round(holdout * len(chosen))))
        classifier = EmotionClassifier(make_featurizer(featurizer, dim=128, seed=seed), seed=seed)
        classifier.fit([b.text for b in chosen[n_test:]], labels[n_test:])
        held = classifier.predict_proba([b.text for b in chosen[:n_test]])
        report.student_recall_at_2 = recall_at_k(held, labels[:n_test], 2)
        report.n_labelled = len(chosen)
        for block, annotation in zip(every, classifier.annotate([b.text for b in every])):
            block.dialogue.messages[block.message_index].emotion = annotation
    if latent:
        scored = [(b, latent[(b.dialogue.conversation_id, b.dialogue.messages[b.message_index].message_id)])
                  for b in every if (b.dialogue.conversation_id, b.dialogue.messages[b.message_index].message_id) in latent]
        if scored:
            gold = [{label: 1.0 for label in labels} for _, labels in scored]
            teacher_probs = _as_matrix([labeller(b.text) for b, _ in scored])
            report.labeller_recall_at_2_vs_latent = recall_at_k(teacher_probs, gold, 2)
            student_probs = _as_matrix([b.dialogue.messages[b.message_index].emotion for b, _ in scored])
            report.student_recall_at_2_vs_latent = recall_at_k(student_probs, gold, 2)
            report.per_emotion_vs_latent = per_emotion_scores([_stored(b) for b, _ in scored],
                                                              [labels for _, labels in scored])
    shares = np.zeros(len(EMOTIONS))
    for block in every:
        emotion = block.dialogue.messages[block.message_index].emotion
        for label, prob in emotion.items():
            shares[EMOTIONS.index(label)] += prob > 0.1
    report.label_shares = {label: float(shares[i] / max(1, len(every))) for i, label in enumerate(EMOTIONS)}
    return report, classifier


def _stored(block: SeekerBlock) -> dict[str, float]:
    return block.dialogue.messages[block.message_index].emotion


def _as_matrix(annotations: Sequence[Mapping[str, float]]) -> np.ndarray:
    matrix = np.zeros((len(annotations), len(EMOTIONS)), dtype=np.float32)
    for i, annotation in enumerate(annotations):
        for label, prob in annotation.items():
            matrix[i, EMOTIONS.index(label)] = prob
    return matrix


def permute_emotions(dialogues: Sequence[Dialogue], seed: int = 0) -> None:
    """Control: shuffle the emotion dicts across all seeker blocks (breaks the emotion–entity link)."""
    blocks = seeker_blocks(dialogues)
    emotions = [b.dialogue.messages[b.message_index].emotion for b in blocks]
    random.Random(seed).shuffle(emotions)
    for block, emotion in zip(blocks, emotions):
        block.dialogue.messages[block.message_index].emotion = emotion
