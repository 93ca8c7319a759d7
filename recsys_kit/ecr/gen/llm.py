"""Response generation via any OpenAI-compatible chat endpoint, with a record/replay cassette (brief §5.2 App. E).

The official ECR also prompts an LLM. :func:`llm_response` gives it the dialogue history, the item the recommender
chose and the retrieved knowledge (triples + review entities), and asks for an emotional recommendation of that
item only. :class:`Cassette` wraps any ``prompt -> reply`` callable: ``mode="record"`` calls it and stores each
reply under the prompt's SHA-256, ``"replay"`` answers from the file alone (offline tests, reproducible demos),
``"auto"`` replays what it has and records the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.errors import ConfigError, DataError
from shared.results import atomic_write_text

PROMPT = ("You are the recommender in a movie conversation. Dialogue so far:\n{history}\n"
          "Reply to the user to recommend {movie}; recommend only {movie} and no other movie. Express your own "
          "feelings about it and use these facts if they fit: {facts}. Start with: \"{first}\"")


class Cassette:
    """Record/replay wrapper around a ``prompt -> reply`` callable, stored as JSON ``{sha256(prompt): reply}``."""

    def __init__(self, path: str | Path, chat: Callable[[str], str] | None = None, mode: str = "auto"):
        if mode not in {"record", "replay", "auto"}:
            raise ConfigError(f"cassette mode must be 'record', 'replay' or 'auto', got {mode!r}")
        if mode != "replay" and chat is None:
            raise ConfigError(f"cassette mode {mode!r} needs an endpoint to call (chat=...)")
        self.path, self.chat, self.mode = Path(path), chat, mode
        self.entries: dict[str, str] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if mode == "replay" and not self.path.is_file():
            raise DataError(f"cassette {self.path} does not exist; record it first (mode='record')")

    @staticmethod
    def key(prompt: str) -> str:
        return hashlib.sha256(prompt.encode("utf-8")).hexdigest()

    def __call__(self, prompt: str) -> str:
        key = self.key(prompt)
        if key in self.entries and self.mode != "record":
            return self.entries[key]
        if self.mode == "replay":
            raise DataError(f"cassette {self.path} has no reply for this prompt (sha256 {key[:12]}…); re-record it")
        reply = self.chat(prompt)
        self.entries[key] = reply
        atomic_write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True))
        return reply


def llm_response(chat: Callable[[str], str], history: Sequence[str], movie: str, first_sentence: str,
                 facts: Sequence[str]) -> str:
    """The endpoint's emotional recommendation of ``movie`` (prompt :data:`PROMPT`)."""
    prompt = PROMPT.format(history="\n".join(history[-8:]) or "(none)", movie=movie, first=first_sentence,
                           facts="; ".join(facts) or "none")
    return chat(prompt).strip()
