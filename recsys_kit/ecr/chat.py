"""An interactive ECR session: link entities, tag the user's emotion, rank items, and (optionally) continue the
recommendation sentence with the emotion-aligned generator."""

from __future__ import annotations

import random

from recsys_kit.data.redial import EntityLinker, Turn
from recsys_kit.ecr.emotion.teacher import LexiconTeacher
from recsys_kit.ecr.gen.prompt import TEMPLATES, inference_prompt
from recsys_kit.ecr.kg import KnowledgeGraph
from recsys_kit.ecr.rec.samples import RecSample, assign_entity_emotions
from recsys_kit.ecr.rec.train import TrainedRecommender


class ChatSession:
    """Holds the dialogue so far; :meth:`respond` returns the system's next utterance."""

    def __init__(self, recommender: TrainedRecommender, kg: KnowledgeGraph, generator=None, tokenizer=None,
                 review_entities: dict[str, list[str]] | None = None, seed: int = 0, max_new_tokens: int = 40,
                 llm=None):
        self.recommender = recommender
        self.kg = kg
        self.generator = generator
        self.tokenizer = tokenizer
        self.review_entities = review_entities or {}
        self.rng = random.Random(seed)
        self.max_new_tokens = max_new_tokens
        self.llm = llm  # a prompt -> reply callable (OpenAIChat, or a gen.llm.Cassette around it); wins over generator
        self.teacher = LexiconTeacher()
        self.linker = EntityLinker({}, kg.entity_names)  # titles and names typed in plain text
        self.turns: list[Turn] = []
        self.last_emotion: dict[str, float] = {}  # the emotion read from the latest user turn
        self.last_recommendations: list[str] = []  # the top movies ranked for it (titles)

    def respond(self, text: str) -> str:
        """Add the user's utterance, recommend one unseen item and phrase the recommendation."""
        entities = self.linker.link_text(text)
        self.last_emotion = dict(self.teacher(text))
        self.turns.append(Turn("seeker", text, [], entities, self.last_emotion, []))
        mentions = assign_entity_emotions(self.turns)[-32:]
        context = [("User: " if t.role == "seeker" else "System: ") + t.text for t in self.turns]
        sample = RecSample("chat", context, mentions, int(self.kg.item_ids[0]), "like")
        seen = {m.entity for m in mentions}
        ranked = [i for i in self.recommender.recommend(sample, k=len(seen) + 5) if i not in seen]
        self.last_recommendations = [self.kg.entity_names.get(i, str(i)) for i in ranked[:5]]
        item = ranked[0]
        title = self.kg.entity_names.get(item, str(item))
        reply = self.rng.choice(TEMPLATES).format(movie=title)
        if self.llm is not None:
            from recsys_kit.ecr.gen.llm import llm_response
            from recsys_kit.ecr.gen.prompt import verbalise

            _, triples = inference_prompt(self.kg, item, reply, self.review_entities.get(title, []), self.rng, " ")
            facts = [verbalise(t) for t in triples] + list(self.review_entities.get(title, []))[:4]
            history = [("User: " if t.role == "seeker" else "System: ") + t.text for t in self.turns]
            reply = llm_response(self.llm, history, title, reply, facts)
        elif self.generator is not None:
            from recsys_kit.ecr.gen.generator import generate

            sep = f" {self.tokenizer.eos_token} "
            prompt, _ = inference_prompt(self.kg, item, reply, self.review_entities.get(title, []), self.rng, sep)
            reply = f"{reply} {generate(self.generator, self.tokenizer, [prompt], self.max_new_tokens)[0]}".strip()
        self.turns.append(Turn("recommender", reply, [], [item], {}, []))
        return reply
