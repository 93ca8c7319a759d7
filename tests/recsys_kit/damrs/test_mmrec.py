import numpy as np
import pandas as pd
import pytest

from recsys_kit.damrs.data import read_manifest, read_split
from recsys_kit.damrs.features import align_to_catalogue, load_modality
from recsys_kit.damrs.mmrec import convert_mmrec
from shared.errors import DataError


def _fixture(src, labels=None):
    src.mkdir()
    rows = [(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 1, 0), (1, 2, 0), (1, 0, 2), (2, 2, 0), (2, 3, 0), (2, 0, 1),
            (3, 9, 2), (0, 8, 2)]  # user 3 appears only in test: MMRec drops it; warm user 0's cold item 8 stays
    frame = pd.DataFrame(rows, columns=["userID", "itemID", "x_label"])
    frame["rating"], frame["timestamp"] = 5, np.arange(len(rows))
    if labels is not None:
        frame["x_label"] = labels
    frame[["userID", "itemID", "rating", "timestamp", "x_label"]].to_csv(src / "toy.inter", sep="\t", index=False)
    rng = np.random.default_rng(0)
    np.save(src / "image_feat.npy", rng.normal(size=(10, 6)))
    np.save(src / "text_feat.npy", rng.normal(size=(10, 4)))
    return frame


def test_mmrec_round_trip(tmp_path):
    original = _fixture(tmp_path / "mm")
    folder = convert_mmrec(tmp_path / "mm", "toy", tmp_path / "out")
    back = read_split(folder)
    expected = original[~((original.userID == 3) & (original.x_label == 2))]
    labels = {0: "train", 1: "valid", 2: "test"}
    assert set(zip(back.user_id, back.item_id, back.split)) == {
        (str(u), str(i), labels[x]) for u, i, x in zip(expected.userID, expected.itemID, expected.x_label)}
    manifest = {m["name"]: m for m in read_manifest(folder)}
    assert set(manifest) == {"image", "text"}
    image = load_modality(manifest["image"]["file"], manifest["image"]["tokens"], "image")
    aligned = align_to_catalogue(image, ["[PAD]", "2", "0"])
    np.testing.assert_allclose(aligned[1:], np.load(tmp_path / "mm" / "image_feat.npy")[[2, 0]])


def test_mmrec_bad_input(tmp_path):
    _fixture(tmp_path / "bad", labels=[0, 0, 1, 0, 0, 2, 0, 0, 1, 7, 2])
    with pytest.raises(DataError, match="x_label"):
        convert_mmrec(tmp_path / "bad", "toy", tmp_path / "out")
    with pytest.raises(DataError, match="does not exist"):
        convert_mmrec(tmp_path / "nothing", "toy", tmp_path / "out")
