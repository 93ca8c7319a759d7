"""Building PIP's data: task questions and clean answers, attacked image sets, and their features (brief §2.4).

Used by the benchmark, the CLI's ``train`` command and the notebook, so all three make data the same way.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from safety_kit.pip import scenes as sc
from safety_kit.pip.adapters import ProbeAttentionExtractor
from safety_kit.pip.attacks import (
    CWL2Attack,
    PGDAttack,
    answer_loss,
    answer_sequence_loss,
    quantize_8bit,
    random_sign_noise,
    vision_feature_loss,
)
from safety_kit.pip.tiny_vlm import TinyVLM, answer
from shared.errors import ConfigError
from shared.progress import progress

ATTACKS = ("pgd", "cw", "vision", "noise")
ANSWER_LOSSES = ("sequence", "first_token")


@dataclasses.dataclass
class TaskSet:
    """Images with the task question an attacker targets and the model's clean greedy answer."""

    images: torch.Tensor  # (N, 3, S, S), 8-bit quantised
    questions: list[str]
    clean_answers: np.ndarray  # (N,) token ids
    true_answers: np.ndarray  # (N,) token ids


@torch.no_grad()
def greedy_answers(adapter, images: torch.Tensor, questions: list[str], batch_size: int = 100) -> np.ndarray:
    """First greedy answer token per image, for any adapter (one question per image)."""
    out = []
    for i in range(0, len(images), batch_size):
        out.append(adapter.answer_logits(images[i:i + batch_size], _questions(questions[i:i + batch_size])).argmax(-1))
    return torch.cat(out).numpy()


def _questions(questions: list[str]) -> str | list[str]:
    """One shared question as a string (what the HF adapters take), else the per-image list (tiny VLM)."""
    return questions[0] if len(set(questions)) == 1 else list(questions)


def make_task_set(model: TinyVLM, n: int, seed: int) -> TaskSet:
    """``n`` fresh scenes (their own sample for each seed) with a task question each."""
    scenes = sc.generate_scenes(n, seed=seed, size=model.config.image_size)
    images, questions, answers = sc.make_qa(scenes, seed=seed)
    images_t = quantize_8bit(torch.from_numpy(images))
    return TaskSet(images_t, questions, answer(model, images_t, questions), answers)


def attack_set(adapter: ProbeAttentionExtractor, data: TaskSet, kind: str = "pgd", eps: float = 8 / 255,
               batch_size: int = 100, seed: int = 0, desc: str = "", loss: str = "sequence",
               alignment: str = "next_token", max_answer_tokens: int = 8,
               **options) -> tuple[torch.Tensor, np.ndarray]:
    """Attacked, 8-bit-quantised images and whether the task answer changed (``attack_success``).

    ``kind``: ``"pgd"`` (untargeted PGD-L∞ on the CE of the clean answer — the official `llm` position),
    ``"cw"`` (CW-L2 without labels, same loss), ``"vision"`` (PGD on the vision-feature MSE — the `clip`
    position, an attack the detector never saw) or ``"noise"`` (random ±ε signs: the control).

    ``loss`` (pgd/cw): ``"sequence"`` (default; brief §2.4) is the CE of the model's whole greedy clean answer
    a0 (up to ``max_answer_tokens``, with its EOS), scored with ``alignment`` ``"next_token"`` (correct) or
    ``"hf431"`` (the official off-by-one scoring, labels with BOS); success then means the whole answer
    changed. ``"first_token"`` is the CE of the first answer token only. The tiny VLM answers with one
    token, so for it both losses are the same.
    """
    if kind not in ATTACKS:
        raise ConfigError(f"attack must be one of {ATTACKS}, got {kind!r}")
    if loss not in ANSWER_LOSSES:
        raise ConfigError(f"loss must be one of {ANSWER_LOSSES}, got {loss!r}")
    whole = loss == "sequence" and hasattr(adapter, "greedy_answer_ids")
    if whole and len(set(data.questions)) != 1:
        raise ConfigError("the whole-answer loss on a Hugging Face adapter needs one task question for all images")
    clean_sequences = (adapter.greedy_answer_ids(data.images, data.questions[0], max_answer_tokens)
                       if whole else None)
    out = []
    batches = range(0, len(data.images), batch_size)
    for i in progress(batches, desc=desc or f"attack {kind}", unit="batch") if desc else batches:
        x = data.images[i:i + batch_size]
        questions = data.questions[i:i + batch_size]
        clean = torch.from_numpy(data.clean_answers[i:i + batch_size])
        if kind == "noise":
            adv = random_sign_noise(x, eps, seed=seed * 100_003 + i)
        elif kind == "vision":
            attack = PGDAttack(eps=eps, seed=seed + i, **options)
            adv = attack.perturb(x, vision_feature_loss(adapter.vision_features, x))
        else:
            if clean_sequences is not None:
                labels = [_labels(adapter, a, alignment) for a in clean_sequences[i:i + batch_size]]
                loss_fn = answer_sequence_loss(
                    lambda images, ids, q=questions[0]: adapter.answer_sequence_loss(images, q, ids, alignment),
                    labels)
            else:
                loss_fn = answer_loss(lambda images, q=_questions(questions): adapter.answer_logits(images, q), clean)
            attack = PGDAttack(eps=eps, seed=seed + i, **options) if kind == "pgd" else CWL2Attack(**options)
            adv = attack.perturb(x, loss_fn)
        out.append(quantize_8bit(adv))
    adv = torch.cat(out)
    if clean_sequences is not None:
        after = adapter.greedy_answer_ids(adv, data.questions[0], max_answer_tokens)
        success = np.array([a != b for a, b in zip(after, clean_sequences)])
    else:
        success = greedy_answers(adapter, adv, data.questions, batch_size) != data.clean_answers
    return adv, success


def _labels(adapter, answer: list[int], alignment: str) -> list[int]:
    """Attack labels: the answer, or (``hf431``, decoder-only) BOS + answer as the official tokenizer call gives."""
    bos = getattr(adapter.tokenizer, "bos_token_id", None)
    if alignment == "hf431" and not adapter.encoder_decoder and bos is not None:
        return [bos, *answer]
    return list(answer)


def pixel_features(images: torch.Tensor) -> np.ndarray:
    """Baseline feature: the raw pixels, flattened (N, 3·S·S)."""
    return images.reshape(len(images), -1).numpy()


@torch.no_grad()
def visual_embedding_features(model: TinyVLM, images: torch.Tensor) -> np.ndarray:
    """Baseline feature: the K projected visual tokens the decoder sees, flattened (N, K·D)."""
    return torch.cat([model.visual_tokens(images[i:i + 256]).flatten(1) for i in range(0, len(images), 256)]).numpy()
