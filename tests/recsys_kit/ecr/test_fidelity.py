"""Issue 23: initialisation scale, early stopping, seeding, given labels, data friction, controls' simulator."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from recsys_kit.data.redial import Dialogue, Message
from recsys_kit.ecr.emotion.annotate import annotate_corpus, per_emotion_scores
from recsys_kit.ecr.emotion.student import EmotionClassifier
from recsys_kit.ecr.emotion.teacher import LexiconTeacher, mask_emotion_cues
from recsys_kit.ecr.gen.prompt import Review, movie_review_entities
from recsys_kit.ecr.pipeline import arm_config, default_train_config, redial_data
from recsys_kit.ecr.rec.model import ECRRecommender, RecModelConfig
from recsys_kit.ecr.rec.train import Encoder, fit_recommender
from recsys_kit.ecr.simulator import NEGATIVE_CONTROL, POSITIVE_CONTROL, SimulatorConfig, simulate_ml100k
from recsys_kit.ecr.text import TfidfFeaturizer
from shared.errors import ConfigError, DataError

SMALL = RecModelConfig(dim=32, entity_dim=16, emotion_dim=8, n_layers=1)


def test_added_embeddings_do_not_swamp_the_entity(tiny_prepared):
    p = tiny_prepared
    featurizer = TfidfFeaturizer(dim=32).fit([t for s in p.samples["train"] for t in s.context])
    torch.manual_seed(0)
    model = ECRRecommender(p.data.kg, dataclasses.replace(RecModelConfig(), text_dim=featurizer.dim), p.cooccurrence)
    scale = model.fusion_scale(Encoder(featurizer, 8).batch(p.samples["train"][:16]))
    # torch's default N(0, 1) gave position/segment norms ≈ 8 against an entity norm ≈ 1
    assert scale["turn_position"] < 0.5 * scale["entity"] and scale["segment"] < 0.5 * scale["entity"]
    assert scale["attended_text"] < 3 * scale["entity"]


def test_early_stopping_on_validation_for_every_arm(tiny_prepared):
    p = tiny_prepared
    for arm in ("UniCRS", "ECR"):
        config = arm_config(arm, default_train_config(epochs=40, patience=1, lr=5e-3, model=SMALL))
        trained = fit_recommender(p.data.kg, p.samples["train"], p.samples["valid"], config, p.cooccurrence)
        history = trained.history
        assert len(history) < 40  # stopped before the cap
        best = min(range(len(history)), key=lambda i: history[i]["valid_loss"])
        assert len(history) == best + 2 and history[-1]["best_epoch"] == best + 1  # patience 1 after the best


def test_annotator_is_seeded_by_the_run_not_the_global_generator():
    texts = ["I hated it", "I loved it", "thanks bye", "what is it about?", "so funny haha", "I remember it"] * 4
    labels = [LexiconTeacher()(t) for t in texts]
    probs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # whatever ran before must not change the head's initialisation
        clf = EmotionClassifier(TfidfFeaturizer(dim=None), epochs=3, seed=7).fit(texts, labels)
        probs.append(clf.predict_proba(texts))
    assert np.array_equal(probs[0], probs[1])


def _dialogue(cid, texts_emotions):
    messages = [Message(t, 1 if i % 2 == 0 else 2, i + 1, emotion=e) for i, (t, e) in enumerate(texts_emotions)]
    return Dialogue(cid, messages, {}, 1, 2)


def test_given_emotion_labels_are_kept():
    given = {"surprise": 0.9, "neutral": 0.1}  # not what the lexicon teacher would say about "I loved it"
    train = [_dialogue(f"c{i}", [("I loved it", given), ("ok", {})]) for i in range(12)]
    report, _ = annotate_corpus({"train": train}, keep_given=True)
    assert report.method == "given" and all(d.messages[0].emotion == given for d in train)
    # some turns without labels: the student learns from the given ones and fills only those
    train.append(_dialogue("new", [("I loved it", {}), ("ok", {})]))
    report, _ = annotate_corpus({"train": train}, keep_given=True)
    assert report.method == "given+student" and max(train[-1].messages[0].emotion, key=train[-1].messages[0].emotion.get) == "surprise"
    assert all(d.messages[0].emotion == given for d in train[:-1])
    annotate_corpus({"train": train}, keep_given=False)  # asked to re-annotate: the teacher's labels win
    emotion = train[0].messages[0].emotion
    assert max(emotion, key=emotion.get) == "like"


def test_per_emotion_precision_recall_by_hand():
    predicted = [{"like": 0.8, "happy": 0.2}, {"negative": 0.95, "like": 0.05}, {"like": 0.6, "curious": 0.4}]
    gold = [["like"], ["negative"], ["curious"]]
    scores = per_emotion_scores(predicted, gold)
    assert scores["like"]["precision"] == pytest.approx(0.5) and scores["like"]["recall"] == 1.0
    assert scores["negative"] == {"precision": 1.0, "recall": 1.0, "support": 1, "predicted": 1}
    assert scores["happy"]["precision"] == 0.0 and np.isnan(scores["happy"]["recall"])


def test_review_entities_pool_every_review_of_a_movie():
    reviews = [Review("Heat", "a", ["Al Pacino", "Los Angeles"], []), Review("Heat", "b", ["Al Pacino", "heist"], []),
               Review("Alien", "c", ["space"], [])]
    assert movie_review_entities(reviews) == {"Heat": ["Al Pacino"], "Alien": ["space"]}


def _redial_copy(handbook_data, tmp_path, drop=()):
    root = tmp_path / "redial"
    root.mkdir()
    for name in ("kg_dbpedia_subkg.json", "kg_entity2id.json", "kg_relation2id.json", "kg_item_ids.json",
                 "kgsf_id2entity.json"):
        if name not in drop:
            shutil.copy(handbook_data / "redial" / name, root / name)
    lines = (handbook_data / "redial" / "valid_data.jsonl").read_text().splitlines()
    (root / "mine_train.jsonl").write_text("\n".join(lines[:30]) + "\n")
    (root / "mine_valid.jsonl").write_text("\n".join(lines[30:40]) + "\n")
    (root / "mine_test.jsonl").write_text("\n".join(lines[40:50]) + "\n")
    return root


def test_redial_file_names_validation_split_and_missing_movie_map(handbook_data, tmp_path):
    root = _redial_copy(handbook_data, tmp_path)
    data = redial_data(root, train_files=["mine_train.jsonl"], valid_files=["mine_valid.jsonl"],
                       test_files=["mine_test.jsonl"])
    assert [len(data.splits[k]) for k in ("train", "valid", "test")] == [30, 10, 10]
    data = redial_data(root, train_files=["mine_train.jsonl"], test_files=["mine_test.jsonl"], valid_fraction=0.2)
    assert [len(data.splits[k]) for k in ("train", "valid")] == [24, 6]
    with pytest.raises(DataError, match=r"nope.jsonl'\] do not exist"):
        redial_data(root, train_files=["nope.jsonl"], test_files=["mine_test.jsonl"])
    (root / "kgsf_id2entity.json").unlink()
    with pytest.raises(DataError, match="kgsf_id2entity.json does not exist"):  # early, before any sample
        redial_data(root, train_files=["mine_train.jsonl"], test_files=["mine_test.jsonl"])


def test_control_settings_of_the_simulator():
    with pytest.raises(ConfigError, match="wording"):
        SimulatorConfig(wording="odd")
    world, _ = simulate_ml100k(40, seed=0, **POSITIVE_CONTROL)
    for dialogue in world.dialogues:
        for m in dialogue.messages:
            labels = world.latent_emotions.get((dialogue.conversation_id, m.message_id))
            if labels and labels[0] in ("like", "negative"):
                # only the emotion word differs: masked, liked and disliked reactions read the same
                assert mask_emotion_cues(m.text).startswith("I ")
                movie = m.movies[0] if m.movies else None
                if movie and (dialogue.initiator_questions.get(movie) or {}).get("liked") in (0, 1):
                    assert (labels[0] == "like") == (dialogue.initiator_questions[movie]["liked"] == 1)
    neg, _ = simulate_ml100k(80, seed=0, **NEGATIVE_CONTROL)
    agree = [(labels[0] == "like") == (d.initiator_questions[m.movies[0]]["liked"] == 1)
             for d in neg.dialogues for m in d.messages
             if (labels := neg.latent_emotions.get((d.conversation_id, m.message_id))) and m.movies
             and labels[0] in ("like", "negative") and d.initiator_questions[m.movies[0]]["liked"] in (0, 1)]
    assert 0.35 < np.mean(agree) < 0.65  # emotions independent of the liked flag


def test_cli_permuted_control_and_settings(tmp_path, isolated_cache):
    from click.testing import CliRunner

    from recsys_kit.cli import group

    out = tmp_path / "rec"
    r = CliRunner().invoke(group, ["ecr", "train-rec", "--n-dialogues", "30", "--setting", "positive-control",
                                   "--permute-emotions", "--out", str(out), "--set", "epochs=1",
                                   "--set", "model.dim=32", "--set", "model.entity_dim=16"])
    assert r.exit_code == 0, r.output
    source = json.loads((out / "data.json").read_text())
    assert source["permute_emotions"] and source["setting"] == "positive-control"
    r = CliRunner().invoke(group, ["ecr", "train-rec", "--data", "redial", "--setting", "positive-control"])
    assert r.exit_code == 2 and "simulated only" in r.output
