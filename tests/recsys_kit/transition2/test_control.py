"""A small planted positive control in the suite: Transition² must use the feedback transition that a
positive-only history cannot see (the full control, with SE rules and the negative control, is in the benchmark)."""

from __future__ import annotations

import dataclasses

import torch

from recsys_kit.transition2.planted import PlantedConfig, planted_build_config, planted_source
from recsys_kit.transition2.train import TrainConfig, prepare, train_arm


def test_t2_beats_sasrec_mixed_on_planted_feedback_switches(tmp_path):
    torch.set_num_threads(1)
    source = planted_source(tmp_path / "src", PlantedConfig(n_users=200, seq_len=20, items_per_cluster=4,
                                                            strength=1.0, seed=3))
    cfg = TrainConfig(build=planted_build_config(source), data_dir=str(tmp_path / "data"), max_seq_length=12,
                      hidden_size=16, epochs=12, patience=3, learning_rate=5e-3, n_sampled=1,
                      model={"inner_size": 32})
    prepared = prepare(cfg)
    ndcg = {arm: train_arm(prepared, dataclasses.replace(cfg, arm=arm)).test.metrics
            for arm in ("sasrec_mixed", "t2_v1")}
    # the rule's floor: a positive-only history guesses shift 0 (right ~45% of the time); T² sees the transition.
    # Measured at this seed: +0.08 (A) / +0.13 (B); labels shuffled: +0.07 / +0.02 (see planted.py on that caveat)
    for domain in ("A", "B"):
        assert ndcg["t2_v1"][f"{domain}_full_ndcg@10"] > ndcg["sasrec_mixed"][f"{domain}_full_ndcg@10"] + 0.04
