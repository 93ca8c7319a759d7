"""The arms of the HMoE study as FFN configs (HMoE brief §2.5.4 objectives, §8.2 miniature).

Every MoE arm has 8 experts sharing one total FFN budget Σh; the dense baseline's width equals the
activated width of the homogeneous top-2 MoE (2·Σh/8).
"""

from __future__ import annotations

import dataclasses

from llm_dynamics_kit.model import FFNConfig, ModelConfig
from shared.errors import ConfigError

LB, PP, ENT = 0.01, 0.1, 0.03  # paper coefficients: L_lb (homogeneous), L_pp (HMoE), L_ent (Top-P)

ARMS: dict[str, dict] = {
    # homogeneous baselines
    "moe_topk_lb": dict(size_strategy="homogeneous", router="topk", load_balance_coef=LB),
    "moe_topp_lb_ent": dict(size_strategy="homogeneous", router="topp", load_balance_coef=LB, entropy_coef=ENT),
    # heterogeneous (arithmetic sizes 9..23) with each auxiliary loss
    "hmoe_topk_pp": dict(size_strategy="arithmetic", router="topk", p_penalty_coef=PP),
    "hmoe_topk_none": dict(size_strategy="arithmetic", router="topk"),
    "hmoe_topk_lb": dict(size_strategy="arithmetic", router="topk", load_balance_coef=LB),
    "hmoe_topp_pp_ent": dict(size_strategy="arithmetic", router="topp", p_penalty_coef=PP, entropy_coef=ENT),
    "hmoe_topp_pp": dict(size_strategy="arithmetic", router="topp", p_penalty_coef=PP),
    # size-distribution ablation (Fig. 6)
    "hmoe_topk_pp_hybrid": dict(size_strategy="hybrid", router="topk", p_penalty_coef=PP),
    "hmoe_topk_pp_geometric": dict(size_strategy="geometric", router="topk", p_penalty_coef=PP),
}
DENSE_ARM = "dense"


def arm_names() -> list[str]:
    """Every arm name, dense first."""
    return [DENSE_ARM, *ARMS]


def arm_config(arm: str, base: ModelConfig, total_hidden: int, n_experts: int = 8, top_k: int = 2,
               top_p: float = 0.6, multiple_of: int = 4) -> ModelConfig:
    """``base`` with the FFN of ``arm`` (budget ``total_hidden`` over ``n_experts`` experts)."""
    if arm == DENSE_ARM:
        ffn = FFNConfig(kind="dense", hidden=total_hidden * top_k // n_experts)
    elif arm in ARMS:
        ffn = FFNConfig(kind="moe", hidden=total_hidden, n_experts=n_experts, top_k=top_k, top_p=top_p,
                        multiple_of=multiple_of, **ARMS[arm])
    else:
        raise ConfigError(f"unknown HMoE arm {arm!r}; choose from {arm_names()}")
    return dataclasses.replace(base, ffn=ffn)
