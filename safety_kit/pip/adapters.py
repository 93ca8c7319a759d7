"""``ProbeAttentionExtractor`` adapters: (images, probe question) → PIP's feature ``[N, L, H, V]``.

The feature (brief §2.2): run the probe prompt, take the greedy first answer token y1, feed it back, and read
the attention that y1 pays to each of the V visual tokens in every layer and head (softmax over ALL keys, so a
row's visual part sums to ≤ 1). Adapters exist for the embedded :class:`~safety_kit.pip.tiny_vlm.TinyVLM` and for
Hugging Face ``Blip2ForConditionalGeneration``, ``InstructBlipForConditionalGeneration`` and
``LlavaForConditionalGeneration`` (any local checkpoint directory, eager attention forced; CLIP or SigLIP
towers, either ``vision_feature_select_strategy``; anyres LLaVA-NeXT/OneVision are refused). Image-token
counts come from the model itself, normalisation from the checkpoint's image processor (or given).

Instead of ``generate`` the HF adapters run two plain forward passes (prompt → y1, then prompt + y1 with
``output_attentions``); without a KV cache the last row of the second pass is exactly generation step 1's
attention, and the same code path is differentiable for attacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from safety_kit.pip.tiny_vlm import TinyVLM, encode
from shared.errors import ConfigError, DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BLIP_PROMPT = "Question: {} Short answer:"  # brief §2.1, used for task and probe questions
LLAVA_PROMPT = "USER: <image>\n{} ASSISTANT:"


# anyres models: the number of image tokens depends on each image's size and the tiling grid, and the pixel
# input is a stack of crops; PIP's fixed [L, H, V] feature needs a fixed layout, so these are refused clearly.
UNSUPPORTED_MODEL_TYPES = {
    "llava_next": "LLaVA-NeXT", "llava_next_video": "LLaVA-NeXT-Video", "llava_onevision": "LLaVA-OneVision",
}


def _unsupported(name: str) -> ConfigError:
    return ConfigError(
        f"{name} checkpoints are not supported: their 'anyres' tiling gives a variable number of image tokens per "
        "image (crops + newline tokens), so PIP's fixed [layers, heads, visual tokens] feature is undefined; use a "
        "fixed-resolution LLaVA (LlavaForConditionalGeneration, e.g. llava-1.5 or llava-interleave-qwen), "
        "BLIP-2 or InstructBLIP checkpoint")


def check_model_type(model_type: str, class_name: str) -> None:
    """Refuse anyres LLaVA variants (by config ``model_type``) before loading any weights."""
    if model_type in UNSUPPORTED_MODEL_TYPES:
        raise _unsupported(UNSUPPORTED_MODEL_TYPES[model_type])


def check_model_class(model: Any, class_name: str) -> None:
    """The adapter's model must be the HF class it is written for (a clear error instead of a crash inside HF)."""
    check_model_type(getattr(getattr(model, "config", None), "model_type", ""), class_name)
    import transformers

    expected = getattr(transformers, class_name)
    if not isinstance(model, expected):
        raise ConfigError(f"this adapter needs a {class_name}, got {type(model).__name__}")


def normalisation(image_processor: Any = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the image processor applies (identity when it does not normalise); CLIP's without one."""
    if image_processor is None:
        return CLIP_MEAN, CLIP_STD
    if getattr(image_processor, "do_normalize", True) is False:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean, std = image_processor.image_mean, image_processor.image_std
    as3 = lambda v: tuple(float(x) for x in ([v] * 3 if isinstance(v, (int, float)) else v))  # noqa: E731
    return as3(mean), as3(std)


@runtime_checkable
class ProbeAttentionExtractor(Protocol):
    """Anything that turns images in [0, 1] and a probe question into PIP features."""

    def extract(self, images: torch.Tensor | np.ndarray, probe: str) -> np.ndarray:
        """Features ``[N, L, H, V]`` (float32)."""

    def answer_logits(self, images: torch.Tensor, question: str) -> torch.Tensor:
        """Logits of the first answer token ``(N, vocab)``, differentiable in ``images`` (attacks use it)."""


def as_image_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Validate and convert images to a float tensor ``(N, 3, H, W)`` in [0, 1]."""
    images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] != 3:
        raise DataError(f"images must have shape (N, 3, H, W) with RGB channels, got {tuple(images.shape)}")
    if len(images) == 0:
        raise DataError("no images to extract features from")
    images = images.float()
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DataError("images must be finite floats in [0, 1] (divide 8-bit pixels by 255)")
    return images


def pool_tokens(features: torch.Tensor, pool: int) -> torch.Tensor:
    """Average-pool the visual-token axis as a square grid (LLaVA's 576 → 144 with ``pool=2``)."""
    if pool <= 1:
        return features
    v = features.shape[-1]
    side = int(round(v**0.5))
    if side * side != v or side % pool:
        raise ConfigError(f"token_pool={pool} needs a square grid of visual tokens divisible by it, got V={v}")
    lead = features.shape[:-1]
    grid = features.reshape(-1, 1, side, side)
    return F.avg_pool2d(grid, pool).reshape(*lead, (side // pool) ** 2)


class TinyVLMAdapter:
    """PIP features from the embedded tiny VLM: ``[N, layers, heads, K]`` (3·4·16 = 192 dims by default)."""

    def __init__(self, model: TinyVLM, step: int = 1, keys: str = "visual", batch_size: int = 256):
        if step not in (0, 1):
            raise ConfigError(f"step must be 0 (last prompt token) or 1 (first answer token), got {step}")
        if keys not in ("visual", "all"):
            raise ConfigError(f"keys must be 'visual' or 'all', got {keys!r}")
        self.model, self.step, self.keys, self.batch_size = model.eval(), step, keys, batch_size

    def visual_positions(self, probe: str = "") -> np.ndarray:
        """Key positions of the visual tokens (0..K-1)."""
        return self.model.visual_positions()

    @torch.no_grad()
    def extract(self, images: torch.Tensor | np.ndarray, probe: str | list[str]) -> np.ndarray:
        """Features ``[N, L, H, K]``; ``probe`` may also be one question per image (the task-question ablation)."""
        images = as_image_batch(images)
        questions = [probe] * len(images) if isinstance(probe, str) else list(probe)
        if len(questions) != len(images):
            raise DataError(f"got {len(questions)} questions for {len(images)} images")
        chunks = []
        for i in range(0, len(images), self.batch_size):
            batch = images[i:i + self.batch_size]
            ids = encode(questions[i:i + self.batch_size])
            chunks.append(self.model.probe_attention(batch, ids, self.step, self.keys))
        return torch.cat(chunks).numpy().astype(np.float32)

    def answer_logits(self, images: torch.Tensor, question: str | list[str]) -> torch.Tensor:
        """First-answer-token logits ``(N, V)``."""
        return self.model.answer_logits(images, encode(question, len(images)))

    def vision_features(self, images: torch.Tensor) -> torch.Tensor:
        """Vision-encoder last hidden state (the target of the vision-feature attack)."""
        return self.model.vision_features(images)


class HFProbeAttentionAdapter:
    """Shared logic of the Hugging Face adapters (subclasses set the model class and the prompt layout).

    ``tokenizer`` is the checkpoint's HF tokenizer; images are resized (bicubic) and normalised in torch so
    gradients reach the pixels. Visual key positions are ``input_ids == config.image_token_index``.
    """

    model_class_name = ""
    default_prompt = BLIP_PROMPT

    def __init__(self, model: Any, tokenizer: Any, *, prompt_template: str | None = None,
                 image_size: int | None = None, image_mean: tuple[float, ...] | None = None,
                 image_std: tuple[float, ...] | None = None, image_processor: Any = None, step: int = 1,
                 token_pool: int = 1, batch_size: int = 8, qformer_tokenizer: Any = None):
        if step not in (0, 1):
            raise ConfigError(f"step must be 0 or 1, got {step}")
        check_model_class(model, self.model_class_name)
        self.model = model.eval()
        if getattr(model.config, "_attn_implementation", "eager") != "eager":
            model.set_attn_implementation("eager")  # SDPA kernels return no attention weights
        self.tokenizer, self.qformer_tokenizer = tokenizer, qformer_tokenizer or tokenizer
        self.prompt_template = prompt_template or self.default_prompt
        # the vision tower's own input size (its position embeddings are sized for it)
        self.image_size = image_size or model.config.vision_config.image_size
        # normalisation: explicit values > the checkpoint's image processor > CLIP's (the official BLIP wrapper's)
        mean, std = normalisation(image_processor)
        self.image_mean = tuple(image_mean if image_mean is not None else mean)
        self.image_std = tuple(image_std if image_std is not None else std)
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ConfigError(f"image_mean/image_std need 3 values (std > 0), got {self.image_mean}, {self.image_std}")
        self.mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        self.step, self.token_pool, self.batch_size = step, token_pool, batch_size
        self.image_token = model.config.image_token_index
        if self.image_token is None:
            raise ConfigError("the model config has no image_token_index; re-save the checkpoint with a "
                              "current transformers processor (it inserts image placeholder tokens)")

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> HFProbeAttentionAdapter:
        """Load a local checkpoint directory (model, tokenizer, image processor) with eager attention.

        Normalisation mean/std come from the checkpoint's image processor (``preprocessor_config.json``)
        unless ``image_mean``/``image_std`` are given; without one, CLIP's values are used.
        """
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise DataError(f"checkpoint directory {path} does not exist")
        model_cls = getattr(transformers, cls.model_class_name)
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise DataError(f"{path} is not a loadable {cls.model_class_name} checkpoint ({err})") from err
        check_model_type(config.model_type, cls.model_class_name)
        try:
            model = model_cls.from_pretrained(path, attn_implementation="eager", local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise DataError(f"{path} is not a loadable {cls.model_class_name} checkpoint with a tokenizer "
                            f"({err})") from err
        if (path / "qformer_tokenizer").is_dir():
            kwargs.setdefault("qformer_tokenizer", AutoTokenizer.from_pretrained(path / "qformer_tokenizer"))
        if "image_processor" not in kwargs and (path / "preprocessor_config.json").is_file():
            kwargs["image_processor"] = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return cls(model, tokenizer, **kwargs)

    # -- prompt layout -------------------------------------------------------------------------------
    def num_image_tokens(self) -> int:
        """How many placeholder tokens the processor inserts for one image."""
        return int(self.model.config.num_query_tokens)

    def prompt_ids(self, question: str) -> list[int]:
        """Prompt token ids with the image placeholders the processor would insert (BLIP-2: prepended)."""
        text = self.prompt_template.format(question)
        return [self.image_token] * self.num_image_tokens() + list(self.tokenizer(text).input_ids)

    def visual_positions(self, question: str = "") -> np.ndarray:
        """Key positions of the visual tokens in the probe prompt."""
        ids = np.asarray(self.prompt_ids(question))
        return np.flatnonzero(ids == self.image_token)

    def extra_inputs(self, question: str, n: int) -> dict[str, torch.Tensor]:
        """Model-specific inputs besides pixels and ids (InstructBLIP's Q-Former text)."""
        return {}

    # -- forward passes ------------------------------------------------------------------------------
    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (bicubic) and normalise images in [0, 1] the way the processor does, differentiably."""
        x = images.clamp(0, 1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
            x = x.clamp(0, 1)
        return (x - self.mean.to(x)) / self.std.to(x)

    @property
    def encoder_decoder(self) -> bool:
        """True for Flan-T5 language models (attention is read from cross-attention)."""
        return not getattr(self.model.config, "use_decoder_only_language_model", True)

    def _forward(self, images: torch.Tensor, question: str, answer_tokens: torch.Tensor | None = None,
                 output_attentions: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Logits at the last position (N, vocab) and per-layer attention rows of that position."""
        n = len(images)
        ids = torch.tensor([self.prompt_ids(question)] * n)
        kwargs: dict[str, Any] = dict(pixel_values=self.pixel_values(images), attention_mask=torch.ones_like(ids),
                                      output_attentions=output_attentions, **self.extra_inputs(question, n))
        if self.encoder_decoder:
            start = self.model.config.text_config.decoder_start_token_id or 0
            decoder = torch.full((n, 1), start, dtype=torch.long)
            if answer_tokens is not None:
                decoder = torch.cat([decoder, answer_tokens.view(n, -1)], 1)
            out = self.model(input_ids=ids, decoder_input_ids=decoder, **kwargs)
            attentions = out.language_model_outputs.cross_attentions if output_attentions else None
        else:
            if answer_tokens is not None:
                ids = torch.cat([ids, answer_tokens.view(n, -1)], 1)
                kwargs["attention_mask"] = torch.ones_like(ids)
            out = self.model(input_ids=ids, **kwargs)
            lm = getattr(out, "language_model_outputs", None)
            attentions = (lm.attentions if lm is not None else out.attentions) if output_attentions else None
        return out.logits[:, -1], attentions

    def answer_logits(self, images: torch.Tensor, question: str) -> torch.Tensor:
        """First-answer-token logits ``(N, vocab)``, differentiable in ``images``."""
        return self._forward(images, question)[0]

    @torch.no_grad()
    def greedy_answer_ids(self, images: torch.Tensor, question: str, max_new_tokens: int = 8) -> list[list[int]]:
        """Each image's greedy answer a0 (HF ``generate`` defaults: no sampling), ending with EOS if produced.

        The whole answer is the target of the official `llm` attack loss (:meth:`answer_sequence_loss`).
        """
        eos = self.model.config.text_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        answers = []
        for i in range(len(images)):
            tokens: list[int] = []
            for _ in range(max_new_tokens):
                prefix = torch.tensor([tokens], dtype=torch.long) if tokens else None
                token = int(self._forward(images[i:i + 1], question, prefix)[0].argmax(-1))
                tokens.append(token)
                if token in eos:
                    break
            answers.append(tokens)
        return answers

    def answer_sequence_loss(self, images: torch.Tensor, question: str, answer_ids: list[int],
                             alignment: str = "next_token") -> torch.Tensor:
        """Per-image cross-entropy (N,) of a multi-token answer: the official `llm` attack loss (brief §2.4).

        ``alignment="next_token"`` (default) scores the answer tokens after the prompt, as a language model
        should. ``"hf431"`` replicates transformers 4.31's decoder-only BLIP-2 loss that the official code
        used: ``answer_ids`` (with BOS) are scored against the LAST prompt positions, one position early.
        Encoder-decoder (Flan-T5) models are always aligned.
        """
        if alignment not in ("next_token", "hf431"):
            raise ConfigError(f"alignment must be 'next_token' or 'hf431', got {alignment!r}")
        n, answer = len(images), torch.tensor(answer_ids)
        ids = torch.tensor([self.prompt_ids(question)] * n)
        kwargs: dict[str, Any] = dict(pixel_values=self.pixel_values(images), **self.extra_inputs(question, n))
        if self.encoder_decoder:
            start = self.model.config.text_config.decoder_start_token_id or 0
            decoder = torch.cat([torch.full((n, 1), start), answer[None, :-1].expand(n, -1)], 1)
            logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), decoder_input_ids=decoder,
                                **kwargs).logits  # (N, A, V)
            targets = answer
        elif alignment == "hf431":
            logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs).logits
            logits, targets = logits[:, -len(answer):-1], answer[1:]  # prompt positions score labels[1:]
        else:
            full = torch.cat([ids, answer[None].expand(n, -1)], 1)
            logits = self.model(input_ids=full, attention_mask=torch.ones_like(full), **kwargs).logits
            logits, targets = logits[:, ids.shape[1] - 1:-1], answer  # position t predicts token t+1
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.repeat(n), reduction="none")
        return losses.view(n, -1).mean(1)

    def vision_features(self, images: torch.Tensor) -> torch.Tensor:
        """Vision tower last hidden state (the `clip` attack target)."""
        return self.model.vision_model(pixel_values=self.pixel_values(images)).last_hidden_state

    @torch.no_grad()
    def extract(self, images: torch.Tensor | np.ndarray, probe: str) -> np.ndarray:
        """Features ``[N, L, H, V]`` (V pooled by ``token_pool``)."""
        images = as_image_batch(images)
        visual = torch.as_tensor(self.visual_positions(probe))
        chunks = []
        for i in range(0, len(images), self.batch_size):
            batch = images[i:i + self.batch_size]
            answer = None
            if self.step == 1:
                answer = self.answer_logits(batch, probe).argmax(-1)  # greedy y1
            _, attentions = self._forward(batch, probe, answer, output_attentions=True)
            if attentions is None or attentions[0] is None:
                raise ConfigError("the model returned no attentions; load it with attn_implementation='eager'")
            rows = torch.stack([a[:, :, -1] for a in attentions], 1)  # (B, L, H, keys)
            chunks.append(pool_tokens(rows[..., visual].float(), self.token_pool))
        return torch.cat(chunks).numpy().astype(np.float32)


class HFBlip2Adapter(HFProbeAttentionAdapter):
    """``Blip2ForConditionalGeneration`` (OPT or Flan-T5): 32 query tokens prepended to the prompt."""

    model_class_name = "Blip2ForConditionalGeneration"


class HFInstructBlipAdapter(HFProbeAttentionAdapter):
    """``InstructBlipForConditionalGeneration``: the prompt also feeds the Q-Former (brief §2.1)."""

    model_class_name = "InstructBlipForConditionalGeneration"

    def extra_inputs(self, question: str, n: int) -> dict[str, torch.Tensor]:
        ids = torch.tensor([list(self.qformer_tokenizer(self.prompt_template.format(question)).input_ids)] * n)
        return {"qformer_input_ids": ids, "qformer_attention_mask": torch.ones_like(ids)}


class HFLlavaAdapter(HFProbeAttentionAdapter):
    """``LlavaForConditionalGeneration``: ``<image>`` in the prompt expands to one token per patch."""

    model_class_name = "LlavaForConditionalGeneration"
    default_prompt = LLAVA_PROMPT

    def _vision_tower(self) -> Any:
        inner = getattr(self.model, "model", self.model)
        return getattr(inner, "vision_tower", None) or self.model.vision_tower

    def num_image_tokens(self) -> int:
        """Placeholders per image, as ``LlavaProcessor`` counts them: patches + the tower's extra tokens (CLIP's
        CLS: 1, SigLIP: 0), minus one for ``vision_feature_select_strategy="default"`` (drops the first token)."""
        if getattr(self, "_num_image_tokens", None) is None:
            config = self.model.config
            patches = (self.image_size // config.vision_config.patch_size) ** 2
            tower = self._vision_tower()
            embeddings = getattr(getattr(tower, "vision_model", tower), "embeddings", None)
            if hasattr(embeddings, "num_positions") and hasattr(embeddings, "num_patches"):
                extra = int(embeddings.num_positions - embeddings.num_patches)
            else:  # an unknown tower: count its output tokens once
                param = next(tower.parameters())
                with torch.no_grad():
                    dummy = torch.zeros(1, 3, self.image_size, self.image_size, dtype=param.dtype, device=param.device)
                    extra = int(tower(pixel_values=dummy).last_hidden_state.shape[1]) - patches
            strategy = config.vision_feature_select_strategy
            if strategy not in ("default", "full"):
                raise ConfigError(f"unknown vision_feature_select_strategy {strategy!r} (expected 'default' or 'full')")
            self._num_image_tokens = patches + extra - (1 if strategy == "default" else 0)
        return self._num_image_tokens

    def prompt_ids(self, question: str) -> list[int]:
        """The processor's ids: ``<image>`` expanded to :meth:`num_image_tokens` copies, the text tokenised whole."""
        text = self.prompt_template.format(question)
        if "<image>" not in text:
            raise ConfigError(f"the LLaVA prompt template must contain '<image>', got {self.prompt_template!r}")
        n = self.num_image_tokens()
        token = self.tokenizer.convert_ids_to_tokens(self.image_token)
        if isinstance(token, str) and self.tokenizer.convert_tokens_to_ids(token) == self.image_token:
            ids = list(self.tokenizer(text.replace("<image>", token * n, 1)).input_ids)
            if ids.count(self.image_token) == n:
                return ids
        # a tokenizer without the image token (it maps to another id): splice the placeholders in
        before, after = text.split("<image>", 1)
        ids = list(self.tokenizer(before).input_ids)
        ids += [self.image_token] * n
        ids += list(self.tokenizer(after, add_special_tokens=False).input_ids)
        return ids

    def vision_features(self, images: torch.Tensor) -> torch.Tensor:
        return self._vision_tower()(pixel_values=self.pixel_values(images)).last_hidden_state
