import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_kit.negsampling import (
    PositiveIndex,
    context_from_arrays,
    get_sampler,
    sampler_names,
    uniform_candidates,
)
from recsys_kit.negsampling.knowledge import KnowledgeGraph
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


# --- property tests (hypothesis): random catalogues, positive sets, batches and seeds -----------------------

def _random_context(n_users: int, n_items: int, density: float, seed: int):
    """A context with per-user random positive sets (every user keeps at least one negative) + KG + known negatives."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(1, n_users):
        n_pos = int(rng.binomial(n_items - 2, density))  # <= n_items - 2 of the n_items - 1 real items
        users += [user] * n_pos
        items += rng.choice(np.arange(1, n_items), size=n_pos, replace=False).tolist()
    if not users:  # at least one interaction
        users, items = [1], [1]
    ctx = context_from_arrays(np.array(users), np.array(items), n_users, n_items)
    ctx.known_negatives = PositiveIndex(rng.integers(1, n_users, 200), rng.integers(1, n_items, 200), n_users, n_items)
    kg_items = np.r_[np.arange(1, n_items), rng.integers(1, n_items, n_items)]
    ctx.kg = KnowledgeGraph.from_pairs(kg_items, kg_items % 7, n_items, 7)
    ctx.max_epochs = 4
    return ctx


class _MF(torch.nn.Module):
    """A RecBole-like MF (``user_embedding``/``item_embedding``) with random scores."""

    USER_ID, ITEM_ID, NEG_ITEM_ID = "user_id", "item_id", "neg_item_id"

    def __init__(self, n_users: int, n_items: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.user_embedding = torch.nn.Embedding.from_pretrained(torch.randn(n_users, 8, generator=gen), freeze=False)
        self.item_embedding = torch.nn.Embedding.from_pretrained(torch.randn(n_items, 8, generator=gen), freeze=False)


CATALOGUE = dict(n_users=st.integers(2, 40), n_items=st.integers(40, 150), density=st.floats(0.0, 0.6),
                 seed=st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 300), num=st.integers(1, 20), **CATALOGUE)
def test_uniform_candidates_never_positive_or_pad_and_reproducible(batch, num, n_users, n_items, density, seed):
    ctx = _random_context(n_users, n_items, density, seed)
    users = torch.randint(1, n_users, (batch,), generator=torch.Generator().manual_seed(seed))
    cand = uniform_candidates(ctx, users, num, torch.Generator().manual_seed(seed))
    assert cand.shape == (batch, num)
    assert not ctx.positives.contains(users.unsqueeze(1), cand).any()
    assert cand.min() >= 1 and cand.max() < n_items
    assert torch.equal(cand, uniform_candidates(ctx, users, num, torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("name", sampler_names())
@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 96), epoch=st.integers(0, 3), **CATALOGUE)
def test_every_sampler_never_returns_a_training_positive(name, batch, epoch, n_users, n_items, density, seed):
    ctx = _random_context(n_users, n_items, density, seed)
    model = _MF(n_users, n_items, seed % 1000)
    sampler = get_sampler(name, seed=seed % 2**31).bind(ctx)
    if hasattr(sampler, "build_gates"):
        sampler.build_gates(model)
    gen = torch.Generator().manual_seed(seed)
    for step in range(2):  # two batches: stateful samplers (SRNS memory, IRGAN/KGPolicy) change between them
        users = torch.randint(1, n_users, (batch,), generator=gen)
        pos = torch.randint(1, n_items, (batch,), generator=gen)
        sampler.on_epoch_start(model, epoch + step)
        out = sampler.sample(model, users, pos)
        items = out.items
        assert items.shape[0] == batch
        assert (items >= 1).all() and (items < n_items).all(), name
        users_b = users.reshape(-1, *([1] * (items.dim() - 1))).expand_as(items)
        assert not ctx.positives.contains(users_b, items).any(), name
        if out.weights is not None:
            torch.testing.assert_close(out.weights.sum(-1), torch.ones(batch))


def test_base_imports_no_family_module_and_registry_still_fills():
    """No import circle: base.py never imports the families; each registers itself, the package imports them."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import recsys_kit.negsampling.base as base_module

    families = {"static", "dynamic", "adversarial", "reweighting", "knowledge", "mcns"}
    tree = ast.parse(Path(base_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recsys_kit.negsampling"):
            imported |= {node.module.rsplit(".", 1)[-1]} | {alias.name for alias in node.names}
        if isinstance(node, ast.Import):
            imported |= {alias.name.rsplit(".", 1)[-1] for alias in node.names}
    assert not imported & families
    code = ("from recsys_kit.negsampling.base import get_sampler, SAMPLERS\n"
            "print(type(get_sampler('kgpolicy')).__name__, type(get_sampler('mcns')).__name__, len(SAMPLERS))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split()[:2] == ["KGPolicySampler", "MCNSSampler"], proc.stderr[-1500:]
