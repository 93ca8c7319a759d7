"""Attacks: PGD stays in the ε-ball and raises the attacked loss; CW, vision-feature, noise, quantisation."""

from __future__ import annotations

import pytest
import torch

from safety_kit.pip.attacks import (
    CWL2Attack,
    PGDAttack,
    answer_loss,
    quantize_8bit,
    random_sign_noise,
    vision_feature_loss,
)
from safety_kit.pip.experiment import attack_set
from shared.errors import ConfigError


def _loss(adapter, data):
    clean = torch.from_numpy(data.clean_answers)
    return answer_loss(lambda x: adapter.answer_logits(x, data.questions), clean)


@pytest.mark.parametrize("init", ["uniform", "official_plus_alpha", "none"])
def test_pgd_stays_in_eps_ball_and_raises_loss(adapter, task_set, init):
    x, loss = task_set.images, _loss(adapter, task_set)
    attack = PGDAttack(eps=8 / 255, alpha=2 / 255, steps=10, init=init)
    adv = attack.perturb(x, loss)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        before, after = loss(x), loss(adv)
    assert after.mean() > before.mean() + 0.3  # a real attack, not a no-op
    assert (after >= before - 1e-4).float().mean() > 0.9


def test_targeted_pgd_lowers_target_loss(adapter, task_set):
    from safety_kit.pip import scenes as sc

    target = torch.full((len(task_set.images),), sc.TOKEN_ID["yes"])
    loss = answer_loss(lambda x: adapter.answer_logits(x, task_set.questions), target)
    adv = PGDAttack(steps=10, targeted=True).perturb(task_set.images, loss)
    with torch.no_grad():
        assert loss(adv).mean() < loss(task_set.images).mean()


def test_cw_and_vision_attacks_raise_their_losses(adapter, task_set):
    x = task_set.images[:12]
    data_loss = answer_loss(lambda z: adapter.answer_logits(z, task_set.questions[:12]),
                            torch.from_numpy(task_set.clean_answers[:12]))
    adv = CWL2Attack(max_iter=20).perturb(x, data_loss)
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert data_loss(adv).mean() > data_loss(x).mean()
    loss = vision_feature_loss(adapter.vision_features, x)
    adv = PGDAttack(steps=5).perturb(x, loss)
    with torch.no_grad():
        assert loss(x).abs().max() < 1e-10 and loss(adv).mean() > 1e-3


def test_noise_and_quantisation():
    x = torch.full((2, 3, 4, 4), 0.5)
    noisy = random_sign_noise(x, 8 / 255, seed=1)
    torch.testing.assert_close((noisy - x).abs(), torch.full_like(x, 8 / 255))
    assert not torch.equal(noisy, random_sign_noise(x, 8 / 255, seed=2))
    q = quantize_8bit(torch.tensor([0.0, 0.5, 0.50001, 1.2, -0.1]))
    torch.testing.assert_close(q * 255, torch.round(q * 255))
    assert q.min() == 0 and q.max() == 1


def test_attack_set_quantises_and_reports_success(adapter, task_set):
    adv, success = attack_set(adapter, task_set, "pgd", eps=16 / 255)
    torch.testing.assert_close(adv * 255, torch.round(adv * 255))
    assert success.dtype == bool and success.mean() > 0.3  # ε=16 flips many answers of the tiny model
    noise, noise_success = attack_set(adapter, task_set, "noise", eps=8 / 255)
    assert noise_success.mean() < success.mean()
    with pytest.raises(ConfigError):
        attack_set(adapter, task_set, "fgsm")
    with pytest.raises(ConfigError):
        PGDAttack(init="random")
