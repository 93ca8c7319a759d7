"""A lexicon/rule emotion *teacher*: ≤ 2 of ECR's nine labels per seeker utterance (brief §8.1 emotion (a)).

It plays the role of the paper's GPT-3.5 annotator offline: cue patterns vote for labels, negation turns
"like" cues into "negative", and the top two labels (by votes) come back as a probability distribution.
``VALENCE`` (word -> emotional strength 1..3) doubles as the lexicon of the generator's intensity metric.
"""

from __future__ import annotations

import re

from recsys_kit.ecr.labels import EMOTIONS

_NEG = r"(?<!n't )(?<!not )(?<!never )(?<!no )"
CUES: dict[str, list[str]] = {
    "negative": [r"\b(hate[sd]?|hated|awful|terrible|boring|bored|worst|disappoint\w*|regret\w*|ugh|can't stand|"
                 r"could not stand|couldn't stand|cannot stand|"
                 r"dislike[sd]?|not a fan|annoy\w*|sad|scary|scared|too slow|meh|bad)\b",
                 r"\b(didn't|did not|don't|do not|never) (like|love|enjoy)\w*", r"^\s*no\b", r"\bplease no\b",
                 r"\bnot really\b", r"\bnothing like\b"],
    "like": [_NEG + r"\b(love[sd]?|loved|adored?|favou?rites?|liked|enjoy(ed)?|great|amazing|fan of|good one|"
             r"good suggestion|great pick|great choice|so good|excellent)\b"],
    "curious": [r"\?", r"\b(what about|tell me more|what is it|is it good|any ideas|suggest|recommend|"
                r"looking for|in the mood)\b"],
    "happy": [r"\b(haha\w*|lol|funny|fun|hilarious|laugh\w*|joy|happy|enjoyed it a lot)\b"],
    "grateful": [r"\b(thanks?|thank you|appreciate\w*|bye|goodbye)\b"],
    "nostalgia": [r"\b(remember|as a kid|childhood|grew up|brings back|memories|old days)\b"],
    "surprise": [r"\b(wow|didn't expect|did not expect|surpris\w*|no way|oh my)\b"],
    "agreement": [r"\b(agree\w*|exactly|sure|yes|yeah|of course|sounds good|okay|ok)\b"],
    "neutral": [r"\b(haven't seen|have not seen|never seen|don't know|do not know|not seen it|maybe)\b"],
}
_COMPILED = {label: [re.compile(p, re.IGNORECASE) for p in patterns] for label, patterns in CUES.items()}

VALENCE = {
    "love": 3, "loved": 3, "adore": 3, "amazing": 3, "hilarious": 3, "hate": 3, "hated": 3, "awful": 3,
    "terrible": 3, "wonderful": 3, "masterpiece": 3, "brilliant": 3, "stunning": 3, "heartbreaking": 3,
    "beautiful": 2, "favorite": 2, "favourite": 2, "great": 2, "fantastic": 3, "excellent": 2, "enjoy": 2,
    "enjoyed": 2, "fun": 2, "funny": 2, "happy": 2, "joy": 3, "laugh": 2, "tears": 2, "moving": 2, "touching": 2,
    "thrilling": 2, "exciting": 2, "scary": 2, "sad": 2, "boring": 2, "disappointing": 2, "wow": 2,
    "incredible": 3, "perfect": 2, "delightful": 2, "charming": 2, "emotional": 2, "powerful": 2, "epic": 2,
    "good": 1, "nice": 1, "like": 1, "liked": 1, "interesting": 1, "cool": 1, "fine": 1, "okay": 1, "bad": 1,
    "smiling": 2, "smiles": 2, "favorites": 2, "loves": 3, "happiest": 3, "thrilled": 3, "fresh": 1, "gem": 2,
    "recommended": 1, "big": 1, "wait": 1, "enjoyable": 2, "hooked": 2, "unforgettable": 3,
    "thanks": 1, "glad": 1, "hope": 1, "sweet": 1, "warm": 1, "heart": 2, "cry": 2, "smile": 2, "memorable": 2,
}


def mask_emotion_cues(text: str, placeholder: str = "") -> str:
    """``text`` with every emotion cue the teacher reads removed (a text view without the emotion words)."""
    for patterns in _COMPILED.values():
        for pattern in patterns:
            text = pattern.sub(placeholder, text)
    return re.sub(r"\s+", " ", text).strip()


class LexiconTeacher:
    """Rule-based annotator returning ``{label: probability}`` over ≤ ``max_labels`` labels (neutral fallback)."""

    def __init__(self, max_labels: int = 2):
        self.max_labels = max_labels

    def votes(self, text: str) -> dict[str, int]:
        """Number of cue matches per label."""
        out = {}
        for label, patterns in _COMPILED.items():
            count = sum(len(p.findall(text)) for p in patterns)
            if count:
                out[label] = count
        if "negative" in out:
            out.pop("agreement", None)  # "no/yes"-style cues are swallowed by an explicit rejection
        return out

    def annotate(self, text: str) -> dict[str, float]:
        """≤ ``max_labels`` labels with probabilities proportional to their votes (``neutral`` when none fire)."""
        votes = self.votes(text)
        if not votes:
            return {"neutral": 1.0}
        order = sorted(votes, key=lambda label: (-votes[label], EMOTIONS.index(label)))[: self.max_labels]
        total = sum(votes[label] for label in order)
        return {label: votes[label] / total for label in order}

    def __call__(self, text: str) -> dict[str, float]:
        return self.annotate(text)
