"""One interface over the models the copying tools accept: the kit's decoder and Hugging Face causal LMs.

An :class:`LMAdapter` gives logits ``(B, T, V)``, per-layer attention probabilities ``(B, H, T, T)`` and the
per-head OV weights in the column-vector convention of the brief §2.3 (``W_E`` (d, V), ``W_U`` (V, d),
``W_V`` (H, d_head, d), ``W_O`` (H, d, d_head)), optionally with the norm gains folded in (``W_V · diag(g_in)``,
``W_U · diag(g_final)``). Supported: :class:`~llm_dynamics_kit.model.Transformer`, the kit's HF wrapper, HF
GPT-2 (``Conv1D`` weights, tied embeddings) and the Llama family layout (``q/k/v/o_proj``, GQA, RMSNorm).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from shared.errors import ConfigError


class LMAdapter:
    """What the copying tools need from a causal LM (see the module docstring)."""

    n_layers: int
    n_heads: int
    max_len: int
    vocab_size: int

    def __init__(self, model: torch.nn.Module):
        self.model = model

    @property
    def device(self) -> torch.device:
        if not isinstance(self.model, torch.nn.Module):
            return torch.device("cpu")
        return next(self.model.parameters()).device

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, V) logits."""
        raise NotImplementedError

    def attention(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """(B, T) token ids -> per layer (B, H, T, T) attention probabilities."""
        raise NotImplementedError

    def ov_weights(self, layer: int, fold_norms: bool = True) -> dict[str, torch.Tensor]:
        """``W_E`` (d, V), ``W_U`` (V, d), ``W_V`` (H, d_head, d), ``W_O`` (H, d, d_head) of one layer."""
        raise NotImplementedError

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout) and no gradients, restoring the training flag afterwards."""
        module = self.model if isinstance(self.model, torch.nn.Module) else None
        was_training = module.training if module is not None else False
        if module is not None:
            module.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if module is not None:
                module.train(was_training)


class NativeAdapter(LMAdapter):
    """The kit's :class:`~llm_dynamics_kit.model.Transformer` (attention through ``capture``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__(model)
        c = model.config
        self.n_layers, self.n_heads, self.max_len, self.vocab_size = c.n_layers, c.n_heads, c.max_seq_len, c.vocab_size

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids).logits

    def attention(self, ids: torch.Tensor) -> list[torch.Tensor]:
        with self.model.capture(attention=True) as record:
            self.model(ids)
        return list(record.attention)

    def ov_weights(self, layer: int, fold_norms: bool = True) -> dict[str, torch.Tensor]:
        heads = self.model.head_weights(layer)
        w_v, w_o = heads["W_V"], heads["W_O"]  # (H, D, C), (H, C, D)
        w_u = self.model.lm_head.weight  # (V, C)
        if fold_norms:
            w_v = w_v * self.model.blocks[layer].attn_norm.weight  # (H, D, C) · diag(g_in)
            w_u = w_u * self.model.norm.weight
        return {"W_E": self.model.embed.weight.T, "W_U": w_u, "W_V": w_v, "W_O": w_o}


class HFAdapter(LMAdapter):
    """A Hugging Face causal LM; attention comes from ``output_attentions`` under the eager implementation."""

    def __init__(self, model: torch.nn.Module):
        super().__init__(model)
        cfg = model.config
        self.n_layers = int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layer)
        self.n_heads = int(getattr(cfg, "num_attention_heads", None) or cfg.n_head)
        self.max_len = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 1024))
        self.vocab_size = int(cfg.vocab_size)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits

    @contextlib.contextmanager
    def _eager(self) -> Iterator[None]:
        # SDPA/flash kernels never materialise the probabilities; eager is the exact reference implementation
        current = getattr(self.model.config, "_attn_implementation", "eager")
        switch = current != "eager" and hasattr(self.model, "set_attn_implementation")
        if switch:
            self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            if switch:
                self.model.set_attn_implementation(current)

    def attention(self, ids: torch.Tensor) -> list[torch.Tensor]:
        with self._eager():
            out = self.model(input_ids=ids, output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise ConfigError(f"{type(self.model).__name__} returned no attention probabilities; load it with "
                              "attn_implementation='eager'")
        return [a.detach() for a in out.attentions]

    def ov_weights(self, layer: int, fold_norms: bool = True) -> dict[str, torch.Tensor]:
        kind = getattr(self.model.config, "model_type", "")
        if kind == "gpt2":
            return self._gpt2_ov(layer, fold_norms)
        return self._llama_ov(layer, fold_norms)

    def _gpt2_ov(self, layer: int, fold_norms: bool) -> dict[str, torch.Tensor]:
        # Conv1D stores (in, out) and computes x @ W; biases and LayerNorm centring are ignored (weight-based score)
        block = self.model.transformer.h[layer]
        d = self.model.config.n_embd
        h, hd = self.n_heads, d // self.n_heads
        w_v = block.attn.c_attn.weight[:, 2 * d:3 * d].T.reshape(h, hd, d)  # (H, D, C)
        w_o = block.attn.c_proj.weight.T.reshape(d, h, hd).permute(1, 0, 2)  # (H, C, D)
        w_u = self.model.lm_head.weight  # (V, C), tied to wte
        if fold_norms:
            w_v = w_v * block.ln_1.weight
            w_u = w_u * self.model.transformer.ln_f.weight
        return {"W_E": self.model.transformer.wte.weight.T, "W_U": w_u, "W_V": w_v, "W_O": w_o}

    def _llama_ov(self, layer: int, fold_norms: bool) -> dict[str, torch.Tensor]:
        base = getattr(self.model, "model", None)
        if base is None or not hasattr(base, "layers"):
            raise ConfigError(f"OV weights of {type(self.model).__name__} are not supported: the copying tools read "
                              "GPT-2 and Llama-layout models (model.layers[i].self_attn.v_proj/o_proj)")
        cfg = self.model.config
        block = base.layers[layer]
        attn = block.self_attn
        d = cfg.hidden_size
        h = self.n_heads
        hd = int(getattr(cfg, "head_dim", None) or d // h)
        kv = int(getattr(cfg, "num_key_value_heads", None) or h)
        w_v_kv = attn.v_proj.weight.reshape(kv, hd, d)  # (KV, D, C)
        w_v = w_v_kv[torch.arange(h) // (h // kv)]  # GQA: head h reads value head h // (H / KV)
        w_o = attn.o_proj.weight.reshape(d, h, hd).permute(1, 0, 2)  # (H, C, D)
        w_u = self.model.lm_head.weight
        if fold_norms:
            w_v = w_v * block.input_layernorm.weight
            w_u = w_u * base.norm.weight
        return {"W_E": base.embed_tokens.weight.T, "W_U": w_u, "W_V": w_v, "W_O": w_o}


class FunctionAdapter(LMAdapter):
    """A plain ``fn(ids (B, T)) -> logits (B, T, V)`` (oracles, other frameworks): copy accuracy only."""

    def __init__(self, fn: Any, vocab_size: int | None = None, max_len: int = 1 << 30):
        self.model, self.fn = None, fn
        self.n_layers, self.n_heads, self.max_len, self.vocab_size = 0, 0, max_len, vocab_size or 0

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fn(ids)


def as_adapter(model: Any) -> LMAdapter:
    """Wrap a native :class:`Transformer`, the kit's HF wrapper, an HF causal LM (GPT-2 / Llama family) or a
    ``fn(ids) -> logits`` callable."""
    if isinstance(model, LMAdapter):
        return model
    from llm_dynamics_kit.model import Transformer

    if isinstance(model, Transformer):
        return NativeAdapter(model)
    inner = getattr(model, "lm", None)
    if isinstance(inner, Transformer):  # PaperkitsLMForCausalLM
        return NativeAdapter(inner)
    if hasattr(model, "config") and hasattr(model.config, "vocab_size") and isinstance(model, torch.nn.Module):
        return HFAdapter(model)
    if callable(model) and not isinstance(model, torch.nn.Module):
        return FunctionAdapter(model)
    raise ConfigError(f"cannot evaluate a {type(model).__name__}: pass a llm_dynamics_kit Transformer or a "
                      "transformers causal LM")
