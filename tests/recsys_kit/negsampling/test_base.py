import numpy as np
import pytest
import torch

from recsys_kit.negsampling import (
    PositiveIndex,
    context_from_arrays,
    get_sampler,
    sampler_names,
    uniform_candidates,
)
from shared.errors import ConfigError, DataError


@pytest.mark.parametrize("dense", [True, False])
def test_positive_index_matches_python_sets(dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(PositiveIndex, "DENSE_LIMIT", 0)
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 30, 400), rng.integers(0, 40, 400)
    index = PositiveIndex(users, items, 30, 40)
    assert (index.dense is not None) == dense
    truth = set(zip(users.tolist(), items.tolist()))
    qu, qi = torch.as_tensor(rng.integers(0, 30, 2000)), torch.as_tensor(rng.integers(0, 40, 2000))
    expected = torch.tensor([(a, b) in truth for a, b in zip(qu.tolist(), qi.tolist())])
    assert torch.equal(index.contains(qu, qi), expected)
    mask = index.dense_mask(torch.tensor([3, 7, 3]))
    for row, user in enumerate([3, 7, 3]):
        assert set(torch.nonzero(mask[row]).ravel().tolist()) == {i for u, i in truth if u == user}


def test_every_sampler_is_registered_under_its_family():
    names = sampler_names()
    assert {"uniform", "popularity", "predefined", "dns", "dns_mn", "cns", "ahns", "srns", "mixgcf", "dens",
            "irgan", "pris", "tce", "kg_neighbour", "kgpolicy"} <= set(names)
    from recsys_kit.negsampling import SAMPLERS

    assert {SAMPLERS[n].family for n in names} == {"static", "dynamic", "adversarial", "reweighting", "knowledge"}
    assert all(SAMPLERS[n].cost for n in names)


def test_unknown_sampler_and_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="unknown negative sampler"):
        get_sampler("nope")
    with pytest.raises(ConfigError, match="top_n"):
        get_sampler("dns_mn", n_candidates=4, top_n=9)
    with pytest.raises(ConfigError, match="sampler 'dns'"):
        get_sampler("dns", bogus=1)


def test_candidate_pool_larger_than_catalogue_is_refused(toy_context):
    with pytest.raises(ConfigError, match="larger than the catalogue"):
        get_sampler("dns", n_candidates=80).bind(toy_context)
    get_sampler("dns", n_candidates=79).bind(toy_context)  # exactly every real item is allowed


def test_user_with_every_item_positive_is_a_data_error():
    users = np.array([1] * 9 + [2])
    items = np.array(list(range(1, 10)) + [3])
    ctx = context_from_arrays(users, items, 3, 10)
    with pytest.raises(DataError, match="every item as a positive"):
        get_sampler("uniform").bind(ctx)


def test_empty_training_split_is_a_data_error():
    with pytest.raises(DataError, match="no interactions"):
        context_from_arrays(np.array([]), np.array([]), 3, 10)


def test_uniform_candidates_never_positive_or_pad_and_reproducible(toy_context):
    # property test over many random batches (hypothesis is not installed in this venv; seeded loop instead)
    for seed in range(30):
        gen = torch.Generator().manual_seed(seed)
        users = torch.randint(1, 50, (int(torch.randint(1, 300, (1,), generator=gen)),), generator=gen)
        cand = uniform_candidates(toy_context, users, 7, torch.Generator().manual_seed(seed))
        assert cand.shape == (len(users), 7)
        assert not toy_context.positives.contains(users.unsqueeze(1), cand).any()
        assert cand.min() >= 1 and cand.max() < 80
        again = uniform_candidates(toy_context, users, 7, torch.Generator().manual_seed(seed))
        assert torch.equal(cand, again)
