"""The arms of the HMoE study as FFN configs (HMoE brief §2.5.4 objectives, §8.2 miniature).

Every MoE arm has 8 experts sharing one total FFN budget Σh; the dense baseline's width equals the
activated width of the homogeneous top-2 MoE (2·Σh/8).
"""

from __future__ import annotations

import dataclasses

from llm_dynamics_kit.model import FFNConfig, ModelConfig
from shared.errors import ConfigError

LB, PP = 0.01, 0.1  # paper coefficients: L_lb (homogeneous), L_pp (HMoE)
ENT_PAPER = 0.03  # the paper's L_ent coefficient (Top-P)
# Default L_ent coefficient for the miniature (a scale choice, see moe/losses.router_entropy_loss): the per-token
# entropy's gradient does not shrink with the model, but what it competes with — the LM gain of mixing a second
# expert, which reaches the router only through the renormalised gates of experts already selected (none at
# all once a token selects one) — is tiny in a d=32–64 model. Measured on the planted two-difficulty language
# (hmoe.controls, d=32, 600 steps): 0.03 and 0.01 collapse Top-P to 1.0 expert/token (0.03 also with
# renormalize=False and when switched on only at step 200); 0.003 keeps 1.6–2.3 at step 600 (2 seeds), like the paper's ≈2.25
# (HMoE-0.4B Top-P: 173M activated = ≈2.25 experts of 1536 per layer, Table 1). ``arm_config(entropy_coef=)``
# and the ``*_ent_paper`` arms run the paper's value.
ENT = 0.003

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
    "hmoe_topp_pp_ent_paper": dict(size_strategy="arithmetic", router="topp", p_penalty_coef=PP,
                                   entropy_coef=ENT_PAPER),
    # size-distribution ablation (Fig. 6)
    "hmoe_topk_pp_hybrid": dict(size_strategy="hybrid", router="topk", p_penalty_coef=PP),
    "hmoe_topk_pp_geometric": dict(size_strategy="geometric", router="topk", p_penalty_coef=PP),
}
DENSE_ARM = "dense"


def arm_names() -> list[str]:
    """Every arm name, dense first."""
    return [DENSE_ARM, *ARMS]


def arm_config(arm: str, base: ModelConfig, total_hidden: int, n_experts: int = 8, top_k: int = 2,
               top_p: float = 0.6, multiple_of: int = 4, entropy_coef: float | None = None) -> ModelConfig:
    """``base`` with the FFN of ``arm`` (budget ``total_hidden`` over ``n_experts`` experts).

    ``entropy_coef`` overrides the router-entropy coefficient of the arms that use one (Top-P arms).
    """
    if arm == DENSE_ARM:
        ffn = FFNConfig(kind="dense", hidden=total_hidden * top_k // n_experts)
    elif arm in ARMS:
        options = dict(ARMS[arm])
        if entropy_coef is not None and options.get("entropy_coef"):
            if entropy_coef < 0:
                raise ConfigError(f"entropy_coef must be >= 0, got {entropy_coef}")
            options["entropy_coef"] = float(entropy_coef)
        ffn = FFNConfig(kind="moe", hidden=total_hidden, n_experts=n_experts, top_k=top_k, top_p=top_p,
                        multiple_of=multiple_of, **options)
    else:
        raise ConfigError(f"unknown HMoE arm {arm!r}; choose from {arm_names()}")
    return dataclasses.replace(base, ffn=ffn)
