"""torch modules of the disentangling network (brief §2.1 fusion and §2.3 encoders/decoder/heads, [recon])."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer perceptron ``Linear → GELU → Dropout → Linear``."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


class GroupProjector(nn.Module):
    """Each feature group (columns start:stop) -> ``Linear → LayerNorm → GELU`` (group_dim); concatenated groups
    are fused by a one-layer MLP into h (fused_dim) — brief §2.1's "concatenate + 1-layer MLP" fusion."""

    def __init__(self, groups: Sequence[tuple[int, int]], group_dim: int, fused_dim: int, dropout: float = 0.0):
        super().__init__()
        self.groups = [(int(a), int(b)) for a, b in groups]
        self.proj = nn.ModuleList(
            nn.Sequential(nn.Linear(b - a, group_dim), nn.LayerNorm(group_dim), nn.GELU()) for a, b in self.groups)
        self.fuse = nn.Sequential(nn.Dropout(dropout), nn.Linear(group_dim * len(self.groups), fused_dim), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [proj(x[:, a:b]) for proj, (a, b) in zip(self.proj, self.groups)]  # G × (B, group_dim)
        return self.fuse(torch.cat(parts, dim=1))  # (B, fused_dim)


class GaussianEncoder(nn.Module):
    """Amortised posterior q(z | h) = N(μ(h), diag σ²(h)) with 2-layer MLPs for μ and log σ²."""

    def __init__(self, in_dim: int, hidden: int, latent: int):
        super().__init__()
        self.mu = mlp(in_dim, hidden, latent)
        self.logvar = mlp(in_dim, hidden, latent)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h).clamp(-8.0, 8.0)  # (B, m) each; clamped so exp() never overflows


class DisentanglingNetwork(nn.Module):
    """h -> (z_inv, z_c, z_n); classifier on the non-noise factors, auxiliary heads for the loss terms."""

    FACTORS = ("inv", "c", "n")

    def __init__(self, in_dim: int, groups: Sequence[tuple[int, int]], group_dim: int, fused_dim: int,
                 latent_dim: int, hidden_dim: int, n_environments: int, predict_from: Sequence[str],
                 reconstruct_dim: int, dropout: float = 0.1):
        super().__init__()
        self.predict_from = tuple(predict_from)
        self.projector = GroupProjector(groups, group_dim, fused_dim, dropout)
        self.encoders = nn.ModuleDict({k: GaussianEncoder(fused_dim, hidden_dim, latent_dim) for k in self.FACTORS})
        self.decoder = mlp(3 * latent_dim, hidden_dim, reconstruct_dim)
        self.classifier = mlp(latent_dim * len(self.predict_from), hidden_dim, 1, dropout)  # C([z_inv; z_c])
        self.invariant_head = nn.Linear(latent_dim, 1)  # ŷ_inv = σ(w_inv · z_inv)
        self.environment_probe = nn.Linear(latent_dim, n_environments)  # CE(e | z_c)
        self.environment_assigner = nn.Linear(latent_dim, n_environments)  # option B: π = softmax(W_e z_c / τ)
        self.noise_head = mlp(latent_dim, hidden_dim, 1)  # adversary a(z_n) -> y behind gradient reversal
        self.environment_means = nn.Parameter(torch.zeros(n_environments, latent_dim))  # p(z_c | e) = N(μ_e, I)

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        h = self.projector(x)  # (B, d)
        out: dict[str, torch.Tensor] = {"h": h}
        for k in self.FACTORS:
            mu, logvar = self.encoders[k](h)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu  # reparameterisation
            out[f"mu_{k}"], out[f"logvar_{k}"], out[f"z_{k}"] = mu, logvar, z
        out["logit"] = self.classifier(torch.cat([out[f"z_{k}"] for k in self.predict_from], dim=1)).squeeze(1)
        out["logit_inv"] = self.invariant_head(out["z_inv"]).squeeze(1)
        out["recon"] = self.decoder(torch.cat([out["z_inv"], out["z_c"], out["z_n"]], dim=1))
        return out


class FusedMLP(nn.Module):
    """The baselines' network: the same group projector and fused width, then an MLP head (hidden -> 1)."""

    def __init__(self, groups: Sequence[tuple[int, int]], group_dim: int, fused_dim: int, hidden_dim: int,
                 dropout: float = 0.1):
        super().__init__()
        self.projector = GroupProjector(groups, group_dim, fused_dim, dropout)
        self.head = mlp(fused_dim, hidden_dim, 1, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.projector(x)  # (B, d)
        return self.head(h).squeeze(1), h
