import numpy as np
import pytest

from recsys_kit.data.redial import Dialogue, Message, Turn
from recsys_kit.ecr.labels import EMOTION_INDEX as I
from recsys_kit.ecr.rec.cooccur import cooccurrence_matrix
from recsys_kit.ecr.rec.samples import EntityMention, assign_entity_emotions, build_rec_samples, turn_emotion


def turn(role, entities, emotion=None):
    return Turn(role, "", [], entities, emotion or {}, [])


def test_assignment_rules():
    turns = [turn("seeker", [1], {"like": 0.6, "happy": 0.3, "curious": 0.05}),
             turn("recommender", [2, 3]),
             turn("seeker", [], {"negative": 0.9, "neutral": 0.1}),  # 0.1 is not > β
             turn("recommender", [4])]  # no later seeker turn -> no emotion
    out = assign_entity_emotions(turns, beta=0.1)
    assert [m.entity for m in out] == [1, 2, 3, 4]
    assert out[0].labels == [I["like"], I["happy"]] and out[0].probs == [0.6, 0.3]
    assert out[1].labels == out[2].labels == [I["negative"]]  # recommender entities take the reaction
    assert out[3].labels == []


def test_top1_fallback_and_nf_cap():
    assert turn_emotion(turn("seeker", [], {"like": 0.05, "happy": 0.04}), beta=0.1) == ([I["like"]], [0.05])
    labels, _ = turn_emotion(turn("seeker", [], {e: 0.2 for e in ["like", "happy", "curious", "surprise"]}), n_f=3)
    assert len(labels) == 3


def test_rec_samples_align_feedback_by_movie_id():
    # movie 8 is not in the KG: the code's zip would shift 9's feedback onto 7 -> here 9 keeps its own
    d = Dialogue("c", [Message("hi, I like @7", 1, 1, entities=[70]), Message("try @8 or @9", 2, 2),
                       Message("meh", 1, 3, emotion={"negative": 1.0})], {}, 1, 2,
                 {"7": {"liked": 1}, "8": {"liked": 1}, "9": {"liked": 0}})
    samples = build_rec_samples([d], {"7": 70, "9": 90}, {70, 90})
    assert [(s.target, s.feedback) for s in samples] == [(90, "dislike")]
    (s,) = samples
    assert [m.entity for m in s.mentions] == [70] and s.context == ["User: hi, I like a movie"]
    assert s.next_emotion == {"negative": 1.0}


def test_cooccurrence_on_a_hand_example():
    like, neg = I["like"], I["negative"]
    conv = [EntityMention(0, [like], [1.0]), EntityMention(1, [like, neg], [.5, .5]), EntityMention(2, [neg], [1.0]),
            EntityMention(0, [neg], [1.0])]
    P = cooccurrence_matrix([conv], 4).toarray()
    # pairs (earlier -> later) sharing a label: 0->1, 1->2, 1->0(4th), 2->0(4th); 0->2 shares nothing; 0->0 skipped
    expected = np.zeros((4, 4))
    expected[0, 1] = 1.0
    expected[1, 2] = expected[1, 0] = 0.5
    expected[2, 0] = 1.0
    assert np.allclose(P, expected)
    assert cooccurrence_matrix([], 3).nnz == 0


@pytest.mark.parametrize("split", ["train", "test"])
def test_pipeline_samples_have_all_feedback(tiny_prepared, split):
    samples = tiny_prepared.samples[split]
    assert samples and all(s.target in set(tiny_prepared.data.kg.item_ids.tolist()) for s in samples)
    if split == "train":
        assert {s.feedback for s in samples} == {"like", "dislike", "not_say"}
        assert any(m.labels for s in samples for m in s.mentions)
        assert tiny_prepared.cooccurrence.nnz > 0
