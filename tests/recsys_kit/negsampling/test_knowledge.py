import numpy as np
import pytest
import torch

from recsys_kit.negsampling import get_sampler
from recsys_kit.negsampling.backbone import score_candidates
from recsys_kit.negsampling.hook import build_context
from recsys_kit.negsampling.knowledge import (
    GraphSAGE,
    KnowledgeGraph,
    action_table,
    gcn_neighbours,
    load_knowledge_graph,
)
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


def test_action_table_holds_sampled_kg_neighbours_then_random_items():
    rng = np.random.default_rng(0)
    items, attrs = rng.integers(1, 60, 400), rng.integers(0, 9, 400)
    kg = KnowledgeGraph.from_pairs(items, attrs, 60, 9)
    table = action_table(kg, edge_threshold=5, num_random=4, generator=torch.Generator().manual_seed(0))
    assert table.shape == (69, 9)
    neighbours = {i: {60 + a for a in set(attrs[items == i].tolist())} for i in range(60)}
    neighbours.update({60 + a: set(items[attrs == a].tolist()) for a in range(9)})
    for node, truth in neighbours.items():
        head = table[node, :5].tolist()
        if len(truth) >= 5:  # a sample without replacement of the true neighbours
            assert len(set(head)) == 5 and set(head) <= truth
        else:  # every neighbour, padded with random items
            assert truth <= set(head) and all(1 <= x < 60 for x in head if x not in truth)
        assert all(1 <= x < 60 for x in table[node, 5:].tolist())  # the random-item half


def test_kgpolicy_walk_is_greedy_and_prunes_every_step(tiny_recbole):
    _, train, _, _, model = tiny_recbole("BPR")
    ctx = build_context(train.dataset, with_kg=True)
    batch = next(iter(train))
    users, pos = batch["user_id"], batch["item_id"]
    sampler = get_sampler("kgpolicy", k_step=3, num_sample=8, seed=0).bind(ctx)
    items = sampler.sample(model, users, pos).items
    anchors = pos
    for anchor, acts1, hop1, entity, acts2, hop2, pool in sampler.last_walk:
        assert torch.equal(anchor, anchors)  # each step starts from the previous step's negative
        assert torch.equal(hop1, sampler.policy.logits(users, anchor, acts1).argmax(1))  # hop 1: argmax
        assert torch.equal(entity, acts1.gather(1, hop1.unsqueeze(1))[:, 0])
        top = sampler.policy.logits(users, entity, acts2).topk(8, dim=1).indices
        assert (top == hop2.unsqueeze(1)).any(1).all()  # hop 2: one of the policy's top-num_sample
        assert ((pool >= 1) & (pool < ctx.n_items)).all() and not ctx.positives.contains(users.unsqueeze(1), pool).any()
        scores = score_candidates(model, users, pool)
        anchors = pool.gather(1, scores.argmax(1, keepdim=True))[:, 0]  # prune: the recommender's argmax
    assert torch.equal(items, anchors)  # the last step's pruned item is the training negative


def test_graphsage_encoder_uses_sampled_kg_neighbours_padded_with_self_loops():
    kg = KnowledgeGraph.from_pairs(np.array([1, 1, 2, 3]), np.array([0, 1, 0, 1]), 5, 2)
    table = action_table(kg, edge_threshold=3, num_random=2, generator=torch.Generator().manual_seed(0))
    neighbours = gcn_neighbours(kg, table, 3)
    assert neighbours.shape == (7, 3)
    assert set(neighbours[1].tolist()) == {5, 6, 1}  # item 1: both attributes, then itself
    assert neighbours[4].tolist() == [4, 4, 4]  # no KG neighbour: self-loops only (not random items)
    assert set(neighbours[5].tolist()) == {1, 2, 5}  # attribute 0 -> items 1, 2, then itself
    sage = GraphSAGE(8)
    out = sage(torch.randn(7, 8), neighbours)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(7))
    assert [tuple(layer["self"].weight.shape) for layer in sage.layers] == [(4, 8), (8, 4)]  # [d, d/2] -> [d/2, d]


def test_kgpolicy_trains_its_graphsage(tiny_recbole):
    _, train, _, _, model = tiny_recbole("BPR")
    ctx = build_context(train.dataset, with_kg=True)
    sampler = get_sampler("kgpolicy", num_sample=8, edge_threshold=8, num_random=8, dim=16, lr=1e-2, seed=0).bind(ctx)
    assert sampler.policy.sage is not None
    before = [p.detach().clone() for p in sampler.policy.sage.parameters()]
    batch = next(iter(train))
    sampler.sample(model, batch["user_id"], batch["item_id"])
    sampler.after_step(model, batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, sampler.policy.sage.parameters()))
    lite = get_sampler("kgpolicy", encoder="embedding", seed=0).bind(ctx)
    assert lite.policy.sage is None
