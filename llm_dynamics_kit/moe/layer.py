"""The MoE FFN component (homogeneous or heterogeneous experts, Top-K or Top-P routing, aux losses)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from llm_dynamics_kit.model import FFN, FFNConfig, ModelConfig, register_ffn
from llm_dynamics_kit.moe.experts import HeterogeneousExperts
from llm_dynamics_kit.moe.losses import load_balance_loss, p_penalty_loss, router_entropy_loss
from llm_dynamics_kit.moe.routing import Router, RouterOutput, TopKRouter, TopPRouter
from llm_dynamics_kit.moe.sizes import expert_sizes


class MoEFFN(FFN):
    """``MoE(x_t) = Σ_{i∈E_t} g_{i,t} e_i(x_t)`` over experts of widths ``sizes`` (HMoE §2.3).

    After each forward: ``aux_losses`` holds the raw per-layer ``load_balance``, ``p_penalty`` and
    ``router_entropy`` losses (only those with a non-zero coefficient, plus ``load_balance`` always for
    logging), ``last_routing`` the detached :class:`RouterOutput`, and ``stats`` per-expert counts and the
    mean activated width per token.
    """

    def __init__(self, d_model: int, sizes: Sequence[int], router: Router, activation: str = "swiglu",
                 ffn_config: FFNConfig | None = None, dispatch: str = "auto"):
        super().__init__()
        self.activation = activation
        self.sizes = [int(s) for s in sizes]
        self.router = router
        # dispatch: "auto" | "grouped" | "loop" (see moe.experts); config: ffn.extra["dispatch"]
        self.experts = HeterogeneousExperts(d_model, self.sizes, activation, dispatch)
        self.act_probe = self.experts.act_probe
        self.ffn_config = ffn_config or FFNConfig(kind="moe", n_experts=len(self.sizes), hidden=sum(self.sizes),
                                                 top_k=getattr(router, "k", 1))
        cfg = self.ffn_config
        self.aux_coefficients = {"load_balance": cfg.load_balance_coef, "p_penalty": cfg.p_penalty_coef,
                                 "router_entropy": cfg.entropy_coef}
        self.register_buffer("size_tensor", torch.tensor(self.sizes, dtype=torch.float32), persistent=False)
        self.last_routing: RouterOutput | None = None
        # before any forward: the expectation under uniform routing (Top-K: k experts, Top-P: ceil(p·N)), not one
        n_uniform = int(router.select(torch.full((1, len(self.sizes)), 1.0 / len(self.sizes))).sum())
        self._activated_hidden = n_uniform * float(sum(self.sizes)) / len(self.sizes)

    @classmethod
    def from_config(cls, config: ModelConfig) -> MoEFFN:
        """Build from ``config.ffn`` (kind="moe")."""
        f = config.ffn
        sizes = expert_sizes(f.size_strategy, f.n_experts, f.hidden, f.multiple_of, f.size_ratio, f.custom_sizes)
        if f.router == "topk":
            router: Router = TopKRouter(config.d_model, f.n_experts, f.top_k, f.renormalize)
        else:
            router = TopPRouter(config.d_model, f.n_experts, f.top_p, f.renormalize, f.max_experts)
        return cls(config.d_model, sizes, router, f.activation, f, f.extra.get("dispatch", "auto"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # (B, T, C) -> (B·T, C)
        routing = self.router(flat)
        y = self.experts(flat, routing.mask, routing.gates)
        self._record(routing)
        return y.view(shape)

    def _record(self, routing: RouterOutput) -> None:
        cfg = self.ffn_config
        losses = {"load_balance": load_balance_loss(routing.probs, routing.mask)}
        if cfg.p_penalty_coef:
            losses["p_penalty"] = p_penalty_loss(routing.probs, routing.mask, self.size_tensor,
                                                 cfg.size_normalization, cfg.p_penalty_variant, routing.gates)
        if cfg.entropy_coef:
            losses["router_entropy"] = router_entropy_loss(routing.probs, cfg.entropy_scale_by_n)
        self.aux_losses = losses
        detached = routing.detach()
        self.last_routing = detached
        mask = detached.mask.float()
        width = (mask * self.size_tensor).sum(-1)  # (T,) activated hidden units per token
        self._activated_hidden = float(width.mean())
        self.stats = {
            "expert_fraction": mask.mean(0),  # f_i, (N,)
            "experts_per_token": float(mask.sum(-1).mean()),
            "activated_hidden": self._activated_hidden,
        }

    def activated_hidden(self) -> float:
        return self._activated_hidden


@register_ffn("moe")
def build_moe_ffn(config: ModelConfig) -> FFN:
    """``ffn.kind = "moe"``: homogeneous or heterogeneous experts (registered here, where the kind is defined)."""
    return MoEFFN.from_config(config)
