"""Claims on the kit's shared speed measurements, written once for every paper that reports them.

The KV-cache target is the LM substrate's, not a paper's: HMoE and SSD both measure it on their own model
(:func:`llm_dynamics_kit.hf.generation_speed`) and score it here, so the rule and its wording cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.claims import compare


def kv_cache_claim(claim_id: str, claim: str, gen: Mapping[str, Any]) -> dict[str, Any]:
    """Cached vs uncached greedy-generate tokens/s against the issue-25 target (one measurement: no interval)."""
    ffn = f"{gen['ffn_kind']} FFN, " if gen.get("ffn_kind") else ""
    return compare(
        claim_id, claim,
        "Issue 25 target (not a paper number): ≥ 3× the uncached tokens/s at 256 new tokens.",
        f"tokens/s of greedy generate with / without the KV cache, {gen['new_tokens']} new tokens, batch 1 "
        f"({ffn}d={gen['d_model']}, {gen['n_layers']} layers); baseline = the target {gen['target']}×",
        [gen["speedup"]], float(gen["target"]), higher_is_better=True, ours_label="cached generate",
        baseline_label="target",
        why=(f"{gen['cached_tokens_per_s']:.0f} vs {gen['uncached_tokens_per_s']:.0f} tokens/s, median of "
             f"{gen['repeats']} interleaved runs, measured once per run, so there is no CI; the same tokens both "
             f"ways: {gen['same_tokens']}."))
