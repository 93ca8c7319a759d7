import math

import torch

from recsys_kit.damrs.losses import (
    bernoulli_kl,
    dbpr_weights,
    denoised_bpr_loss,
    graded_infonce,
    graded_positives,
    item_alignment_loss,
    user_alignment_loss,
    view_neighbour_probs,
)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_dbpr_weights_on_hand_computed_numbers():
    user = torch.tensor([[2.0, 0.0]])
    # two views of the positive: unit vectors at cos 1 and cos 0 with the user; negatives give dot 2 and -2
    pos_views = [torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 5.0]])]
    neg_views = [torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])]
    w_pos, w_neg = dbpr_weights(user, pos_views, neg_views, (1.0, 2.0, 1.0))
    p = [_sig(2.0), _sig(0.0)]
    mean = sum(p) / 2
    var = sum((x - mean) ** 2 for x in p) / 1  # unbiased, n-1 = 1
    assert abs(float(w_pos) - mean * math.exp(-var) ** 2) < 1e-6
    q_mean = (_sig(2.0) + _sig(-2.0)) / 2  # = 0.5 > p̄? p̄ = (0.881 + 0.5)/2 = 0.69 -> not suspicious
    assert mean > q_mean and float(w_neg) == 0.0


def test_dbpr_reversed_term_fires_for_suspicious_positive():
    user = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    half = [0.5, math.sqrt(0.75)]  # cosine 0.5 with the user
    pos_views = [torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[-1.0, 0.0], [1.0, 0.0]])]
    neg_views = [torch.tensor([half, half]), torch.tensor([half, half])]
    w_pos, w_neg = dbpr_weights(user, pos_views, neg_views)
    q_mean = _sig(0.5)
    p_first = [_sig(1.0), _sig(-1.0)]  # mean 0.5 < q̄: suspicious; p_max = σ(1) > q̄
    assert abs(float(w_neg[0]) - (max(p_first) - q_mean)) < 1e-6
    assert float(w_neg[1]) == 0.0  # p̄ = σ(1) is not below q̄
    var = sum((x - 0.5) ** 2 for x in p_first)
    assert abs(float(w_pos[0]) - 0.5 * math.exp(-var) ** 2) < 1e-6
    assert abs(float(w_pos[1]) - _sig(1.0)) < 1e-6  # no spread: w⁺ = p̄


def test_plain_bpr_when_weights_are_one_and_zero():
    pos, neg = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 1.0])
    loss = denoised_bpr_loss(pos, neg, torch.ones(2), torch.zeros(2))
    expected = -torch.nn.functional.logsigmoid(pos - neg).mean()
    torch.testing.assert_close(loss, expected)
    reversed_only = denoised_bpr_loss(pos, neg, torch.zeros(2), torch.ones(2))
    torch.testing.assert_close(reversed_only, -torch.nn.functional.logsigmoid(neg - pos).mean())


def test_bernoulli_kl_known_values_and_au_symmetry():
    p, q = torch.tensor([0.5]), torch.tensor([0.25])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert abs(float(bernoulli_kl(p, q)) - expected) < 1e-6
    assert torch.isfinite(bernoulli_kl(torch.tensor([0.0]), torch.tensor([1.0]))).all()  # clamped, no NaN
    users, items = torch.randn(4, 3), torch.randn(5, 3)
    content = torch.randn(5, 3)
    p_cf = torch.sigmoid(users @ torch.nn.functional.normalize(items, dim=1).T)
    p_mm = torch.sigmoid(users @ torch.nn.functional.normalize(content, dim=1).T)
    official = (bernoulli_kl(p_cf, p_mm) + bernoulli_kl(p_mm, p_cf)).mean()  # the element-wise formula
    torch.testing.assert_close(user_alignment_loss(users, items, content), official, rtol=1e-4, atol=1e-6)
    assert float(user_alignment_loss(users, items, items)) < 1e-6
    a = user_alignment_loss(users, items, torch.randn(5, 3))
    assert float(a) > 0


def test_ai_second_grade_excludes_first_grade_and_pad():
    torch.manual_seed(0)
    views = [torch.randn(30, 4) for _ in range(3)]
    excluded = torch.zeros(30, dtype=torch.bool)
    excluded[0] = True
    anchors = torch.arange(1, 30)
    probs = view_neighbour_probs(views, anchors, excluded)
    for m in range(3):
        first, second = graded_positives(probs, m, n_pos=5, excluded=excluded)
        for f, s in zip(first.tolist(), second.tolist()):
            assert not set(f) & set(s)
            assert 0 not in f and 0 not in s
        # second grade = own view's best among the rest
        own = probs[m].clone()
        own.scatter_(1, first, 0.0)
        own[:, 0] = -1
        expected = torch.topk(own, 5, dim=1).indices
        assert torch.equal(torch.sort(second, 1).values, torch.sort(expected, 1).values)


def test_graded_infonce_matches_formula_and_has_gradients():
    torch.manual_seed(1)
    view = torch.randn(6, 3, requires_grad=True)
    anchors = torch.tensor([0, 2])
    first, second = torch.tensor([[0, 1], [2, 3]]), torch.tensor([[4, 5], [5, 0]])
    loss = graded_infonce(view, anchors, first, second, temperature=0.2)
    unit = torch.nn.functional.normalize(view.detach(), dim=1)
    e = torch.exp(unit @ unit.T / 0.2)
    total = 0.0
    for a_i, a in enumerate(anchors.tolist()):
        all_ = e[a].sum()
        pp = e[a, first[a_i]].sum()
        p = e[a, second[a_i]].sum()
        total += -math.log(pp / all_) - math.log(p / (all_ - pp))
    assert abs(float(loss.detach()) - total / 2) < 1e-4
    loss.backward()
    assert view.grad.abs().sum() > 0
    full = item_alignment_loss([torch.randn(12, 4, requires_grad=True) for _ in range(2)], torch.arange(12), 3)
    assert torch.isfinite(full)
