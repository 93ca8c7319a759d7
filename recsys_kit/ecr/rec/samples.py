"""From annotated dialogues to recommendation samples (brief §2.2 entity–emotion assignment, §2.4).

Rules (the official code's): turns merge consecutive messages of one speaker. Entities in a *seeker* turn get
that turn's emotions; entities in a *recommender* turn get the emotions of the *next seeker turn* (the
reaction). Labels with probability > β are kept; if none passes and the turn has an emotion, its top-1 is used.
Each entity keeps at most ``n_f`` labels, highest probability first ([R]: the code keeps "the last 3" of its
list; we keep the three most probable and expose ``n_f``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from recsys_kit.data.redial import MENTION, Dialogue, Turn, merge_turns
from recsys_kit.ecr.emotion.teacher import mask_emotion_cues
from recsys_kit.ecr.labels import EMOTION_INDEX
from shared.errors import DataError


@dataclasses.dataclass
class EntityMention:
    """One entity mention with the emotion labels (ids into EMOTIONS) and probabilities assigned to it."""

    entity: int
    labels: list[int]
    probs: list[float]


@dataclasses.dataclass
class RecSample:
    """One training/evaluation instance: context -> the movie the recommender mentioned."""

    conversation_id: str
    context: list[str]  # turn texts, oldest first, "User: …" / "System: …"
    mentions: list[EntityMention]  # local entities (last ``max_entities``) with emotions
    target: int  # entity id of the gold movie
    feedback: str  # like / dislike / not_say
    next_emotion: dict[str, float] = dataclasses.field(default_factory=dict)  # seeker's reaction (for the alt. weight)


def turn_emotion(turn: Turn | None, beta: float = 0.1, n_f: int = 3) -> tuple[list[int], list[float]]:
    """Labels (> β, else top-1) and probabilities of a turn's emotion, most probable first, at most ``n_f``."""
    if turn is None or not turn.emotion:
        return [], []
    ranked = sorted(turn.emotion.items(), key=lambda kv: -kv[1])
    kept = [(label, p) for label, p in ranked if p > beta] or ranked[:1]
    kept = kept[:n_f]
    return [EMOTION_INDEX[label] for label, _ in kept], [float(p) for _, p in kept]


def assign_entity_emotions(turns: Sequence[Turn], beta: float = 0.1, n_f: int = 3) -> list[EntityMention]:
    """Ordered entity mentions of ``turns`` with ECR's emotion assignment (seeker: own; recommender: next seeker's)."""
    out = []
    for i, turn in enumerate(turns):
        if not turn.entities:
            continue
        if turn.role == "seeker":
            source = turn
        else:
            source = next((t for t in turns[i + 1:] if t.role == "seeker"), None)
        labels, probs = turn_emotion(source, beta, n_f)
        out.extend(EntityMention(e, list(labels), list(probs)) for e in turn.entities)
    return out


def _render(turn: Turn, titles: dict[str, str], mask_emotions: bool = False) -> str:
    speaker = "User" if turn.role == "seeker" else "System"
    text = mask_emotion_cues(turn.text) if mask_emotions else turn.text
    return f"{speaker}: " + MENTION.sub(lambda m: titles.get(m.group(1), "a movie"), text)


def build_rec_samples(dialogues: Sequence[Dialogue], movie_to_entity: dict[str, int], items: set[int], *,
                      beta: float = 0.1, n_f: int = 3, max_entities: int = 32, max_turns: int = 8,
                      seeker_items_too: bool = False, mask_emotions: bool = False) -> list[RecSample]:
    """One sample per (recommender turn, mentioned movie that is a KG item), feedback aligned by movie id.

    ``mask_emotions`` removes the emotion cue words from the context text the recommender's text encoder reads
    (the controls: emotions then reach the model only through the annotated emotion labels).

    The official ``process_mask.py`` zips movie entities with feedback labels and misaligns them when a movie
    is missing from the KG (brief §6 bug 4); here each movie's feedback is looked up by its own id. Movies
    without a questionnaire answer count as ``not_say``.
    """
    samples = []
    for dialogue in dialogues:
        turns = merge_turns(dialogue)
        for t, turn in enumerate(turns):
            if turn.role != "recommender" and not seeker_items_too:
                continue
            if t == 0:
                continue
            context_turns = turns[:t]
            mentions = assign_entity_emotions(context_turns, beta, n_f)[-max_entities:]
            reaction = next((x for x in turns[t + 1:] if x.role == "seeker"), None)
            context = [_render(x, dialogue.movie_mentions, mask_emotions) for x in context_turns][-max_turns:]
            seen: set[str] = set()
            for movie in turn.movies:
                entity = movie_to_entity.get(movie)
                if entity is None or entity not in items or movie in seen:
                    continue
                seen.add(movie)
                samples.append(RecSample(dialogue.conversation_id, context, mentions, entity,
                                         dialogue.feedback(movie) or "not_say",
                                         dict(reaction.emotion) if reaction else {}))
    return samples


def build_pretrain_samples(dialogues: Sequence[Dialogue], *, beta: float = 0.1, n_f: int = 3,
                           max_entities: int = 32, max_turns: int = 8, mask_emotions: bool = False) -> list[RecSample]:
    """UniCRS/ECR pre-training (``train_pre.py``): context includes the turn itself; targets = its entities."""
    samples = []
    for dialogue in dialogues:
        turns = merge_turns(dialogue)
        for t, turn in enumerate(turns):
            if not turn.entities:
                continue
            mentions = assign_entity_emotions(turns[: t + 1], beta, n_f)[-max_entities:]
            context = [_render(x, dialogue.movie_mentions, mask_emotions) for x in turns[: t + 1]][-max_turns:]
            for entity in dict.fromkeys(turn.entities):
                samples.append(RecSample(dialogue.conversation_id, context, mentions, entity, "like"))
    return samples


def conversation_entity_lists(dialogues: Sequence[Dialogue], beta: float = 0.1, n_f: int = 3) -> list[list[EntityMention]]:
    """Per conversation, the ordered entity mentions with emotions (input of the co-occurrence matrix)."""
    return [assign_entity_emotions(merge_turns(d), beta, n_f) for d in dialogues]


def require_samples(samples: Sequence[RecSample], what: str) -> None:
    """Raise a :class:`DataError` when a split produced no samples."""
    if not samples:
        raise DataError(f"no {what} samples: no recommender turn mentions a movie that is a KG item; check the "
                        f"movie-id -> entity map (kgsf_id2entity.json / the ml-100k link) and the item list")
