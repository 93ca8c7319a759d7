"""LLM emotion annotation over any OpenAI-compatible chat endpoint (brief §2.1, Appendix A.1 style prompt).

The model is asked for at most two lower-case emotion words plus a reason; free-form words are mapped to the
nine labels with :data:`recsys_kit.ecr.labels.RAW_EMOTION_MAP`. Tests drive it through an ``httpx`` mock
transport — nothing here is ever called over the network by the test suite or the benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from recsys_kit.ecr.labels import map_raw_emotion
from shared.errors import ConfigError, DataError

PROMPT = (
    "You are annotating a movie-recommendation dialogue between a user and a recommender.\n"
    "Dialogue history:\n{history}\n\n"
    "The user's latest utterance: \"{utterance}\"\n\n"
    "Which emotions does the user express in the latest utterance? Answer with at most two lower-case "
    "emotion words, then a short reason, exactly in this format:\n"
    "emotions: <word>, <word>\nreason: <one sentence>"
)


def parse_emotions(reply: str) -> dict[str, float]:
    """Parse an ``emotions: a, b`` reply into ``{label: prob}`` (uniform over the mapped labels)."""
    match = re.search(r"emotions?\s*:\s*(.+)", reply, re.IGNORECASE)
    if not match:
        raise DataError(f"LLM reply has no 'emotions:' line: {reply[:120]!r}")
    words = [w for w in re.split(r"[,/;]| and ", match.group(1).splitlines()[0]) if w.strip()][:2]
    labels = []
    for word in words:
        label = map_raw_emotion(word)
        if label and label not in labels:
            labels.append(label)
    if not labels:
        return {"neutral": 1.0}
    return {label: 1.0 / len(labels) for label in labels}


class OpenAIChat:
    """Minimal client for ``POST {base_url}/chat/completions`` (OpenAI-compatible servers: vLLM, llama.cpp, …)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 transport: Any = None, temperature: float = 0.0):
        import httpx

        if not base_url:
            raise ConfigError("an OpenAI-compatible base_url is required, e.g. http://localhost:8000/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.temperature = temperature
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                   transport=transport)

    def __call__(self, prompt: str) -> str:
        """The assistant's reply text to one user ``prompt``."""
        import httpx

        body = {"model": self.model, "temperature": self.temperature,
                "messages": [{"role": "user", "content": prompt}]}
        try:
            response = self.client.post("/chat/completions", json=body)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as err:
            raise DataError(f"LLM endpoint {self.client.base_url} failed or answered malformed JSON: {err}") from err


class LLMEmotionAnnotator:
    """Annotate seeker utterances (given the dialogue history) with an LLM ``chat(prompt) -> reply`` callable."""

    def __init__(self, chat: Any):
        self.chat = chat

    def annotate(self, utterance: str, history: Sequence[str] = ()) -> dict[str, float]:
        """``{label: prob}`` for one seeker utterance."""
        prompt = PROMPT.format(history="\n".join(history) or "(none)", utterance=utterance)
        return parse_emotions(self.chat(prompt))
