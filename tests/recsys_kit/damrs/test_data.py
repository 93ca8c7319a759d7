import pytest

from recsys_kit.damrs.data import (
    chronological_split,
    ml100k_interactions,
    read_manifest,
    read_split,
    write_split,
)
from shared.errors import DataError

from .conftest import tiny_frame


def test_ml100k_chronological_split_sizes():
    frame = chronological_split(ml100k_interactions())
    counts = frame["split"].value_counts().to_dict()
    assert counts == {"train": 80024, "valid": 9988, "test": 9988}
    # per user, every test interaction is no earlier than any training one
    last_train = frame[frame.split == "train"].groupby("user_id")["timestamp"].max()
    first_test = frame[frame.split == "test"].groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.loc[first_test.index]).all()


def test_split_round_trip_and_errors(tmp_path):
    frame = chronological_split(tiny_frame())
    folder = write_split(frame, tmp_path, "toy")
    back = read_split(folder)
    assert len(back) == len(frame)
    assert set(zip(back.user_id, back.item_id, back.split)) == set(zip(frame.user_id, frame.item_id, frame.split))
    with pytest.raises(DataError, match="modalities.json"):
        read_manifest(folder)
    with pytest.raises(DataError, match="empty"):
        write_split(frame[frame.split != "test"], tmp_path, "broken")
