import json

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recsys_kit.ecr.emotion.llm import LLMEmotionAnnotator, OpenAIChat, parse_emotions
from recsys_kit.ecr.emotion.student import EmotionClassifier, focal_loss, recall_at_k
from recsys_kit.ecr.emotion.teacher import LexiconTeacher
from recsys_kit.ecr.labels import EMOTIONS, map_raw_emotion
from recsys_kit.ecr.text import TfidfFeaturizer
from shared.errors import DataError


@pytest.mark.parametrize("text, expected", [
    ("I didn't like it at all.", "negative"),
    ("I loved @1, great pick!", "like"),
    ("Haha, that was hilarious", "happy"),
    ("Thanks so much, bye!", "grateful"),
    ("I haven't seen it, what is it about?", "curious"),
    ("It reminds me of my childhood", "nostalgia"),
])
def test_teacher_rules(text, expected):
    labels = LexiconTeacher().annotate(text)
    assert expected in labels and len(labels) <= 2 and abs(sum(labels.values()) - 1) < 1e-9
    if expected == "negative":
        assert "like" not in labels  # negation flips the like cue


def test_focal_loss_known_values():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.isclose(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, torch.tensor([0])))
    p = torch.softmax(logits, -1)[0, 0]
    assert torch.isclose(focal_loss(logits, target, gamma=2.0), -(1 - p) ** 2 * torch.log(p))


def test_recall_at_2_by_hand():
    probs = np.array([[0.5, 0.3, 0.2] + [0] * 6, [0.1, 0.2, 0.7] + [0] * 6])
    gold = [{"like": 1.0, "happy": 1.0}, {"like": 1.0}]
    # row 0: top-2 = like, curious -> 1 of 2 gold labels; row 1: top-2 = happy, curious -> 0 of 1
    assert recall_at_k(probs, gold, 2) == pytest.approx(0.25)
    assert recall_at_k(probs, gold, 3) == pytest.approx(1.0)


def test_student_learns_teacher_labels():
    teacher = LexiconTeacher()
    texts = ["I hated it, so boring", "I loved it, great pick", "thanks, bye", "what is it about?",
             "haha so funny", "I really disliked that one", "one of my favorites, I love it", "thank you!"] * 6
    labels = [teacher(t) for t in texts]
    student = EmotionClassifier(TfidfFeaturizer(dim=None), epochs=80, seed=0).fit(texts, labels)
    probs = student.predict_proba(["ugh I hated that, boring", "thanks a lot, goodbye"])
    assert EMOTIONS[int(np.argmax(probs[0]))] == "negative" and EMOTIONS[int(np.argmax(probs[1]))] == "grateful"
    assert student.losses_[-1] < student.losses_[0]
    annotated = student.annotate(["I love it"])[0]
    assert list(annotated) == sorted(annotated, key=annotated.get, reverse=True) and len(annotated) == 9


def test_llm_annotator_through_a_mock_endpoint():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen["prompt"] = body["messages"][0]["content"]
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={"choices": [{"message": {"content": "emotions: Frustration, curiosity\nreason: x"}}]})

    chat = OpenAIChat("http://llm.test/v1", "m", api_key="k", transport=httpx.MockTransport(handler))
    labels = LLMEmotionAnnotator(chat).annotate("ugh, what else?", ["System: try X"])
    assert labels == {"negative": 0.5, "curious": 0.5}
    assert "System: try X" in seen["prompt"] and seen["auth"] == "Bearer k"
    broken = OpenAIChat("http://llm.test/v1", "m", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(DataError, match="failed"):
        broken("hi")


def test_parse_emotions_and_mapping():
    assert parse_emotions("Emotions: thanks and joy") == {"grateful": 0.5, "happy": 0.5}
    assert parse_emotions("emotions: zzz") == {"neutral": 1.0}
    assert map_raw_emotion("Disappointment.") == "negative"
    with pytest.raises(DataError, match="emotions"):
        parse_emotions("I think the user is happy")
