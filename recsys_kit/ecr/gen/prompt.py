"""The four-part generation prompt of ECR (paper Eq. 8, brief §2.5) and the review data behind it.

``Movie Name / Related Entities / Related Knowledge from KG / First Sentence`` are joined by the tokenizer's
end-of-sequence string, as in the official ``dataset_emp.py``. Training uses a review's own entities and KG
triples with a random recommendation template as the first sentence, and (with probability 0.1 per triple)
inserts the verbalised triple into the review next to the first sentence that mentions its entity, which
teaches the model to copy KG facts. Inference takes p_nt = 2 random triples and p_ne = 4 random review entities.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from recsys_kit.data.redial import dbpedia_name
from recsys_kit.ecr.kg import GENERATION_RELATIONS, KnowledgeGraph
from shared.errors import DataError

TEMPLATES = ["Have you seen {movie}?", "You should watch {movie}.", "I think you would like {movie}.",
             "How about {movie}?", "I recommend {movie}.", "Maybe try {movie}.", "{movie} is a good one."]
Triple = tuple[str, str, str]  # (head name, relation, tail name)


@dataclasses.dataclass
class Review:
    """An emotional review of one movie with its linked entities and KG triples."""

    movie: str
    content: str
    entities: list[str]
    triples: list[Triple]


def verbalise(triple: Triple) -> str:
    """``"X's relation is Y"``."""
    return f"{triple[0]}'s {triple[1]} is {triple[2]}"


def format_prompt(movie: str, entities: Sequence[str], triples: Sequence[Triple], first_sentence: str,
                  sep: str) -> str:
    """The four fields, ``sep``-separated, ending with ``sep`` so the continuation follows."""
    fields = [f"Movie Name: {movie}", f"Related Entities: {', '.join(entities) if entities else 'None'}",
              f"Related Knowledge from KG: {', '.join(verbalise(t) for t in triples) if triples else 'None'}",
              f"First Sentence: {first_sentence}"]
    return sep.join(fields) + sep


def insert_facts(text: str, triples: Sequence[Triple], rng: random.Random, probability: float = 0.1) -> str:
    """Insert ``"X's r is e."`` after the first sentence mentioning ``e`` (or the first sentence) with ``probability``."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    for triple in triples:
        if rng.random() >= probability:
            continue
        where = next((i for i, s in enumerate(sentences) if triple[2].lower() in s.lower()), 0)
        sentences.insert(where + 1, verbalise(triple) + ".")
    return " ".join(sentences)


def training_example(review: Review, rng: random.Random, sep: str, insert_probability: float = 0.1,
                     use_knowledge: bool = True) -> tuple[str, str]:
    """(prompt, target) for one review; ``use_knowledge=False`` drops entities and triples (the ``--wk`` ablation)."""
    first = rng.choice(TEMPLATES).format(movie=review.movie)
    entities = review.entities if use_knowledge else []
    triples = review.triples if use_knowledge else []
    target = insert_facts(review.content, triples, rng, insert_probability) if use_knowledge else review.content
    return format_prompt(review.movie, entities, triples, first, sep), target


def item_facts(kg: KnowledgeGraph, entity: int, relations: Sequence[str] = GENERATION_RELATIONS) -> list[Triple]:
    """Verbalisable one-hop triples of an item through the generation relations."""
    head = kg.entity_names.get(entity, str(entity))
    return [(head, r, kg.entity_names[t]) for r, t in kg.neighbours(entity, tuple(relations)) if t in kg.entity_names]


def inference_prompt(kg: KnowledgeGraph, entity: int, first_sentence: str, review_entities: Sequence[str],
                     rng: random.Random, sep: str, n_triples: int = 2, n_entities: int = 4) -> tuple[str, list[Triple]]:
    """Prompt for a recommended item with p_nt random triples and p_ne random review entities; returns the facts too."""
    facts = item_facts(kg, entity)
    triples = rng.sample(facts, min(n_triples, len(facts)))
    entities = rng.sample(list(review_entities), min(n_entities, len(review_entities)))
    return format_prompt(kg.entity_names.get(entity, str(entity)), entities, triples, first_sentence, sep), triples


def load_imdb_reviews(path: str | Path) -> list[Review]:
    """ECR-processed IMDb reviews (``content``, ``movie_name``, ``e_review`` URIs, ``e_relation`` [[name, rel]])."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"review file {path} does not exist")
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"review file {path} is not valid JSON: {err}") from err
    reviews = []
    for i, record in enumerate(records):
        if "content" not in record or "movie_name" not in record:
            raise DataError(f"review {i} in {path} lacks 'content' or 'movie_name'")
        movie = re.sub(r"\s*\(\d{4}\)\s*$", "", record["movie_name"]).strip()
        entities = [dbpedia_name(u) for u in record.get("e_review", [])]
        triples = [(movie, rel, name) for name, rel in record.get("e_relation", [])]
        reviews.append(Review(movie, record["content"], entities, triples))
    return reviews


_REVIEW_OPEN = ["I absolutely loved {title}!", "{title} made me so happy.", "What a wonderful film {title} is.",
                "I was moved to tears by {title}.", "{title} is one of my all-time favorites."]
_REVIEW_GENRE = ["As a {genre} fan, I enjoyed every minute of it.", "It is a brilliant {genre} movie with a big heart.",
                 "The {genre} scenes were thrilling and fun."]
_REVIEW_DECADE = ["It came out in the {decade} and still feels fresh.", "A true gem from the {decade}."]
_REVIEW_CLOSE = ["I can't wait to watch it again!", "The ending left me smiling.", "Highly recommended, I loved it.",
                 "It is a beautiful and memorable experience."]


def movie_review_entities(reviews: Sequence[Review], min_count: int = 2) -> dict[str, list[str]]:
    """Per movie, the review entities pooled over *every* review of it (the code's ``mv2e_review``): those
    mentioned at least ``min_count`` times across its reviews, most frequent first, else its most frequent one."""
    counts: dict[str, Counter] = {}
    for review in reviews:
        counts.setdefault(review.movie, Counter()).update(dict.fromkeys(review.entities, 1))
    out = {}
    for movie, counter in counts.items():
        ranked = [e for e, _ in counter.most_common()]
        out[movie] = [e for e in ranked if counter[e] >= min_count] or ranked[:1]
    return out


def simulate_reviews(kg: KnowledgeGraph, entities: Sequence[int], seed: int = 0, per_item: int = 2) -> list[Review]:
    """First-person emotional reviews over ml-100k items that state only true KG facts (genre, decade)."""
    rng = random.Random(seed)
    reviews = []
    for entity in entities:
        facts = item_facts(kg, int(entity), ("genre", "decade"))
        genres = [t for _, r, t in facts if r == "genre"]
        decades = [t for _, r, t in facts if r == "decade"]
        title = kg.entity_names.get(int(entity), str(entity))
        for _ in range(per_item):
            parts = [rng.choice(_REVIEW_OPEN).format(title=title)]
            if genres:
                parts.append(rng.choice(_REVIEW_GENRE).format(genre=rng.choice(genres)))
            if decades:
                parts.append(rng.choice(_REVIEW_DECADE).format(decade=decades[0]))
            parts.append(rng.choice(_REVIEW_CLOSE))
            reviews.append(Review(title, " ".join(parts), genres[:2], facts))
    return reviews
