"""HMoE routing analysis (brief §8.1/§8.3): per-layer activation statistics, size–activation correlation,
gate-weighted mean expert size per token, and the token-rarity analysis (Fig. 8 analogue).

Everything runs on a trained :class:`~llm_dynamics_kit.model.Transformer` whose FFNs are
:class:`~llm_dynamics_kit.moe.layer.MoEFFN` and a fixed token array (validation windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from llm_dynamics_kit.data import eval_batches
from llm_dynamics_kit.model import Transformer
from llm_dynamics_kit.moe.layer import MoEFFN
from shared.errors import ConfigError


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either input is constant."""
    def ranks(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # average ranks over ties
            tie = v == value
            r[tie] = r[tie].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass
class RoutingReport:
    """Routing statistics over a token set, per MoE layer."""

    sizes: list[list[int]]  # per layer, expert widths
    fractions: np.ndarray  # (L, N) f_i: share of tokens that activate expert i
    experts_per_token: np.ndarray  # (L,) mean #experts per token
    activated_hidden: np.ndarray  # (L,) mean Σ_{i∈E_t} h_i per token
    gate_weighted_size: np.ndarray  # (L, T_total) Σ_i g_{i,t} h_i per token
    token_ids: np.ndarray  # (T_total,) the token at each analysed position
    extra: dict = field(default_factory=dict)
    width: np.ndarray | None = None  # (L, T_total) activated hidden units Σ_{i∈E_t} h_i per position
    n_experts: np.ndarray | None = None  # (L, T_total) experts activated per position
    position_labels: np.ndarray | None = None  # (T_total,) the user's class of each position (or None)
    active: np.ndarray | None = None  # (L, T_total, N) 1 where expert i is active at a position

    def size_activation_rho(self) -> np.ndarray:
        """(L,) Spearman ρ(expert size, activation fraction) per layer (NaN for equal sizes)."""
        return np.array([spearman(np.array(s), f) for s, f in zip(self.sizes, self.fractions)])

    def by_label(self, names: dict[int, str] | None = None) -> dict[str, dict]:
        """Routing per position label and per layer: for every label, per layer (lists of length L) the mean
        activated width, gate-weighted expert width and experts per position, plus the count of positions.

        Labels are the user's own token classes (``labels`` of :func:`routing_report`); negative labels are
        skipped (positions not to analyse). ``names`` maps label ids to names (default: ``str(label)``).
        ``expert_fractions`` (per layer, per expert: the share of the class's positions that activate it) shows
        *which* experts serve a class — how many parameters it can store in, not only how wide each token is.
        """
        if self.position_labels is None:
            raise ConfigError("this report has no position labels: pass labels= to routing_report")
        out: dict[str, dict] = {}
        for label in sorted(int(v) for v in np.unique(self.position_labels) if v >= 0):
            sel = self.position_labels == label
            name = (names or {}).get(label, str(label))
            out[name] = {
                "positions": int(sel.sum()),
                "activated_hidden": self.width[:, sel].mean(1).tolist(),
                "gate_weighted_size": self.gate_weighted_size[:, sel].mean(1).tolist(),
                "experts_per_token": self.n_experts[:, sel].mean(1).tolist(),
            }
            if self.active is not None:
                out[name]["expert_fractions"] = self.active[:, sel].mean(1).round(4).tolist()
        return out


@torch.no_grad()
def routing_report(model: Transformer, tokens: np.ndarray, seq_len: int, batch_size: int = 16,
                   max_batches: int = 8, labels: np.ndarray | None = None) -> RoutingReport:
    """Run fixed windows of ``tokens`` through ``model`` and collect every MoE layer's routing.

    ``labels`` (optional, same length as ``tokens``): an integer class per position (the user's token
    classes; negative = ignore), windowed like ``tokens``; :meth:`RoutingReport.by_label` then reports
    routing per class and layer.
    """
    moe_layers = [f for f in model.ffns if isinstance(f, MoEFFN)]
    if not moe_layers:
        raise ConfigError("routing analysis needs a model with MoE FFNs (ffn.kind='moe')")
    if labels is not None and len(labels) != len(tokens):
        raise ConfigError(f"labels must have one entry per token: {len(labels)} labels for {len(tokens)} tokens")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    masks: list[list[torch.Tensor]] = [[] for _ in moe_layers]
    gated: list[list[torch.Tensor]] = [[] for _ in moe_layers]
    ids, labs = [], []
    label_windows = eval_batches(labels, seq_len, batch_size, max_batches) if labels is not None else None
    for x, _ in eval_batches(tokens, seq_len, batch_size, max_batches):
        model(torch.from_numpy(x).to(device))
        ids.append(x.reshape(-1))
        if label_windows is not None:
            labs.append(next(label_windows)[0].reshape(-1))
        for i, layer in enumerate(moe_layers):
            r = layer.last_routing
            masks[i].append(r.mask.float().cpu())
            gated[i].append((r.gates * layer.size_tensor).sum(-1).cpu())  # (T,) Σ_i g_{i,t} h_i
    model.train(was_training)
    mask = [torch.cat(m) for m in masks]  # L × (T_total, N)
    return RoutingReport(
        sizes=[layer.sizes for layer in moe_layers],
        fractions=np.stack([m.mean(0).numpy() for m in mask]),
        experts_per_token=np.array([float(m.sum(-1).mean()) for m in mask]),
        activated_hidden=np.array([float((m * layer.size_tensor.cpu()).sum(-1).mean())
                                   for m, layer in zip(mask, moe_layers)]),
        gate_weighted_size=np.stack([torch.cat(g).numpy() for g in gated]),
        token_ids=np.concatenate(ids),
        width=np.stack([(m * layer.size_tensor.cpu()).sum(-1).numpy() for m, layer in zip(mask, moe_layers)]),
        n_experts=np.stack([m.sum(-1).numpy() for m in mask]),
        position_labels=np.concatenate(labs) if labs else None,
        active=np.stack([m.numpy() for m in mask]),
    )


def token_frequencies(train_tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Count of every token id in the training tokens, (V,)."""
    return np.bincount(np.asarray(train_tokens, dtype=np.int64), minlength=vocab_size)


def rarity_deciles(token_ids: np.ndarray, frequencies: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin index per position by training frequency of its token: 0 = most frequent … n_bins-1 = rarest.

    Bins are equal-count quantiles over the analysed positions (ties broken by token id via a stable sort).
    """
    freq = frequencies[token_ids].astype(float)
    order = np.argsort(-freq, kind="stable")
    bins = np.empty(len(token_ids), dtype=int)
    bins[order] = np.minimum(np.arange(len(token_ids)) * n_bins // len(token_ids), n_bins - 1)
    return bins


def rarity_analysis(report: RoutingReport, frequencies: np.ndarray, n_bins: int = 10, n_boot: int = 200,
                    seed: int = 0) -> dict:
    """Gate-weighted mean expert size per token-rarity bin (averaged over layers) and its slope.

    The slope is the least-squares coefficient of size on bin index (units: hidden units per decile); the
    95% interval is a bootstrap over positions. Positive = rarer tokens go to larger experts (paper Fig. 8).
    """
    bins = rarity_deciles(report.token_ids, frequencies, n_bins)
    size = report.gate_weighted_size.mean(0)  # (T_total,) averaged over layers

    def slope(idx: np.ndarray) -> float:
        b, s = bins[idx], size[idx]
        return float(np.polyfit(b, s, 1)[0]) if np.unique(b).size > 1 else float("nan")

    rng = np.random.default_rng(seed)
    everything = np.arange(len(bins))
    boot = [slope(rng.integers(0, len(bins), len(bins))) for _ in range(n_boot)]
    per_bin = [float(size[bins == b].mean()) if np.any(bins == b) else float("nan") for b in range(n_bins)]
    return {"per_bin": per_bin, "slope": slope(everything),
            "slope_ci": [float(np.nanpercentile(boot, 2.5)), float(np.nanpercentile(boot, 97.5))]}
