"""Mixture-of-experts pieces shared by HMoE and SSD: expert sizes, routers, dispatch, auxiliary losses."""

from llm_dynamics_kit.moe.losses import load_balance_loss, p_penalty_loss, router_entropy_loss
from llm_dynamics_kit.moe.routing import RouterOutput, TopKRouter, TopPRouter
from llm_dynamics_kit.moe.sizes import expert_sizes

__all__ = ["expert_sizes", "TopKRouter", "TopPRouter", "RouterOutput", "load_balance_loss", "p_penalty_loss",
           "router_entropy_loss"]
