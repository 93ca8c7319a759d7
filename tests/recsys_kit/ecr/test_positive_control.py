"""Issue 23: a small positive control in the suite: where the emotion word is the only like/dislike channel,
ECR's emotion path beats the UniCRS-style baseline on AUC, and swapping like and negative on the test mentions
takes most of the gain away (the benchmark runs the permuted-emotion retraining; here a test-time swap is cheaper
and shows that the gain is read from the emotion labels)."""

import dataclasses

import torch

from recsys_kit.ecr.labels import EMOTION_INDEX
from recsys_kit.ecr.pipeline import arm_config, default_train_config, prepare, simulated_data
from recsys_kit.ecr.rec.model import RecModelConfig
from recsys_kit.ecr.rec.train import fit_recommender
from recsys_kit.ecr.simulator import POSITIVE_CONTROL

MODEL = RecModelConfig(dim=64, entity_dim=32, emotion_dim=16, n_layers=1)


SWAP = {EMOTION_INDEX["like"]: EMOTION_INDEX["negative"], EMOTION_INDEX["negative"]: EMOTION_INDEX["like"]}


def _swapped(samples):
    return [dataclasses.replace(s, mentions=[dataclasses.replace(m, labels=[SWAP.get(x, x) for x in m.labels])
                                             for m in s.mentions]) for s in samples]


def _train(prepared, arm: str):
    config = arm_config(arm, default_train_config(epochs=30, patience=3, lr=3e-3, model=MODEL, seed=0))
    config = dataclasses.replace(config, loss_weighting="none")  # no liked flag reaches training
    return fit_recommender(prepared.data.kg, prepared.samples["train"], prepared.samples["valid"], config)


def test_emotions_carry_the_gain_where_they_are_the_only_channel():
    torch.manual_seed(0)
    real = prepare(simulated_data(200, seed=0, kg_min_degree=10**9, **POSITIVE_CONTROL), seed=0, annotation="teacher",
                   mask_emotions=True)
    test = real.samples["test"]
    base = _train(real, "UniCRS").evaluate(test)[0]["AUC"]
    ecr_model = _train(real, "ECR[L]")
    ecr, swapped = ecr_model.evaluate(test)[0]["AUC"], ecr_model.evaluate(_swapped(test))[0]["AUC"]
    # measured at seed 0: UniCRS 0.506, ECR[L] 0.740, ECR[L] with like/negative swapped 0.580 (77 test instances);
    # a blind model sits near 0.5 by design. Rule: a clear gain, and the swap removes at least half of it.
    assert ecr - base > 0.1, (base, ecr)
    assert ecr - swapped > 0.5 * (ecr - base), (base, ecr, swapped)


def _top_label_by_feedback(prepared, split):
    from collections import Counter, defaultdict

    from recsys_kit.data.redial import merge_turns
    from recsys_kit.ecr.rec.samples import assign_entity_emotions

    out = defaultdict(Counter)
    for d in prepared.data.splits[split]:
        movie_of = {prepared.data.kg.movie_to_entity.get(m): m for m in d.initiator_questions}
        for mention in assign_entity_emotions(merge_turns(d)):
            if mention.entity in movie_of and mention.labels:
                out[d.feedback(movie_of[mention.entity])][mention.labels[0]] += 1
    return out


def test_permuted_control_removes_the_emotion_signal():
    """Issue 23: the permuted-emotion arm scored above ECR[L] in the benchmark; it must carry no emotion signal."""
    like, negative = EMOTION_INDEX["like"], EMOTION_INDEX["negative"]
    for permute in (False, True):
        p = prepare(simulated_data(80, seed=0, kg_min_degree=10**9, **POSITIVE_CONTROL), seed=0,
                    annotation="teacher", mask_emotions=True, permute=permute)
        dist = _top_label_by_feedback(p, "train")
        share = {fb: dist[fb][like] / max(1, dist[fb][like] + dist[fb][negative]) for fb in ("like", "dislike")}
        if permute:  # liked and disliked movies carry `like` about equally often
            assert abs(share["like"] - share["dislike"]) < 0.15, share
        else:  # the annotator's labels follow the preference exactly in this setting
            assert share["like"] == 1.0 and share["dislike"] == 0.0, share


def test_default_control_budget_resolves_the_auc():
    """Issue 23: at 300 dialogues split 80/10/10 a seed's control test set held ~24 disliked suggestions (per-seed
    AUC SE ≈ 0.065), too few for the control's rule; the default profile must test on enough of them and keep
    the training set the emotion binding needs (measured: 250 dialogues too few, 360 enough)."""
    from recsys_kit.ecr.bench import CONTROL_KG_MIN_DEGREE, PROFILES
    from recsys_kit.ecr.rec.samples import build_rec_samples

    cfg = PROFILES["default"]
    data = simulated_data(cfg["control_dialogues"], seed=0, kg_min_degree=CONTROL_KG_MIN_DEGREE,
                          fractions=tuple(cfg["control_fractions"]), **POSITIVE_CONTROL)
    items = set(data.kg.item_ids.tolist())
    test = build_rec_samples(data.splits["test"], data.kg.movie_to_entity, items)
    assert sum(s.feedback == "dislike" for s in test) >= 120
    assert len(data.splits["train"]) >= 350 and cfg["control_patience"] >= 8


def test_controls_run_on_at_least_five_seeds():
    """Issue 23: a paired t over 3 seeds (half-width 2.48 SD) could not resolve a gain that was positive on every
    seed (+0.10, +0.16, +0.03); the controls extend the run's seeds to ``control_seeds``."""
    from recsys_kit.ecr.bench import PROFILES, _control_seeds

    assert _control_seeds([0, 1, 2], PROFILES["default"]["control_seeds"]) == [0, 1, 2, 3, 4]
    assert _control_seeds([7], 2) == [7, 8] and _control_seeds([0, 1, 2], 0) == [0, 1, 2]
