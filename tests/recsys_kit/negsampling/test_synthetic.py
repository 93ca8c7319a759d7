import pandas as pd
import pytest

from recsys_kit.negsampling.experiment import ExperimentConfig, run_experiment
from recsys_kit.negsampling.synthetic import near_duplicate_dataset
from shared.errors import ConfigError


def _frame(folder):
    frame = pd.read_csv(folder / f"{folder.name}.inter", sep="\t")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def test_near_duplicates_share_users_and_the_side_is_planted(tmp_path):
    planted = _frame(near_duplicate_dataset(tmp_path, "p", n_clusters=3, items_per_side=10, users_per_group=20,
                                            per_user=10, own_share=0.8, seed=0))
    null = _frame(near_duplicate_dataset(tmp_path, "n", planted=False, n_clusters=3, items_per_side=10,
                                         users_per_group=20, per_user=10, seed=0))
    for frame, expected in ((planted, 0.8), (null, 0.5)):
        user = frame["user_id"] - 1
        cluster, side = user // 40, (user // 20) % 2
        item = frame["item_id"] - 1
        assert (item // 20 == cluster).all()  # every interaction stays in the user's cluster
        own = (item // 10) % 2 == side
        assert abs(own.mean() - expected) < 0.05  # the twin group is co-interacted: a near duplicate
    assert planted.groupby("user_id").size().eq(10).all()
    with pytest.raises(ConfigError, match="own_share"):
        near_duplicate_dataset(tmp_path, "x", own_share=0.2)


def test_small_planted_control_hard_negatives_beat_uniform(tmp_path):
    """Positive control in the suite: DNS finds the twins that uniform negatives almost never draw."""
    folder = near_duplicate_dataset(tmp_path / "data", "planted", seed=0)
    scores = {}
    for sampler in ("uniform", "dns"):
        cfg = ExperimentConfig(model="BPR", sampler=sampler, dataset=folder.name, data_path=str(folder.parent),
                               seed=0, epochs=40, eval_step=2, stopping_step=5, embedding_size=16,
                               train_batch_size=256)
        scores[sampler] = run_experiment(cfg, work_dir=tmp_path / sampler)["test_ndcg@20"]
    assert scores["dns"] > scores["uniform"] + 0.01, scores
