"""ReDial conversations: the raw JSONL schema, ECR-processed extras, turn merging and entity linking.

One loader serves the official raw files (``movieMentions``, ``initiatorQuestions``/``respondentQuestions``,
``@<movieId>`` mentions), ECR-processed files (per-message ``entity``/``movie``/``emotion`` fields) and the
ReDial-format simulator in :mod:`recsys_kit.ecr.simulator`. Malformed lines are reported with their line
number and either rejected (default) or skipped.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.errors import DataError
from shared.results import atomic_write_text

MENTION = re.compile(r"@(\d+)")
FEEDBACK = {1: "like", 0: "dislike", 2: "not_say"}  # ReDial ``liked`` codes


@dataclasses.dataclass
class Message:
    """One ReDial message; ``entities`` (KG ids) and ``emotion`` (label -> probability) are optional extras."""

    text: str
    sender: int
    message_id: int = 0
    time_offset: int = 0
    entities: list[int] = dataclasses.field(default_factory=list)
    emotion: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def movies(self) -> list[str]:
        """ReDial movie ids mentioned as ``@id`` in the text, in order."""
        return MENTION.findall(self.text)


@dataclasses.dataclass
class Dialogue:
    """One ReDial conversation between a seeker (initiator) and a recommender (respondent)."""

    conversation_id: str
    messages: list[Message]
    movie_mentions: dict[str, str]
    seeker: int
    recommender: int
    initiator_questions: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    respondent_questions: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def role(self, message: Message) -> str:
        """``"seeker"`` or ``"recommender"``."""
        return "seeker" if message.sender == self.seeker else "recommender"

    def feedback(self, movie_id: str) -> str | None:
        """The seeker's feedback on a movie (like / dislike / not_say), seeker's answers first."""
        for questions in (self.initiator_questions, self.respondent_questions):
            answer = questions.get(str(movie_id)) if isinstance(questions, Mapping) else None
            if answer and answer.get("liked") in FEEDBACK:
                return FEEDBACK[answer["liked"]]
        return None


@dataclasses.dataclass
class Turn:
    """Consecutive messages of one speaker merged (ECR's turn unit)."""

    role: str
    text: str
    movies: list[str]
    entities: list[int]
    emotion: dict[str, float]
    message_ids: list[int]


def _questions(value: Any) -> dict[str, dict[str, int]]:
    # ReDial stores a missing questionnaire as [] instead of {}
    return dict(value) if isinstance(value, Mapping) else {}


def _message_entities(raw: Mapping[str, Any], entity2id: Mapping[str, int] | None) -> list[int]:
    """Our ``entity_ids``, or ECR/UniCRS-processed ``entity`` + ``movie`` URI lists mapped through ``entity2id``."""
    if "entity_ids" in raw:
        return [int(e) for e in raw["entity_ids"]]
    if entity2id is None:
        return []
    uris = list(raw.get("entity") or []) + list(raw.get("movie") or [])
    return [int(entity2id[u]) for u in uris if u in entity2id]


def parse_dialogue(record: Mapping[str, Any], entity2id: Mapping[str, int] | None = None) -> Dialogue:
    """Build a :class:`Dialogue` from one JSON record (raw or ECR-processed); raises ``ValueError`` on bad schema.

    ECR-processed messages carry ``entity``/``movie`` DBpedia URIs (mapped to ids when ``entity2id`` is given)
    and an ``emotion`` dict (``[]`` when absent).
    """
    for key in ("messages", "initiatorWorkerId", "respondentWorkerId"):
        if key not in record:
            raise ValueError(f"missing key {key!r}")
    if not isinstance(record["messages"], list):
        raise ValueError("'messages' must be a list")
    messages = []
    for raw in record["messages"]:
        if not isinstance(raw, Mapping) or "text" not in raw or "senderWorkerId" not in raw:
            raise ValueError("every message needs 'text' and 'senderWorkerId'")
        emotion = raw.get("emotion") or {}
        messages.append(Message(
            text=str(raw["text"]), sender=int(raw["senderWorkerId"]), message_id=int(raw.get("messageId", 0)),
            time_offset=int(raw.get("timeOffset", 0)),
            entities=_message_entities(raw, entity2id),
            emotion={str(k): float(v) for k, v in emotion.items()} if isinstance(emotion, Mapping) else {},
        ))
    mentions = record.get("movieMentions") or {}
    return Dialogue(
        conversation_id=str(record.get("conversationId", "")), messages=messages,
        movie_mentions={str(k): str(v) for k, v in (mentions.items() if isinstance(mentions, Mapping) else [])},
        seeker=int(record["initiatorWorkerId"]), recommender=int(record["respondentWorkerId"]),
        initiator_questions=_questions(record.get("initiatorQuestions")),
        respondent_questions=_questions(record.get("respondentQuestions")),
    )


def load_redial(path: str | Path, *, on_error: str = "raise", limit: int | None = None,
                entity2id: Mapping[str, int] | None = None) -> list[Dialogue]:
    """Read a ReDial JSONL file (raw or ECR-processed).

    ``on_error="raise"`` rejects the file at the first malformed line (a :class:`DataError` naming the line);
    ``"skip"`` warns once per bad line and keeps the rest.
    """
    if on_error not in {"raise", "skip"}:
        raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ReDial file {path} does not exist; pass a JSONL file with one conversation per line")
    dialogues: list[Dialogue] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                dialogues.append(parse_dialogue(json.loads(line), entity2id))
            except (json.JSONDecodeError, ValueError, TypeError) as err:
                message = f"{path}:{number}: malformed ReDial record ({err})"
                if on_error == "raise":
                    raise DataError(message + "; fix the line or load with on_error='skip'") from err
                warnings.warn(message + " — skipped", stacklevel=2)
            if limit is not None and len(dialogues) >= limit:
                break
    if not dialogues:
        raise DataError(f"ReDial file {path} holds no conversations")
    return dialogues


def dialogue_to_record(dialogue: Dialogue) -> dict[str, Any]:
    """The JSON record of a dialogue (raw ReDial fields plus ``entity_ids``/``emotion`` when present)."""
    messages = []
    for m in dialogue.messages:
        raw: dict[str, Any] = {"timeOffset": m.time_offset, "text": m.text, "senderWorkerId": m.sender,
                               "messageId": m.message_id}
        if m.entities:
            raw["entity_ids"] = list(m.entities)
        if m.emotion:
            raw["emotion"] = dict(sorted(m.emotion.items(), key=lambda kv: -kv[1]))
        messages.append(raw)
    return {"conversationId": dialogue.conversation_id, "movieMentions": dialogue.movie_mentions,
            "initiatorWorkerId": dialogue.seeker, "respondentWorkerId": dialogue.recommender,
            "initiatorQuestions": dialogue.initiator_questions or [],
            "respondentQuestions": dialogue.respondent_questions or [], "messages": messages}


def write_redial(dialogues: Iterable[Dialogue], path: str | Path) -> Path:
    """Write dialogues as ReDial JSONL (atomically)."""
    lines = [json.dumps(dialogue_to_record(d)) for d in dialogues]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def merge_turns(dialogue: Dialogue) -> list[Turn]:
    """Merge consecutive messages of one speaker; a block's emotion is its first non-empty one (ECR format)."""
    turns: list[Turn] = []
    for m in dialogue.messages:
        role = dialogue.role(m)
        if turns and turns[-1].role == role:
            turn = turns[-1]
            turn.text = f"{turn.text} {m.text}"
            turn.movies += m.movies
            turn.entities += m.entities
            turn.emotion = turn.emotion or dict(m.emotion)
            turn.message_ids.append(m.message_id)
        else:
            turns.append(Turn(role, m.text, list(m.movies), list(m.entities), dict(m.emotion), [m.message_id]))
    return turns


def render_text(text: str, movie_mentions: Mapping[str, str]) -> str:
    """Replace ``@id`` mentions by movie titles (unknown ids stay as they are)."""
    return MENTION.sub(lambda m: movie_mentions.get(m.group(1), m.group(0)), text)


class EntityLinker:
    """Link ReDial messages to KG entity ids: movies through a movie-id map, other entities by gazetteer.

    The gazetteer matches lower-cased word n-grams (n ≤ ``max_ngram``) of the text against entity names of at
    least ``min_chars`` characters; names in ``stop_names`` are ignored (common words that are also DBpedia
    titles). This stands in for the DBpedia Spotlight linking that UniCRS/ECR ship precomputed.
    """

    def __init__(self, movie_to_entity: Mapping[str, int], entity_names: Mapping[int, str], *,
                 max_ngram: int = 4, min_chars: int = 4, stop_names: Iterable[str] = ()):
        self.movie_to_entity = {str(k): int(v) for k, v in movie_to_entity.items()}
        self.max_ngram = max_ngram
        stop = {s.lower() for s in stop_names} | _STOP_NAMES
        self.gazetteer: dict[str, int] = {}
        for entity, name in entity_names.items():
            key = " ".join(_words(name))
            if len(key) >= min_chars and key not in stop and key not in self.gazetteer:
                self.gazetteer[key] = int(entity)

    def link_text(self, text: str) -> list[int]:
        """Entity ids mentioned in ``text`` in order of appearance (movies by ``@id``, others by name)."""
        found: list[tuple[int, int]] = []
        for match in MENTION.finditer(text):
            if match.group(1) in self.movie_to_entity:
                found.append((match.start(), self.movie_to_entity[match.group(1)]))
        plain = MENTION.sub(" ", text)
        words = _words(plain)
        i = 0
        while i < len(words):
            for n in range(min(self.max_ngram, len(words) - i), 0, -1):
                key = " ".join(words[i:i + n])
                if key in self.gazetteer:
                    found.append((len(text) + i, self.gazetteer[key]))  # after @ mentions of the same message
                    i += n - 1
                    break
            i += 1
        return [entity for _, entity in sorted(found, key=lambda pair: pair[0])]

    def link(self, dialogues: Sequence[Dialogue]) -> list[Dialogue]:
        """Fill ``Message.entities`` in place (and return the dialogues)."""
        for dialogue in dialogues:
            for m in dialogue.messages:
                m.entities = self.link_text(m.text)
        return dialogues


_STOP_NAMES = {"film", "films", "movie", "movies", "love", "like", "good", "great", "best", "yes", "thanks",
               "thank you", "hello", "have", "this", "that", "what", "there", "about", "really", "some", "seen",
               "watch", "watched", "more", "something", "anything", "funny", "scary", "kind", "type", "time",
               "it's", "i'm", "don't", "haven't", "would", "could", "should", "recommend", "also", "well"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9'\-]*", text.lower())


def dbpedia_name(uri: str) -> str:
    """``<http://dbpedia.org/resource/Water_(1985_film)>`` -> ``Water``."""
    name = uri.strip("<>").rsplit("/", 1)[-1].replace("_", " ")
    return re.sub(r"\s*\([^)]*\)\s*$", "", name).strip()
