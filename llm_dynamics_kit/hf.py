"""Hugging Face ``transformers`` wrapper so our models work with ``generate``, pipelines and eval harnesses.

:class:`PaperkitsLMForCausalLM` is a ``PreTrainedModel`` holding a :class:`~llm_dynamics_kit.model.Transformer`
as ``.lm``; its ``save_pretrained`` directory is the same layout as ``Transformer.save_pretrained`` (either
loader reads either). Importing this module registers ``model_type="paperkits_llm"`` with ``AutoConfig`` /
``AutoModelForCausalLM``. KV cache: ``generate`` decodes one token a step against an HF ``DynamicCache``
(the native attention takes HF caches; ``use_cache=False`` re-runs the whole context each step, the same tokens
up to float rounding); past ``max_seq_len`` tokens both re-run the last window. Every FFN kind (dense, HMoE's
experts, SSD's MoEfied FFN) is cached alike: the cache holds attention keys/values only. Padding: right padding (lm-eval log-likelihood batches) is exact under
the causal mask; left-padded batched generation is not supported (positions would shift) — generate one
prompt at a time or pass unpadded batches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from llm_dynamics_kit.model import MODEL_TYPE, ModelConfig, Transformer, config_from_dict


class PaperkitsLMConfig(PretrainedConfig):
    """HF config that carries our :class:`ModelConfig` as a nested dict under ``model``."""

    model_type = MODEL_TYPE

    def __init__(self, model: dict[str, Any] | None = None, **kwargs: Any):
        self.model = model or dataclasses.asdict(ModelConfig())
        kwargs.setdefault("vocab_size", self.model["vocab_size"])
        # the names generation utilities look up
        kwargs.setdefault("num_hidden_layers", self.model["n_layers"])
        kwargs.setdefault("hidden_size", self.model["d_model"])
        kwargs.setdefault("num_attention_heads", self.model["n_heads"])
        kwargs.setdefault("max_position_embeddings", self.model["max_seq_len"])
        kwargs.setdefault("eos_token_id", 0)
        super().__init__(**kwargs)

    def model_config(self) -> ModelConfig:
        """The native :class:`ModelConfig`."""
        return config_from_dict(self.model)


class PaperkitsLMForCausalLM(PreTrainedModel, GenerationMixin):
    """A ``PreTrainedModel`` around the kit's decoder (weights under the ``lm.`` prefix)."""

    config_class = PaperkitsLMConfig
    base_model_prefix = "lm"
    main_input_name = "input_ids"
    _supports_cache_class = True

    def __init__(self, config: PaperkitsLMConfig, lm: Transformer | None = None):
        super().__init__(config)
        self.lm = lm if lm is not None else Transformer(config.model_config())
        self.generation_config.use_cache = True
        self.post_init()

    @classmethod
    def from_native(cls, model: Transformer) -> PaperkitsLMForCausalLM:
        """Wrap an existing native model (shares its parameters)."""
        return cls(PaperkitsLMConfig(model=dataclasses.asdict(model.config)), lm=model)

    def _init_weights(self, module: torch.nn.Module) -> None:  # the native model initialises itself
        return

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.lm.embed

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.lm.lm_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, cache: Any = None, use_cache: bool | None = None,
                **kwargs: Any) -> CausalLMOutputWithPast:
        """HF causal-LM forward; ``labels`` are the inputs (shifted inside, -100 ignored) as in HF models.

        ``cache`` (``past_key_values`` in transformers < 5): an HF cache whose tokens precede ``input_ids``;
        ``use_cache=True`` without one starts a ``DynamicCache``. The cache is returned in the output.
        """
        cache = cache if cache is not None else kwargs.pop("past_key_values", None)
        if use_cache and cache is None:
            from transformers import DynamicCache

            cache = DynamicCache()
        window = self.lm.config.max_seq_len
        if cache is None:
            input_ids = input_ids[:, -window:]
        out = self.lm(input_ids, cache=cache)
        loss = None
        if labels is not None:
            labels = labels[:, -window:]
            shift_logits = out.logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)),
                                                     labels[:, 1:].reshape(-1), ignore_index=-100)
        output = CausalLMOutputWithPast(loss=loss, logits=out.logits)
        if cache is not None:  # the field is "cache" in transformers >= 5, "past_key_values" before
            output["cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"] = cache
        return output

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, **kwargs: Any) -> dict[str, Any]:
        """Feed the uncached tail of ``input_ids``; past ``max_seq_len`` drop the cache and re-run the window."""
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        inputs: dict[str, Any] = {"attention_mask": kwargs.get("attention_mask")}
        if cache is None or not kwargs.get("use_cache", True):
            inputs["input_ids"] = input_ids
            return inputs
        if input_ids.shape[1] > self.lm.config.max_seq_len:
            cache.reset()  # positions restart at 0 in the window: cached keys are at the wrong positions
            input_ids = input_ids[:, -self.lm.config.max_seq_len:]
        inputs["input_ids"] = input_ids[:, cache.get_seq_length():]
        inputs["cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"] = cache
        inputs["use_cache"] = True
        return inputs


AutoConfig.register(MODEL_TYPE, PaperkitsLMConfig, exist_ok=True)
AutoModelForCausalLM.register(PaperkitsLMConfig, PaperkitsLMForCausalLM, exist_ok=True)


def load_hf(path: str | Path) -> PaperkitsLMForCausalLM:
    """Load a saved kit model as an HF model (``AutoModelForCausalLM`` works too once this module is imported)."""
    return PaperkitsLMForCausalLM.from_pretrained(str(path))


def llama_equivalent(config: ModelConfig):
    """A ``transformers.LlamaForCausalLM`` with the same shapes as a dense kit model (for speed comparisons)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if config.ffn.kind != "dense" or config.ffn.activation != "swiglu":
        raise ValueError("only dense SwiGLU configs have a LLaMA equivalent")
    llama = LlamaConfig(vocab_size=config.vocab_size, hidden_size=config.d_model, intermediate_size=config.ffn.hidden,
                        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
                        num_key_value_heads=config.n_heads, max_position_embeddings=config.max_seq_len,
                        rms_norm_eps=config.norm_eps, rope_theta=config.rope_theta, tie_word_embeddings=False,
                        attention_bias=False, mlp_bias=False)
    return LlamaForCausalLM(llama)


KV_CACHE_TARGET = 3.0  # issue 25: cached generate ≥ 3× the tokens/s of the uncached path at 256 new tokens


@torch.no_grad()
def generation_speed(model: Transformer, new_tokens: int = 256, prompt_len: int = 16, repeats: int = 3,
                     threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Tokens/s of the HF wrapper's greedy ``generate`` with and without the KV cache (batch 1), interleaved.

    ``model.config.max_seq_len`` must hold ``prompt_len + new_tokens`` (past it both paths re-run the window).
    Returns tokens/s of each path (median), their ratio (median of per-repeat ratios), the target and whether it is
    met, and whether both paths gave the same tokens.
    """
    import statistics
    import time

    from shared.errors import ConfigError

    if prompt_len + new_tokens > model.config.max_seq_len:
        raise ConfigError(f"prompt_len + new_tokens = {prompt_len + new_tokens} exceeds the model's max_seq_len="
                          f"{model.config.max_seq_len}")
    torch.set_num_threads(threads)
    hf = PaperkitsLMForCausalLM.from_native(model).eval()
    prompt = torch.randint(1, model.config.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(seed))
    args = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    outputs, times = {}, {True: [], False: []}
    for _ in range(repeats):
        for cached in (True, False):
            start = time.perf_counter()
            outputs[cached] = hf.generate(prompt, use_cache=cached, **args)
            times[cached].append(time.perf_counter() - start)
    ratio = statistics.median(u / c for c, u in zip(times[True], times[False]))
    return {"new_tokens": new_tokens, "prompt_len": prompt_len, "threads": threads, "repeats": repeats,
            "ffn_kind": model.config.ffn.kind, "d_model": model.config.d_model, "n_layers": model.config.n_layers,
            "cached_tokens_per_s": new_tokens / statistics.median(times[True]),
            "uncached_tokens_per_s": new_tokens / statistics.median(times[False]),
            "speedup": ratio, "target": KV_CACHE_TARGET, "target_met": bool(ratio >= KV_CACHE_TARGET),
            "same_tokens": bool(torch.equal(outputs[True], outputs[False]))}
