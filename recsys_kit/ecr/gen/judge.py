"""A pluggable LLM judge for ECR's five subjective metrics (paper §5, Appendix E style; integer 0–9).

All systems' responses to one case are shown together under shuffled pseudonyms, one prompt per metric, and
the reply lines ``<pseudonym>: <score>`` are parsed back. ``chat`` is any ``prompt -> reply`` callable, e.g.
:class:`recsys_kit.ecr.emotion.llm.OpenAIChat`; nothing in tests or benchmarks calls a real endpoint.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from shared.errors import DataError

METRICS = {
    "emotional_intensity": "the strength of emotions conveyed in the response",
    "emotional_persuasiveness": "how well the response connects with the user emotionally to persuade them",
    "logic_persuasiveness": "how logical, coherent and convincing the argument for the movie is",
    "informativeness": "how much relevant and useful information about the movie the response gives",
    "lifelikeness": "how vivid and natural the response is, like a human talking",
}

PROMPT = (
    "You are evaluating responses of movie recommender systems.\n"
    "Conversation history:\n{context}\n\n"
    "Candidate responses:\n{responses}\n\n"
    "Rate every response on {metric}: {description}. Use an integer from 0 (worst) to 9 (best).\n"
    "Answer one line per response, exactly '<name>: <score>'."
)


def parse_scores(reply: str, names: Sequence[str]) -> dict[str, float]:
    """``{name: score}`` from ``name: score`` lines; raises :class:`DataError` when a name has no score."""
    scores = {}
    for name in names:
        match = re.search(rf"{re.escape(name)}\s*[:=-]\s*(\d+(?:\.\d+)?)", reply)
        if not match:
            raise DataError(f"judge reply gives no score for {name!r}: {reply[:200]!r}")
        scores[name] = min(9.0, max(0.0, float(match.group(1))))
    return scores


class LLMJudge:
    """Score systems' responses with an LLM; returns mean score per (system, metric)."""

    def __init__(self, chat: Callable[[str], str], metrics: Mapping[str, str] = METRICS, seed: int = 0):
        self.chat = chat
        self.metrics = dict(metrics)
        self.rng = random.Random(seed)

    def score(self, cases: Sequence[tuple[str, Mapping[str, str]]]) -> dict[str, dict[str, float]]:
        """``cases`` = [(context, {system: response})] -> {system: {metric: mean score}}."""
        totals: dict[str, dict[str, list[float]]] = {}
        for context, responses in cases:
            systems = list(responses)
            self.rng.shuffle(systems)
            alias = {system: f"System {chr(65 + i)}" for i, system in enumerate(systems)}
            listing = "\n".join(f"{alias[s]}: {responses[s]}" for s in systems)
            for metric, description in self.metrics.items():
                reply = self.chat(PROMPT.format(context=context, responses=listing,
                                                metric=metric.replace("_", " "), description=description))
                scores = parse_scores(reply, list(alias.values()))
                for system in systems:
                    totals.setdefault(system, {}).setdefault(metric, []).append(scores[alias[system]])
        return {s: {m: float(np.mean(v)) for m, v in per.items()} for s, per in totals.items()}
