"""Hugging Face ``transformers`` wrapper so our models work with ``generate``, pipelines and eval harnesses.

:class:`PaperkitsLMForCausalLM` is a ``PreTrainedModel`` holding a :class:`~llm_dynamics_kit.model.Transformer`
as ``.lm``; its ``save_pretrained`` directory is the same layout as ``Transformer.save_pretrained`` (either
loader reads either). Importing this module registers ``model_type="paperkits_llm"`` with ``AutoConfig`` /
``AutoModelForCausalLM``. No KV cache: every generation step re-runs the (short) context, which is exact
and fine for the kit's small models. Padding: right padding (lm-eval log-likelihood batches) is exact under
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
    _supports_cache_class = False

    def __init__(self, config: PaperkitsLMConfig, lm: Transformer | None = None):
        super().__init__(config)
        self.lm = lm if lm is not None else Transformer(config.model_config())
        self.generation_config.use_cache = False
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
                labels: torch.Tensor | None = None, **kwargs: Any) -> CausalLMOutputWithPast:
        """HF causal-LM forward; ``labels`` are the inputs (shifted inside, -100 ignored) as in HF models."""
        window = self.lm.config.max_seq_len
        input_ids = input_ids[:, -window:]
        out = self.lm(input_ids)
        loss = None
        if labels is not None:
            labels = labels[:, -window:]
            shift_logits = out.logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)),
                                                     labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=out.logits)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, **kwargs: Any) -> dict[str, Any]:
        return {"input_ids": input_ids, "attention_mask": kwargs.get("attention_mask")}


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
