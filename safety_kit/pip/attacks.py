"""Attacks that build PIP's adversarial training/test images, in plain torch (brief §2.4).

Every attack works in [0, 1] pixel space on a batch ``(B, 3, H, W)`` and maximises a per-sample loss given as a
callable ``loss_fn(images) -> (B,)`` (see :func:`answer_loss` and :func:`vision_feature_loss`), so the same
attack drives the tiny VLM and the Hugging Face adapters. Outputs are quantised to 8 bits with
:func:`quantize_8bit` before features are read, as a saved PNG would be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import ConfigError

LossFn = Callable[[torch.Tensor], torch.Tensor]


def quantize_8bit(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit image (what writing and re-reading a PNG does)."""
    images = torch.as_tensor(images)
    return torch.round(images.clamp(0, 1) * 255.0) / 255.0


def random_sign_noise(images: torch.Tensor, eps: float, seed: int = 0) -> torch.Tensor:
    """The same-ε control: ``x + ε·s`` with random signs s ∈ {−1, +1}, clipped to [0, 1] (brief §8.2)."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, images.shape, generator=gen).to(images) * 2 - 1
    return (images + eps * signs).clamp(0, 1)


@dataclasses.dataclass
class PGDAttack:
    """PGD-L∞ (Madry et al.) with the official defaults ε = 8/255, α = 2/255, 20 steps.

    ``init``: ``"uniform"`` (start at x + U(−ε, ε), the textbook variant and our default),
    ``"official_plus_alpha"`` (the official code's ``α·sign(rand)`` start, which is always +α — brief §2.4,
    replicated for faithfulness) or ``"none"``. ``targeted=True`` descends the loss instead (use a loss
    towards the target answer).
    """

    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 20
    init: str = "uniform"
    targeted: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in {"uniform", "official_plus_alpha", "none"}:
            raise ConfigError(f"PGD init must be 'uniform', 'official_plus_alpha' or 'none', got {self.init!r}")
        if self.eps < 0 or self.alpha <= 0 or self.steps < 0:
            raise ConfigError(f"PGD needs eps >= 0, alpha > 0, steps >= 0 (got {self.eps}, {self.alpha}, {self.steps})")

    def perturb(self, images: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
        """Adversarial images within the ε-ball of ``images`` (and inside [0, 1])."""
        clean = images.detach()
        if self.init == "uniform":
            gen = torch.Generator().manual_seed(self.seed)
            adv = clean + (torch.rand(clean.shape, generator=gen) * 2 - 1).to(clean) * self.eps
        elif self.init == "official_plus_alpha":
            adv = clean + self.alpha  # sign(U[0,1)) == +1 everywhere
        else:
            adv = clean.clone()
        adv = (clean + (adv - clean).clamp(-self.eps, self.eps)).clamp(0, 1)
        direction = -1.0 if self.targeted else 1.0
        for _ in range(self.steps):
            adv.requires_grad_(True)
            loss = loss_fn(adv).sum()
            (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = adv + direction * self.alpha * grad.sign()
                adv = (clean + (adv - clean).clamp(-self.eps, self.eps)).clamp(0, 1)
        return adv.detach()


@dataclasses.dataclass
class CWL2Attack:
    """The official "CW-L2 without labels": Adam on δ minimising −L(x+δ) + c·‖δ‖²₂ (brief §2.4).

    Defaults max_iter = 50, c = 0.005, lr = 0.01, δ clamped to [−1, 1]; ``init="official"`` starts at
    δ = 0.01 (the official ``0.01·sign(rand)``), ``"zero"`` at δ = 0.
    """

    max_iter: int = 50
    c: float = 0.005
    lr: float = 0.01
    init: str = "official"

    def perturb(self, images: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
        """Adversarial images clip(x + δ, 0, 1)."""
        clean = images.detach()
        delta = torch.full_like(clean, 0.01) if self.init == "official" else torch.zeros_like(clean)
        delta.requires_grad_(True)
        optimizer = torch.optim.Adam([delta], lr=self.lr)
        for _ in range(self.max_iter):
            adv = (clean + delta).clamp(0, 1)
            objective = (-loss_fn(adv) + self.c * delta.flatten(1).pow(2).sum(1)).sum()
            optimizer.zero_grad()
            objective.backward()
            optimizer.step()
            with torch.no_grad():
                delta.clamp_(-1, 1)
        return (clean + delta.detach()).clamp(0, 1)


def answer_loss(answer_logits: Callable[[torch.Tensor], torch.Tensor], answers: torch.Tensor) -> LossFn:
    """Cross-entropy of ``answers`` (B,) under ``answer_logits(images) -> (B, V)``: the `llm` attack loss.

    Untargeted PGD maximises it with the model's own clean answers; targeted PGD minimises it with target answers.
    """

    def loss(images: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(answer_logits(images), answers, reduction="none")

    return loss


def answer_sequence_loss(sequence_loss: Callable[[torch.Tensor, list[int]], torch.Tensor],
                         answers: list[list[int]]) -> LossFn:
    """The official `llm` loss on whole answers: CE of each image's own multi-token clean answer a0 (brief §2.4).

    ``sequence_loss(image_batch_of_one, answer_ids) -> (1,)`` is an adapter's
    :meth:`~safety_kit.pip.adapters.HFProbeAttentionAdapter.answer_sequence_loss`; images are scored one at a
    time because answers differ in length (the official code attacks with batch size 1).
    """

    def loss(images: torch.Tensor) -> torch.Tensor:
        if len(images) != len(answers):
            raise ConfigError(f"got {len(answers)} answers for {len(images)} images")
        return torch.cat([sequence_loss(images[i:i + 1], answers[i]) for i in range(len(images))])

    return loss


def vision_feature_loss(vision_features: Callable[[torch.Tensor], torch.Tensor], clean: torch.Tensor) -> LossFn:
    """MSE between vision-encoder features of the attacked and the clean image: the `clip` attack (brief §2.4)."""
    with torch.no_grad():
        reference = vision_features(clean)

    def loss(images: torch.Tensor) -> torch.Tensor:
        return (vision_features(images) - reference).pow(2).flatten(1).mean(1)

    return loss


def in_batches(images: torch.Tensor, batch_size: int, attack_batch: Callable[[slice], torch.Tensor]) -> torch.Tensor:
    """Run ``attack_batch(slice)`` over ``images`` in chunks and concatenate (bounded memory)."""
    return torch.cat([attack_batch(slice(i, i + batch_size)) for i in range(0, len(images), batch_size)])
