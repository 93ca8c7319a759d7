import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_kit.ecr.kg import KnowledgeGraph
from recsys_kit.ecr.rec.loss import feedback_weights, weighted_cross_entropy
from recsys_kit.ecr.rec.metrics import auc, batch_auc, rank_metrics
from recsys_kit.ecr.rec.model import RGCN, ECRRecommender, RecModelConfig, relation_edges
from shared.errors import ConfigError


def toy_kg():
    # 0 -r0-> 1, 0 -r0-> 2, 1 -r1-> 3 ; items 0..2
    return KnowledgeGraph(4, np.array([0, 0, 1]), np.array([0, 0, 1]), np.array([1, 2, 3]), ["a", "b"],
                          {i: f"e{i}" for i in range(4)}, np.array([0, 1, 2]), {})


def test_rgcn_matches_the_formula():
    torch.manual_seed(0)
    kg = toy_kg()
    layer = RGCN(3, 2, num_bases=2)
    x = torch.randn(4, 3)
    out = layer(x, relation_edges(kg))
    W = torch.einsum("rb,bio->rio", layer.coefficients, layer.bases)
    expected = layer.root(x)
    expected[0] += ((x[1] + x[2]) / 2) @ W[0]  # mean over node 0's two r0 neighbours
    expected[1] += x[0] @ W[0] + x[3] @ W[1]  # edges are used in both directions
    expected[2] += x[0] @ W[0]
    expected[3] += x[1] @ W[1]
    assert torch.allclose(out, expected, atol=1e-6)


def test_relation_types_matter():
    kg = toy_kg()
    torch.manual_seed(0)
    layer, x = RGCN(3, 2), torch.randn(4, 3)
    swapped = KnowledgeGraph(4, kg.heads, 1 - kg.relations, kg.tails, kg.relation_names, kg.entity_names, kg.item_ids, {})
    assert not torch.allclose(layer(x, relation_edges(kg)), layer(x, relation_edges(swapped)))


def batch(B=2, n_e=3, n_t=2, text_dim=8):
    return {"text": torch.randn(B, n_t, text_dim), "text_mask": torch.tensor([[True, True], [True, False]]),
            "turn_position": torch.zeros(B, n_t, dtype=torch.long), "entities": torch.tensor([[0, 1, 3], [2, 0, 0]]),
            "entity_mask": torch.tensor([[True, True, True], [True, False, False]]),
            "emotion_labels": torch.tensor([[[0, 9], [4, 1], [9, 9]], [[2, 9], [9, 9], [9, 9]]]),
            "emotion_probs": torch.tensor([[[1.0, 0], [.6, .4], [0, 0]], [[1.0, 0], [0, 0], [0, 0]]]),
            "target": torch.tensor([1, 2])}


def test_ecr_forward_shapes_and_gradients():
    torch.manual_seed(0)
    kg = toy_kg()
    P = sp.csr_matrix(np.array([[0, .5, .5, 0], [0, 0, 0, 1.0], [0, 0, 0, 0], [1.0, 0, 0, 0]], dtype=np.float32))
    config = RecModelConfig(dim=16, entity_dim=8, emotion_dim=4, n_heads=2, text_dim=8, dropout=0.0)
    model = ECRRecommender(kg, config, P)
    b = batch()
    logits = model(b)
    assert logits.shape == (2, 4)
    weighted_cross_entropy(logits, b["target"]).backward()
    assert model.emotions.embedding.weight.grad[[0, 4, 1, 2]].abs().sum() > 0
    assert model.emotions.embedding.weight.grad[9].abs().sum() == 0  # pad label never contributes
    # emotions change the prediction; the baseline ignores them
    b2 = dict(b, emotion_labels=torch.where(b["emotion_labels"] == 4, 0, b["emotion_labels"]))
    with torch.no_grad():
        model.eval()
        assert not torch.allclose(model(b), model(b2))
        baseline = ECRRecommender(kg, RecModelConfig(dim=16, entity_dim=8, n_heads=2, text_dim=8,
                                                     use_emotion=False, use_global=False))
        baseline.eval()
        assert torch.allclose(baseline(b), baseline(b2))
    assert not hasattr(baseline, "emotions")


def test_weighted_loss_follows_feedback():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    w = feedback_weights(["like", "dislike", "not_say"])
    assert w.tolist() == [2.0, 1.0, 0.5]
    assert torch.isclose(weighted_cross_entropy(logits, targets, w), (2 * ce[0] + ce[1] + 0.5 * ce[2]) / 3)
    with pytest.raises(ConfigError, match="no loss weight"):
        feedback_weights(["meh"])


def test_metrics_on_hand_rankings():
    ranks = [0, 5, 20, 60]
    probs = [0.4, 0.1, 0.3, 0.1]
    feedback = ["like", "dislike", "like", "not_say"]
    m = rank_metrics(ranks, probs, feedback, batch_size=2)
    assert m["R@1"] == 0.25 and m["R@10"] == 0.5 and m["R@50"] == 0.75
    assert m["RT@1"] == 0.5 and m["RT@10"] == 0.5 and m["RT@50"] == 1.0
    assert m["MRR"] == pytest.approx((1 + 1 / 6 + 1 / 21 + 1 / 61) / 4)
    assert m["AUC"] == 1.0  # both liked golds beat the disliked one
    assert m["AUC_batch"] == 1.0  # only the first batch has both kinds
    assert auc([0.2, 0.5], [0.5]) == 0.25 and np.isnan(auc([], [1.0]))
    assert batch_auc([0.1, 0.9, 0.9, 0.1], ["like", "dislike", "like", "dislike"], 2) == 0.5
