"""Transition² model: masks, graph counts, domain-restricted ranking, losses, switches, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_kit.transition2.model import (
    PRESETS,
    compact_positive_history,
    last_window,
    normalised_count_graphs,
    transition_counts,
    transition_masks,
)
from recsys_kit.transition2.train import build_model
from shared.errors import ConfigError


def test_masks_on_a_hand_made_sequence():
    # positions: 0 = (A, +), 1 = (B, -), 2 = (A, -), 3 = (B, +), 4 = padding
    items = torch.tensor([[5, 6, 7, 8, 0]])
    domains = torch.tensor([[1, 2, 1, 2, 0]])
    positive = torch.tensor([[True, False, False, True, False]])
    names = ["all", "intra_dom", "cross_dom", "same_fb", "cross_fb", "neg_to_pos", "cross_dom&cross_fb"]
    m = transition_masks(items, domains, positive, names)[0]          # (7, L, L)
    eye = np.eye(5, dtype=bool)
    causal = np.tril(np.ones((5, 5), dtype=bool)) & np.array([1, 1, 1, 1, 0], bool)[None, :]
    assert m.shape == (7, 5, 5)
    np.testing.assert_array_equal(m[0].numpy(), causal | eye)
    # query 3 (B, +): intra-domain keys {1, 3}; cross-domain {0, 2} (+ itself); same feedback {0, 3}
    assert m[1, 3].tolist() == [False, True, False, True, False]
    assert m[2, 3].tolist() == [True, False, True, True, False]
    assert m[3, 3].tolist() == [True, False, False, True, False]
    assert m[4, 3].tolist() == [False, True, True, True, False]
    assert m[5, 3].tolist() == [False, True, True, True, False]       # negative keys -> positive query
    assert m[6, 3].tolist() == [False, False, True, True, False]      # key 2 = (A, -): cross domain and feedback
    # causal: no mask lets a query see a later key; the diagonal is always on; padding keys are never seen
    for mask in m:
        assert not (mask.numpy() & ~np.tril(np.ones((5, 5), dtype=bool))).any()
        assert mask.diagonal().all()
        assert not mask[:4, 4].any()
    with pytest.raises(ConfigError, match="unknown head mask"):
        transition_masks(items, domains, positive, ["intra_feedback"])


def test_compacting_drops_negatives_and_left_aligns():
    items = torch.tensor([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]])
    keep = torch.tensor([[True, False, True, False, False], [False, False, False, False, False]])
    new_items, lengths = compact_positive_history(items, keep)
    assert new_items.tolist() == [[3, 5, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert lengths.tolist() == [2, 0]


def test_transition_counts_equal_a_hand_count():
    seqs = [{"items": np.array([1, 2, 3, 1]), "positive": np.array([True, False, True, True]),
             "domains": np.array([1, 2, 1, 1])},
            {"items": np.array([2, 3]), "positive": np.array([False, True]), "domains": np.array([2, 1])}]
    c = transition_counts(seqs, n_items=5, scope="mixed", symmetric=False)
    dense = {k: v.toarray() for k, v in c.items()}
    assert dense[("pos", "neg")][1, 2] == 1 and dense[("pos", "neg")].sum() == 1
    assert dense[("neg", "pos")][2, 3] == 2 and dense[("neg", "pos")].sum() == 2
    assert dense[("pos", "pos")][3, 1] == 1 and dense[("pos", "pos")].sum() == 1
    assert dense[("neg", "neg")].sum() == 0
    single = {k: v.toarray() for k, v in transition_counts(seqs, 5, scope="single", symmetric=False).items()}
    # domain-1 chain of user 1 is 1(+) -> 3(+) -> 1(+); domain 2 has single items
    assert single[("pos", "pos")][1, 3] == 1 and single[("pos", "pos")][3, 1] == 1
    assert sum(v.sum() for v in single.values()) == 2
    sym = transition_counts(seqs, 5, symmetric=True)
    assert sym[("neg", "pos")].toarray()[3, 2] == 2
    # rows of D_abs^-1 Σ C_ab sum to one for items with at least one transition
    normalised = sum(g.to_dense() for g in normalised_count_graphs(sym))
    np.testing.assert_allclose(normalised.sum(1).numpy()[1:4], 1.0, rtol=1e-6)


def test_graph_counts_use_training_histories_only(prepared):
    """The model's graph is exactly the normalised counts of train_sequences (which test_data checks end before
    each user's validation target), and every counted transition is a consecutive training pair."""
    model = build_model(prepared, "t2_v1", {"inner_size": 32, "graph_symmetric": False})
    sequences = prepared.dataset.train_sequences
    counts = transition_counts(sequences, model.n_items, symmetric=False)
    total = sum(max(len(s["items"]) - 1, 0) for s in sequences)
    assert sum(c.sum() for c in counts.values()) == total
    expected = normalised_count_graphs(counts)
    for k in range(4):
        torch.testing.assert_close(getattr(model, f"graph_0_{k}").to_dense(), expected[k].to_dense())
    n_train_rows = sum(int(s["positive"][1:].sum()) for s in sequences)
    assert n_train_rows == len(prepared.train.inter_feat)  # the same cut as RecBole's LS split


def test_learned_edge_weights_get_gradients_and_fixed_ones_do_not(prepared):
    batch = prepared.train.inter_feat[:32]
    learned = build_model(prepared, "t2_v1", {"inner_size": 32})
    learned.calculate_loss(batch).backward()
    assert learned.edge_weights.grad is not None and learned.edge_weights.grad.abs().sum() > 0
    fixed = build_model(prepared, "t2_v1", {"inner_size": 32, "edge_weighting": "fixed_2x2"})
    assert not fixed.edge_weights.requires_grad
    uniform = build_model(prepared, "c2dsr_lite", {"inner_size": 32})
    assert uniform.edge_weights.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_domain_mask_never_ranks_a_foreign_item(prepared):
    model = build_model(prepared, "t2_v2", {"inner_size": 32}).eval()
    batch = prepared.test.inter_feat[:64]
    scores = model.full_sort_predict(batch)
    allowed = torch.as_tensor(prepared.item_domain)[None, :] == batch["domain"][:, None]
    assert (scores[~allowed] <= -1e8).all() and (scores[allowed] > -1e8).all()
    assert (scores[:, 0] <= -1e8).all()
    top = scores.topk(10, dim=1).indices
    assert (torch.as_tensor(prepared.item_domain)[top] == batch["domain"][:, None]).all()


def _edited(batch, **fields):
    batch = batch[torch.arange(len(batch))]  # a copy
    for key, fn in fields.items():
        batch.interaction[key] = fn(batch[key])
    return batch


@pytest.mark.parametrize("arm", list(PRESETS))
def test_finite_loss_with_all_negative_or_single_domain_histories(prepared, arm):
    model = build_model(prepared, arm, {"inner_size": 32})
    batch = prepared.train.inter_feat[:16]
    neg = prepared.dataset.field2token_id["feedback"]["neg"]
    all_negative = _edited(batch, feedback_list=lambda f: torch.where(f > 0, torch.full_like(f, neg), f))
    one_domain = _edited(batch, domain_list=lambda d: torch.where(d > 0, batch["domain"][:, None].expand_as(d), d))
    for variant in (all_negative, one_domain):
        loss = model.calculate_loss(variant)
        assert torch.isfinite(loss)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("overrides", [
    {"ctmsa_mode": "per_mask_fusion"}, {"pred_head": "per_domain_linear"}, {"graph_scope": "mixed+single"},
    {"align_view": "graph_sequence", "fuse_graph_user": True}, {"cont_form": "triplet"},
    {"use_domain_emb": True, "gnn_layers": 2, "edge_weight_init": [1, -0.5, -0.5, 0.5]},
    {"head_masks": ["all", "neg_to_pos"]},
])
def test_every_switch_trains(prepared, overrides):
    model = build_model(prepared, "t2_v2", {"inner_size": 32, **overrides})
    loss = model.calculate_loss(prepared.train.inter_feat[:16])
    assert torch.isfinite(loss)
    loss.backward()


def test_bad_switches_are_config_errors(prepared):
    with pytest.raises(ConfigError, match="pred_head"):
        build_model(prepared, "t2_v1", {"inner_size": 32, "pred_head": "mlp"})
    with pytest.raises(ConfigError, match="head_masks"):
        build_model(prepared, "t2_v1", {"inner_size": 32, "head_masks": ["all", "all", "all"]})
    with pytest.raises(ConfigError, match="unknown Transition2 setting"):
        build_model(prepared, "t2_v1", {"inner_size": 32, "use_grapf": True})


def test_intra_domain_heads_ignore_the_other_domain(prepared):
    """With every head intra-domain, the user state must not change when foreign-domain items change."""
    model = build_model(prepared, "t2_v1", {"inner_size": 32, "use_graph": False,
                                            "head_masks": ["intra_dom"]}).eval()
    batch = prepared.test.inter_feat[:32]
    last = batch["item_length"] - 1
    last_domain = batch["domain_list"][torch.arange(len(batch)), last]
    foreign = (batch["domain_list"] != last_domain[:, None]) & (batch["item_id_list"] > 0)
    assert foreign.any()
    swapped = _edited(batch, item_id_list=lambda s: torch.where(foreign, (s % 50) + 1, s))
    with torch.no_grad():
        before, after = model.encode(batch)["user"], model.encode(swapped)["user"]
        torch.testing.assert_close(before, after)
        plain = build_model(prepared, "t2_v1", {"inner_size": 32, "use_graph": False, "head_masks": ["all"]}).eval()
        assert not torch.allclose(plain.encode(batch)["user"], plain.encode(swapped)["user"])


def test_deterministic_under_a_seed(prepared):
    losses = []
    for _ in range(2):
        model = build_model(prepared, "t2_v2", {"inner_size": 32}, seed=3)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step in range(3):
            loss = model.calculate_loss(prepared.train.inter_feat[step * 16:(step + 1) * 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append((loss.item(), model.learned_edge_weights()))
    assert losses[0] == losses[1]


def test_last_window_keeps_the_most_recent_entries():
    items = torch.tensor([[1, 2, 3, 4, 5, 0], [6, 7, 0, 0, 0, 0]])
    new_items, lengths = last_window(items, torch.tensor([5, 2]), 3)
    assert new_items.tolist() == [[3, 4, 5], [6, 7, 0]] and lengths.tolist() == [3, 2]


def test_positive_only_arm_fills_its_window_with_positives(prepared):
    """With dataset lists longer than the window, dropping negatives happens before the window is cut."""
    model = build_model(prepared, "sasrec_mixed", {"inner_size": 32, "input_window": 4})
    batch = prepared.train.inter_feat[:200]
    item_seq, _, feedback_seq, length = model._inputs(batch)
    assert item_seq.shape[1] == 4
    neg = prepared.dataset.field2token_id["feedback"]["neg"]
    assert not (feedback_seq == neg).any()
    positives = (batch["feedback_list"] == prepared.dataset.field2token_id["feedback"]["pos"]).sum(1)
    assert torch.equal(length, positives.clamp(max=4))


@pytest.mark.parametrize("arm", ["sasrec_mixed", "t2_v1"])
def test_positions_count_back_from_the_latest_interaction_by_default(prepared, arm):
    """The latest interaction always gets position 0 and the one before it 1, whatever the history length, so a
    relation between consecutive steps (a feedback transition) is one pattern for every row; with forward
    positions (RecBole's) test rows, the longest histories, put it at positions that training rarely reaches."""
    model = build_model(prepared, arm, {"inner_size": 32})
    seen = []
    model.position_embedding.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    batch = prepared.train.inter_feat[:300]
    length = model._inputs(batch)[-1]
    model.encode(batch)
    rows = torch.nonzero(length >= 2).squeeze(1)
    length = length[rows]
    assert len(set(length.tolist())) > 3
    assert (seen[0][rows, length - 1] == 0).all() and (seen[0][rows, length - 2] == 1).all()
    forward = build_model(prepared, arm, {"inner_size": 32, "position_order": "forward"})
    seen.clear()
    forward.position_embedding.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    forward.encode(batch)
    assert torch.equal(seen[0][rows, length - 1], length - 1)


def test_contrastive_terms_reward_the_right_direction(prepared):
    """L_cont is small when the user state points at its liked positions and large at its disliked ones; L_align
    (domain view) is small when each user's two domain views agree and large when they are swapped across users."""
    model = build_model(prepared, "t2_v2", {"inner_size": 32})
    torch.manual_seed(0)
    batch, length, d = 8, 6, model.hidden_size
    liked, disliked = torch.randn(batch, d), torch.randn(batch, d)
    positive = torch.tensor([True, False] * 3).repeat(batch, 1)                       # (B, L)
    hidden = torch.where(positive.unsqueeze(-1), liked.unsqueeze(1), disliked.unsqueeze(1))
    state = {"hidden": hidden, "valid": torch.ones(batch, length), "positive": positive}
    near_liked = model.feedback_contrast_loss({**state, "user": liked})
    near_disliked = model.feedback_contrast_loss({**state, "user": disliked})
    assert near_liked < 0.05 < 3.0 < near_disliked
    domains = torch.tensor([1, 2] * 3).repeat(batch, 1)
    view = torch.randn(batch, d)
    agree = {"hidden": view.unsqueeze(1).expand(batch, length, d), "valid": torch.ones(batch, length),
             "domain_seq": domains}
    swapped = dict(agree, hidden=torch.where(domains.unsqueeze(-1) == 1, view.unsqueeze(1), view.roll(1, 0).unsqueeze(1)))
    target = torch.ones(batch, dtype=torch.long)
    assert model.align_loss(agree, target) < model.align_loss(swapped, target) - 1.0
