import pytest
import torch

from recsys_kit.negsampling import get_sampler
from recsys_kit.negsampling.hook import build_context
from recsys_kit.negsampling.knowledge import load_knowledge_graph
from shared.errors import DataError


def test_kg_loads_and_two_hop_walks_share_an_attribute(tiny_recbole, tiny_dataset):
    _, train, _, _, _ = tiny_recbole("BPR")
    ds = train.dataset
    token_to_id = ds.field2token_id[ds.iid_field]
    kg = load_knowledge_graph(tiny_dataset / "tiny", "tiny", token_to_id, ds.item_num)
    ids = torch.tensor([token_to_id[f"i{i}"] for i in range(0, 120, 7)])
    reached, found = kg.two_hop(ids.repeat(50), torch.Generator().manual_seed(0))
    assert found.all()
    id_to_token = {v: k for k, v in token_to_id.items()}
    # every item shares the genre of its 30-item cluster; directors d0..d6 link items i ≡ 0 (mod 3)
    for src, dst in zip(ids.repeat(50).tolist(), reached.tolist()):
        a, b = int(id_to_token[src][1:]), int(id_to_token[dst][1:])
        assert a // 30 == b // 30 or (a % 3 == 0 and b % 3 == 0 and a % 7 == b % 7)


def test_kg_samplers_stay_off_positives_and_policy_learns(tiny_recbole):
    _, train, _, _, model = tiny_recbole("BPR")
    ctx = build_context(train.dataset, with_kg=True)
    batch = next(iter(train))
    users, pos = batch["user_id"], batch["item_id"]
    for name in ("kg_neighbour", "kgpolicy"):
        sampler = get_sampler(name, seed=0).bind(ctx)
        items = sampler.sample(model, users, pos).items
        assert not ctx.positives.contains(users, items).any()
    before = [p.detach().clone() for p in sampler.policy.parameters()]
    sampler.after_step(model, batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, sampler.policy.parameters()))


def test_missing_kg_files_are_data_errors(tmp_path, tiny_recbole):
    _, train, _, _, _ = tiny_recbole("BPR")
    with pytest.raises(DataError, match=r"\.kg"):
        load_knowledge_graph(tmp_path, "tiny", {}, 10)
    with pytest.raises(DataError, match="knowledge graph"):
        get_sampler("kg_neighbour").bind(build_context(train.dataset))
