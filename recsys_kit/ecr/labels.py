"""ECR's nine emotion labels, the raw-emotion -> label mapping, and the loss weights (brief §2.1, §2.3)."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("like", "curious", "happy", "grateful", "negative", "neutral", "nostalgia",
                             "agreement", "surprise")
EMOTION_INDEX = {label: i for i, label in enumerate(EMOTIONS)}
PAD_EMOTION = len(EMOTIONS)  # id 9 pads an entity's emotion list (probability 0)

# ReDial feedback (initiatorQuestions[movie].liked) -> loss weight m(f) (paper Eq. 7, Appendix B best values).
FEEDBACK_WEIGHTS = {"like": 2.0, "dislike": 1.0, "not_say": 0.5}
# The code's unused alternative: weight from the next seeker turn's emotions (brief §2.3).
EMOTION_LOSS_WEIGHTS = {"like": 2.0, "happy": 2.0, "curious": 1.5, "grateful": 1.5, "nostalgia": 1.5,
                        "agreement": 1.5, "surprise": 1.5, "negative": 1.0, "neutral": 0.5}

# Free-form LLM emotion words -> the nine classes (the paper mapped 93 raw types by hand; these are the
# examples it lists plus their obvious neighbours).
RAW_EMOTION_MAP: dict[str, str] = {
    **dict.fromkeys(["like", "love", "liking", "fondness", "enthusiasm", "admiration", "excitement", "eager",
                     "eagerness", "passion", "preference", "positive", "interested in", "approval"], "like"),
    **dict.fromkeys(["curious", "curiosity", "interest", "anticipation", "request", "confusion", "inquisitive",
                     "wondering", "hopeful", "hope", "expectation", "seeking", "uncertain", "uncertainty",
                     "inquiry", "question", "open-minded"], "curious"),
    **dict.fromkeys(["happy", "happiness", "funny", "joy", "amusement", "amused", "cheerful", "delight",
                     "delighted", "glad", "pleased", "satisfaction", "satisfied", "content", "excited", "fun",
                     "humor", "playful", "relief"], "happy"),
    **dict.fromkeys(["grateful", "gratitude", "thanks", "thankful", "appreciative", "appreciation", "farewell",
                     "polite", "politeness", "friendly", "goodbye"], "grateful"),
    **dict.fromkeys(["negative", "frustration", "frustrated", "disappointment", "disappointed", "bored",
                     "boredom", "dislike", "sad", "sadness", "doubt", "doubtful", "annoyed", "annoyance", "anger",
                     "angry", "disgust", "fear", "scared", "skeptical", "skepticism", "regret", "hate",
                     "impatience", "indifference", "reluctance", "disinterest", "displeasure"], "negative"),
    **dict.fromkeys(["neutral", "calm", "indifferent", "informative", "neutrality", "casual", "none"], "neutral"),
    **dict.fromkeys(["nostalgia", "nostalgic", "reminiscent", "reminiscence", "sentimental", "memory"],
                    "nostalgia"),
    **dict.fromkeys(["agreement", "agree", "agreeable", "acceptance", "affirmation", "confirmation",
                     "understanding", "acknowledgement", "acknowledgment", "consent"], "agreement"),
    **dict.fromkeys(["surprise", "surprised", "shock", "shocked", "astonishment", "amazement", "amazed",
                     "disbelief", "wonder"], "surprise"),
}


def map_raw_emotion(word: str) -> str | None:
    """Map a free-form emotion word (any case, surrounding punctuation ignored) to one of the nine labels."""
    key = word.strip().strip(".,;:!\"'()[]").lower()
    if key in EMOTION_INDEX:
        return key
    return RAW_EMOTION_MAP.get(key)
