import numpy as np
import pytest

from recsys_kit.damrs.data import chronological_split
from recsys_kit.damrs.noise import add_interactions, delete_interactions, replace_modality_rows
from shared.errors import ConfigError

from .conftest import tiny_frame


def test_add_is_seeded_recorded_and_touches_only_train():
    frame = chronological_split(tiny_frame())
    a = add_interactions(frame, 0.2, seed=3)
    b = add_interactions(frame, 0.2, seed=3)
    c = add_interactions(frame, 0.2, seed=4)
    assert a.injected.equals(b.injected) and not a.injected.equals(c.injected)
    n_train = int((frame["split"] == "train").sum())
    assert len(a.injected) == round(0.2 * n_train)
    observed = set(zip(frame["user_id"], frame["item_id"]))
    assert not observed & set(zip(a.injected["user_id"], a.injected["item_id"]))
    for split in ("valid", "test"):
        assert a.frame[a.frame["split"] == split].reset_index(drop=True).equals(
            frame[frame["split"] == split].reset_index(drop=True))
    added = a.frame.iloc[len(frame):]
    assert (added["split"] == "train").all() and len(added) == len(a.injected)


def test_delete_removes_only_training_rows_and_records_them():
    frame = chronological_split(tiny_frame())
    noise = delete_interactions(frame, 0.25, seed=0)
    assert (noise.frame["split"] != "train").sum() == (frame["split"] != "train").sum()
    assert len(noise.frame) == len(frame) - len(noise.injected)
    remaining = set(zip(noise.frame["user_id"], noise.frame["item_id"]))
    assert not remaining & set(zip(noise.injected["user_id"], noise.injected["item_id"]))
    with pytest.raises(ConfigError):
        delete_interactions(frame, 1.5, seed=0)


def test_replace_overwrites_recorded_rows_from_other_items():
    features = np.random.default_rng(0).normal(size=(50, 4))
    noise = replace_modality_rows(features, 0.2, seed=1)
    assert len(noise.replaced_rows) == 10 and np.all(noise.replaced_rows != noise.source_rows)
    np.testing.assert_array_equal(noise.features[noise.replaced_rows], features[noise.source_rows])
    untouched = np.setdiff1d(np.arange(50), noise.replaced_rows)
    np.testing.assert_array_equal(noise.features[untouched], features[untouched])
    again = replace_modality_rows(features, 0.2, seed=1)
    np.testing.assert_array_equal(again.features, noise.features)  # seeded, and the input is not modified
