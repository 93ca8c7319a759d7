import numpy as np
import pytest

from recsys_kit.damrs.features import Modality, align_to_catalogue, load_modality, validate_modality
from shared.errors import DataError


def test_align_puts_rows_in_internal_order_with_zero_pad(tmp_path):
    features = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "f.npy", features)
    modality = load_modality(tmp_path / "f.npy", tokens=["a", "b", "c", "d"])
    aligned = align_to_catalogue(modality, ["[PAD]", "c", "a", "d", "b"])
    assert np.all(aligned[0] == 0)
    np.testing.assert_array_equal(aligned[1:], features[[2, 0, 3, 1]])


def test_row_count_must_match_catalogue_without_token_file(tmp_path):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(3, 2)))
    modality = load_modality(tmp_path / "f.npy")
    with pytest.raises(DataError, match="3 feature rows but the catalogue has 4 items"):
        align_to_catalogue(modality, ["[PAD]", "0", "1", "2", "3"], strict_rows=True)
    with pytest.raises(DataError, match="no feature row"):
        align_to_catalogue(modality, ["[PAD]", "0", "7"])


def test_token_file_length_mismatch_nan_and_zero_variance_are_data_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="item tokens"):
        validate_modality(Modality("x", rng.normal(size=(3, 2)), ["a", "b"]))
    bad = rng.normal(size=(3, 2))
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        validate_modality(Modality("x", bad, ["a", "b", "c"]))
    with pytest.raises(DataError, match="zero variance"):
        validate_modality(Modality("flat", np.ones((3, 2)), ["a", "b", "c"]))
    with pytest.raises(DataError, match="does not exist"):
        load_modality(tmp_path / "missing.npy")
