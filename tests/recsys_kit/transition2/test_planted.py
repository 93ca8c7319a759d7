"""The planted feedback-transition generator: the rule holds at strength 1, vanishes at 0, shuffling keeps items."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys_kit.transition2.data import FEEDBACK_FIELD, build_t2_frames
from recsys_kit.transition2.planted import (
    SHIFT,
    PlantedConfig,
    generate,
    item_cluster,
    planted_build_config,
    planted_source,
)
from shared.errors import ConfigError


def _shift_hits(cfg: PlantedConfig, data: dict) -> tuple[int, int]:
    """(#positives at t >= 2 whose cluster is the previous positive's + the planted shift, #such positives)."""
    hits = total = 0
    for user in np.unique(data["user"]):
        rows = np.flatnonzero(data["user"] == user)
        for k, row in enumerate(rows):
            if k < 2 or not data["positive"][row]:
                continue
            previous = [r for r in rows[:k] if data["positive"][r]][-1]
            if cfg.mode == "switch":
                last = [bool(data["positive"][r]) for r in rows[k - 2:k]]
            else:
                last = [bool(data["positive"][r]) for r in rows[:k] if data["domain"][r] != data["domain"][row]][-2:]
            shift = SHIFT[tuple(last)] if len(last) == 2 else 0
            expected = (item_cluster(data["item"][previous], cfg)[1] + shift) % cfg.n_clusters
            hits += item_cluster(data["item"][row], cfg)[1] == expected
            total += 1
    return hits, total


@pytest.mark.parametrize("mode", ["switch", "cross_domain"])
def test_rule_holds_at_full_strength_and_vanishes_at_zero(mode):
    cfg = PlantedConfig(n_users=40, seq_len=20, strength=1.0, mode=mode)
    data = generate(cfg)
    hits, total = _shift_hits(cfg, data)
    assert total > 300 and hits == total
    # item domain follows the row's domain; negatives are uniformly random items
    assert all(item_cluster(i, cfg)[0] == d for i, d in zip(data["item"], data["domain"]))
    none = dataclasses.replace(cfg, strength=0.0)
    hits, total = _shift_hits(none, generate(none))
    assert abs(hits / total - 1 / cfg.n_clusters) < 0.05
    flat = dataclasses.replace(cfg, feedback_effect=False)  # no feedback effect: the interest never moves
    data = generate(flat)
    for user in np.unique(data["user"]):
        rows = np.flatnonzero((data["user"] == user) & data["positive"])
        assert len({item_cluster(i, flat)[1] for i in data["item"][rows]}) == 1


def test_cross_domain_rule_is_not_the_one_step_rule():
    cfg = PlantedConfig(n_users=40, seq_len=20, strength=1.0, mode="cross_domain")
    hits, total = _shift_hits(dataclasses.replace(cfg, mode="switch"), generate(cfg))
    assert hits / total < 0.75  # chance agreement (shift 0 is the commonest) but far from the planted 1.0


def test_shuffled_feedback_keeps_items_and_order():
    cfg = PlantedConfig(n_users=30, seq_len=12)
    plain, shuffled = generate(cfg), generate(dataclasses.replace(cfg, shuffle_feedback=True))
    assert np.array_equal(plain["item"], shuffled["item"]) and np.array_equal(plain["user"], shuffled["user"])
    assert plain["positive"].sum() == shuffled["positive"].sum()
    assert not np.array_equal(plain["positive"], shuffled["positive"])


def test_planted_source_builds_through_the_ordinary_builder(tmp_path):
    cfg = PlantedConfig(n_users=30, seq_len=12)
    folder = planted_source(tmp_path / "src", cfg)
    frame, items = build_t2_frames(planted_build_config(folder))
    data = generate(cfg)
    assert set(items["item_domain"]) == {"A", "B"}
    assert len(frame) == len(data["item"]) and (frame[FEEDBACK_FIELD] == "neg").sum() == (~data["positive"]).sum()
    with pytest.raises(ConfigError, match="mode"):
        PlantedConfig(mode="sign")


def test_partner_mode_follows_a_negative_with_its_partner_in_the_other_domain():
    from recsys_kit.transition2.planted import partners

    cfg = PlantedConfig(n_users=30, seq_len=20, strength=1.0, mode="partner")
    partner = partners(cfg)
    assert all(partner[partner[i]] == i for i in range(1, len(partner)))  # a bijection between domains
    data = generate(cfg)
    pairs = 0
    for k in range(len(data["item"]) - 1):
        if data["user"][k] == data["user"][k + 1] and not data["positive"][k]:
            assert data["positive"][k + 1] and data["item"][k + 1] == partner[data["item"][k]]
            assert data["domain"][k + 1] != data["domain"][k]
            pairs += 1
    assert pairs > 50


def test_oracle_applies_the_planted_shift_of_the_last_two_signs():
    from recsys_kit.transition2.planted import item_id, oracle_scores

    cfg = PlantedConfig(strength=1.0, mode="switch")
    a, b = 0, 1
    history = [(item_id(a, 2, 0, cfg), True, a), (item_id(a, 2, 3, cfg), True, a), (item_id(b, 5, 1, cfg), False, b)]
    scores = oracle_scores(history, a, cfg)
    best = {item_cluster(i, cfg) for i in np.flatnonzero(scores == scores.max())}
    assert best == {(a, 3)}  # interest 2, transition + -> - shifts by 1
    assert np.isneginf(scores[item_id(b, 3, 0, cfg)]) and np.isneginf(scores[0])  # foreign domain, padding
    blind = oracle_scores([h for h in history if h[1]], a, cfg, see_feedback=False)
    assert {item_cluster(i, cfg) for i in np.flatnonzero(blind == blind.max())} == {(a, 2)}  # guesses shift 0


def test_oracle_ceiling_on_the_built_split_separates_seen_from_unseen_feedback(tmp_path):
    from recsys_kit.transition2.planted import oracle_evaluation
    from recsys_kit.transition2.train import TrainConfig, prepare

    ceilings = {}
    for effect in (True, False):
        cfg = PlantedConfig(n_users=80, seq_len=16, strength=1.0, feedback_effect=effect, seed=2)
        folder = planted_source(tmp_path / f"src{effect}", cfg)
        prepared = prepare(TrainConfig(build=planted_build_config(folder, dataset=f"p{effect}"),
                                       data_dir=str(tmp_path / "data"), max_seq_length=16))
        ceilings[effect] = [oracle_evaluation(prepared.test, prepared.dataset, cfg, see_feedback=fb)
                            .metrics["full_ndcg@10"] for fb in (True, False)]
    # the rule fixes the target's cluster (8 items): NDCG@10 of a uniform rank in 0..7 is 0.49
    assert ceilings[True][0] > 0.42 and ceilings[True][1] < 0.32
    assert ceilings[False][0] == ceilings[False][1] > 0.42  # no feedback effect: the signs add nothing
