"""The embedded tiny BLIP-2-shaped VLM: patch ViT → learned-query bridge ("Q-Former") → causal decoder.

Trained from scratch on :mod:`safety_kit.pip.scenes` to answer yes/no, colour and count questions with one
token (brief §8.2). The decoder sees ``[K visual tokens][question, left-padded][<bos>]`` and predicts the answer
at ``<bos>``; feeding that answer back as the next token gives PIP's "generation step 1" query.
The trained model is cached under ``shared.paths.cache_dir("safety_kit", "pip")`` so tests and benchmarks
train it once per configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from safety_kit.pip import scenes as sc
from shared.config import to_dict
from shared.errors import DataError, TrainingDivergedError
from shared.paths import cache_dir
from shared.progress import progress

CACHE_VERSION = 1


@dataclasses.dataclass
class TinyVLMConfig:
    """Architecture and training budget of the tiny VLM (defaults train in about a minute on 2 cores)."""

    image_size: int = 32
    patch_size: int = 8
    vision_dim: int = 64
    vision_layers: int = 2
    num_query_tokens: int = 16  # K visual tokens the decoder sees (BLIP-2 uses 32)
    bridge_layers: int = 1
    text_dim: int = 64
    text_layers: int = 3
    text_heads: int = 4
    vocab_size: int = len(sc.VOCAB)
    max_question_tokens: int = sc.MAX_QUESTION_TOKENS
    # CLIP-style normalisation inside the model, so attacks work in [0, 1] pixel space (brief §2.1)
    pixel_mean: float = 0.45
    pixel_std: float = 0.25
    train_steps: int = 700
    batch_size: int = 64
    lr: float = 3e-3
    train_scenes: int = 12000
    data_seed: int = 1234
    init_seed: int = 0


class SelfAttention(nn.Module):
    """Multi-head attention that also returns its softmax weights (PIP reads them)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        context = x if context is None else context
        b, t, d = x.shape
        s = context.shape[1]
        q = self.q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k(context).view(b, s, self.heads, self.head_dim).transpose(1, 2)  # (B, H, S, hd)
        v = self.v(context).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(b, t, d)
        return self.out(y), weights


class Block(nn.Module):
    """Pre-norm transformer block; with ``cross=True`` it also attends to a context (the Q-Former layer)."""

    def __init__(self, dim: int, heads: int, cross: bool = False):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads)
        self.cross = SelfAttention(dim, heads) if cross else None
        self.norm_c = nn.LayerNorm(dim) if cross else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y, weights = self.attn(self.norm1(x), mask=mask)
        x = x + y
        if self.cross is not None:
            x = x + self.cross(self.norm_c(x), context=context)[0]
        return x + self.mlp(self.norm2(x)), weights


class TinyVLM(nn.Module):
    """A BLIP-2-shaped VLM small enough to train on a laptop CPU."""

    def __init__(self, config: TinyVLMConfig):
        super().__init__()
        self.config = c = config
        n_patches = (c.image_size // c.patch_size) ** 2
        self.patch = nn.Conv2d(3, c.vision_dim, c.patch_size, stride=c.patch_size)
        self.vision_pos = nn.Parameter(torch.randn(1, n_patches, c.vision_dim) * 0.02)
        self.vision = nn.ModuleList(Block(c.vision_dim, 4) for _ in range(c.vision_layers))
        self.vision_norm = nn.LayerNorm(c.vision_dim)
        self.queries = nn.Parameter(torch.randn(1, c.num_query_tokens, c.vision_dim) * 0.02)
        self.bridge = nn.ModuleList(Block(c.vision_dim, 4, cross=True) for _ in range(c.bridge_layers))
        self.projection = nn.Linear(c.vision_dim, c.text_dim)  # BLIP-2's language_projection
        self.embed = nn.Embedding(c.vocab_size, c.text_dim)
        self.text_pos = nn.Parameter(torch.randn(1, self.seq_len + 1, c.text_dim) * 0.02)
        self.decoder = nn.ModuleList(Block(c.text_dim, c.text_heads) for _ in range(c.text_layers))
        self.norm = nn.LayerNorm(c.text_dim)
        self.head = nn.Linear(c.text_dim, c.vocab_size, bias=False)

    @property
    def seq_len(self) -> int:
        """Length of the prompt ``[visual][question][<bos>]``."""
        return self.config.num_query_tokens + self.config.max_question_tokens + 1

    def visual_positions(self) -> np.ndarray:
        """Key positions of the K visual tokens in the decoder sequence."""
        return np.arange(self.config.num_query_tokens)

    def vision_features(self, images: torch.Tensor) -> torch.Tensor:
        """ViT last hidden state (B, P, Dv) of images in [0, 1] (the `clip` attack target, brief §2.4)."""
        x = (images.clamp(0, 1) - self.config.pixel_mean) / self.config.pixel_std
        x = self.patch(x).flatten(2).transpose(1, 2) + self.vision_pos  # (B, P, Dv)
        for block in self.vision:
            x = block(x)[0]
        return self.vision_norm(x)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The K projected query embeddings the decoder sees, (B, K, Dt)."""
        context = self.vision_features(images)
        q = self.queries.expand(images.shape[0], -1, -1)  # (B, K, Dv)
        for block in self.bridge:
            q = block(q, context=context)[0]
        return self.projection(q)

    def decode(self, images: torch.Tensor, question_ids: torch.Tensor,
               next_tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (B, T, V) and per-layer attention weights [(B, H, T, T)] over the prompt (+ next token)."""
        b = images.shape[0]
        visual = self.visual_tokens(images)  # (B, K, Dt)
        question = _left_pad(question_ids, self.config.max_question_tokens)  # (B, Q)
        bos = torch.full((b, 1), sc.BOS, dtype=torch.long, device=images.device)
        tokens = torch.cat([question, bos] + ([next_tokens.view(b, 1)] if next_tokens is not None else []), 1)
        x = torch.cat([visual, self.embed(tokens)], 1)  # (B, T, Dt)
        t = x.shape[1]
        x = x + self.text_pos[:, :t]
        keep = torch.ones(b, t, dtype=torch.bool, device=x.device)
        keep[:, visual.shape[1]:visual.shape[1] + question.shape[1]] = question != sc.PAD
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=x.device))
        mask = causal[None, None] & keep[:, None, None, :]  # (B, 1, T, T)
        attentions = []
        for block in self.decoder:
            x, weights = block(x, mask=mask)
            attentions.append(weights)
        return self.head(self.norm(x)), attentions

    def answer_logits(self, images: torch.Tensor, question_ids: torch.Tensor) -> torch.Tensor:
        """Logits of the one-token answer, (B, V); differentiable in ``images``."""
        logits, _ = self.decode(images, question_ids)
        return logits[:, self.seq_len - 1]

    def probe_attention(self, images: torch.Tensor, question_ids: torch.Tensor, step: int = 1,
                        keys: str = "visual") -> torch.Tensor:
        """PIP's feature (B, L, H, K): attention of generation step ``step`` to the visual keys (brief §2.2).

        ``step=1`` feeds the greedy first answer token back and reads its attention row (the official
        feature); ``step=0`` reads the last prompt token's row. ``keys="all"`` keeps the full row.
        """
        next_tokens = None
        if step == 1:
            next_tokens = self.answer_logits(images, question_ids).argmax(-1)
        elif step != 0:
            raise ValueError(f"step must be 0 or 1, got {step}")
        _, attentions = self.decode(images, question_ids, next_tokens)
        row = self.seq_len - 1 + step
        stacked = torch.stack([a[:, :, row] for a in attentions], 1)  # (B, L, H, T)
        if keys == "visual":
            return stacked[..., : self.config.num_query_tokens]
        return stacked[..., : row + 1]


def _left_pad(question_ids: torch.Tensor, width: int) -> torch.Tensor:
    """Move right-padded question ids to the right end so ``<bos>`` sits at a fixed position."""
    out = torch.full_like(question_ids[:, :width], sc.PAD)
    lengths = (question_ids != sc.PAD).sum(1)
    for i, n in enumerate(lengths.tolist()):
        if n:
            out[i, width - n:] = question_ids[i, :n]
    return out


def encode(questions: list[str] | str, n: int | None = None) -> torch.Tensor:
    """Question ids for the tiny VLM; a single string is repeated ``n`` times (a probe for a batch)."""
    if isinstance(questions, str):
        questions = [questions] * (n or 1)
    return torch.from_numpy(sc.encode_questions(list(questions)))


@torch.no_grad()
def answer(model: TinyVLM, images: torch.Tensor, questions: list[str] | str, batch_size: int = 256) -> np.ndarray:
    """Greedy answer token ids (N,)."""
    model.eval()
    ids = encode(questions, len(images))
    out = [model.answer_logits(images[i:i + batch_size], ids[i:i + batch_size]).argmax(-1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def train_tiny_vlm(config: TinyVLMConfig | None = None, *, show_progress: bool = True) -> tuple[TinyVLM, dict]:
    """Train a tiny VLM from scratch on generated scenes; returns (model, info with held-out accuracy)."""
    config = config or TinyVLMConfig()
    torch.manual_seed(config.init_seed)
    train = sc.generate_scenes(config.train_scenes, seed=config.data_seed, size=config.image_size)
    images, _, _ = sc.make_qa(train, seed=config.data_seed)
    images_t = torch.from_numpy(images)
    pool = [(c, s) for c in sc.COLOURS for s in sc.SHAPES]
    rng = np.random.default_rng(config.data_seed)
    model = TinyVLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.train_steps)
    start = time.perf_counter()
    model.train()
    steps = progress(range(config.train_steps), desc="train tiny VLM", unit="step") if show_progress \
        else range(config.train_steps)
    for step in steps:
        idx = rng.integers(0, len(train), size=config.batch_size)
        # a fresh question per draw: every scene is seen with many questions over training
        qa = [sc.ask(train[i], rng, pool) for i in idx]
        ids = torch.from_numpy(sc.encode_questions([q for q, _ in qa]))
        target = torch.tensor([sc.TOKEN_ID[a] for _, a in qa])
        loss = F.cross_entropy(model.answer_logits(images_t[idx], ids), target)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"tiny VLM loss became {loss.item()} at step {step}; lower lr "
                                        f"(now {config.lr}) or raise batch_size")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    model.eval()
    info = {"train_seconds": time.perf_counter() - start, "final_loss": float(loss.item()),
            **evaluate_vqa(model, seed=config.data_seed + 1)}
    return model, info


def evaluate_vqa(model: TinyVLM, n: int = 600, seed: int = 99) -> dict[str, float]:
    """Accuracy on ``n`` fresh scenes/questions, overall and per question type."""
    scenes = sc.generate_scenes(n, seed=seed, size=model.config.image_size)
    images, questions, answers = sc.make_qa(scenes, seed=seed)
    pred = answer(model, torch.from_numpy(images), questions)
    kinds = np.array([q.split()[0] for q in questions])
    out = {"vqa_accuracy": float((pred == answers).mean())}
    for word, name in (("is", "presence"), ("what", "colour"), ("how", "count")):
        sel = kinds == word
        if sel.any():
            out[f"vqa_accuracy_{name}"] = float((pred[sel] == answers[sel]).mean())
    return out


def _config_key(config: TinyVLMConfig) -> str:
    text = json.dumps({"v": CACHE_VERSION, **to_dict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_tiny_vlm(model: TinyVLM, info: dict, path: str | Path) -> Path:
    """Save weights, config and training info atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save({"config": to_dict(model.config), "state_dict": model.state_dict(), "info": info}, tmp)
    os.replace(tmp, path)
    return path


def load_tiny_vlm(path: str | Path) -> tuple[TinyVLM, dict]:
    """Load a model saved by :func:`save_tiny_vlm`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tiny VLM checkpoint {path} does not exist; train one with `paperkits safety pip train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = TinyVLM(TinyVLMConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # corrupt file, wrong format or mismatched config
        raise DataError(f"{path} is not a tiny VLM checkpoint ({err}); delete it and retrain") from err
    model.eval()
    return model, payload.get("info", {})


def pretrained_tiny_vlm(config: TinyVLMConfig | None = None, *, show_progress: bool = True) -> tuple[TinyVLM, dict]:
    """The cached tiny VLM for ``config`` (trained and cached on first use)."""
    config = config or TinyVLMConfig()
    path = cache_dir("safety_kit", "pip") / f"tiny_vlm_{_config_key(config)}.pt"
    if path.is_file():
        try:
            return load_tiny_vlm(path)
        except DataError:
            path.unlink(missing_ok=True)  # a corrupt cache entry is rebuilt, not trusted
    model, info = train_tiny_vlm(config, show_progress=show_progress)
    save_tiny_vlm(model, info, path)
    return model, info
