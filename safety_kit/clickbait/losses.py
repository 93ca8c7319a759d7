"""The loss terms of the disentangling network (brief §2.3, all [recon]) and of the invariance baselines.

Every function works on soft environment weights ``env_weights`` of shape (B, E) (rows sum to 1; one-hot for
hard assignments), so k-means, learned and given environments share one code path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(N(mu, diag exp(logvar)) ‖ N(0, I)); mu, logvar: (B, m)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def kl_to_environment_prior(mu: torch.Tensor, logvar: torch.Tensor, env_means: torch.Tensor,
                            env_weights: torch.Tensor) -> torch.Tensor:
    """E_{e~π}[KL(q(z_c|h) ‖ N(μ_e, I))]: mu/logvar (B, m), env_means (E, m), env_weights (B, E)."""
    diff = mu.unsqueeze(1) - env_means.unsqueeze(0)  # (B, E, m)
    per_env = 0.5 * (diff.pow(2) + logvar.exp().unsqueeze(1) - 1.0 - logvar.unsqueeze(1)).sum(dim=2)  # (B, E)
    return (env_weights * per_env).sum(dim=1).mean()


def environment_risks(losses: torch.Tensor, env_weights: torch.Tensor) -> torch.Tensor:
    """Per-environment mean risk R_e = Σ_i w_ie ℓ_i / Σ_i w_ie for environments present in the batch; (E',)."""
    mass = env_weights.sum(dim=0)  # (E,)
    present = mass > 1e-6
    return (env_weights[:, present] * losses.unsqueeze(1)).sum(dim=0) / mass[present]


def vrex_penalty(losses: torch.Tensor, env_weights: torch.Tensor) -> torch.Tensor:
    """V-REx: variance across environments of the per-environment risk (0 with fewer than 2 environments)."""
    risks = environment_risks(losses, env_weights)
    if risks.numel() < 2:
        return losses.sum() * 0.0
    return risks.var(unbiased=False)


def irm_penalty(logits: torch.Tensor, targets: torch.Tensor, env_weights: torch.Tensor) -> torch.Tensor:
    """IRMv1: Σ_e ‖∇_{s|s=1} R_e(s · logits)‖², with a differentiable gradient (create_graph)."""
    scale = torch.ones((), requires_grad=True, device=logits.device)
    losses = F.binary_cross_entropy_with_logits(logits * scale, targets, reduction="none")
    risks = environment_risks(losses, env_weights)
    total = logits.sum() * 0.0
    for risk in risks:
        (grad,) = torch.autograd.grad(risk, scale, create_graph=True)
        total = total + grad.pow(2)
    return total


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-scale`` backward (gradient-reversal layer)."""
    return _GradientReversal.apply(x, scale)


def hsic(x: torch.Tensor, y: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """Biased HSIC between x (B, m) with a Gaussian kernel (median bandwidth) and y (B,) with a linear kernel."""
    n = x.shape[0]
    if n < 2:
        return x.sum() * 0.0
    dist = torch.cdist(x, x).pow(2)
    if sigma is None:
        sigma2 = dist.detach()[dist.detach() > 0].median().clamp_min(1e-6) if (dist > 0).any() else torch.tensor(1.0)
    else:
        sigma2 = torch.tensor(sigma ** 2)
    K = torch.exp(-dist / (2 * sigma2))
    yc = y.float().view(-1, 1)
    L = yc @ yc.T
    H = torch.eye(n, device=x.device) - 1.0 / n
    return torch.trace(K @ H @ L @ H) / (n - 1) ** 2


def orthogonality(factors: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared cross-correlation Σ_{k<k'} ‖Ẑ_kᵀ Ẑ_k'‖²_F / m² between factors (Ẑ batch-centred, unit columns).

    The brief writes ‖Ẑ_kᵀ Ẑ_k'‖²_F / B²; with column-normalised Ẑ the entries are already correlations in
    [-1, 1], so dividing by B² would make the term vanish with the batch size — we divide by m² instead [recon].
    """
    normed = []
    for z in factors:
        zc = z - z.mean(dim=0, keepdim=True)
        normed.append(zc / zc.norm(dim=0, keepdim=True).clamp_min(1e-6))  # (B, m) unit columns
    total = factors[0].sum() * 0.0
    for i in range(len(normed)):
        for j in range(i + 1, len(normed)):
            total = total + (normed[i].T @ normed[j]).pow(2).sum() / (normed[i].shape[1] * normed[j].shape[1])
    return total


def soft_cross_entropy(logits: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """Mean of −Σ_e w_e log softmax(logits)_e; logits and weights (B, E)."""
    return -(target_weights * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def balance_penalty(assign: torch.Tensor) -> torch.Tensor:
    """KL(mean_i π_i ‖ uniform): keeps learned environment assignments from collapsing onto one environment."""
    marginal = assign.mean(dim=0).clamp_min(1e-8)
    E = assign.shape[1]
    return (marginal * (marginal * E).log()).sum()


def group_dro_weights(group_risks: torch.Tensor, weights: torch.Tensor, eta: float) -> torch.Tensor:
    """GroupDRO exponentiated-gradient update of the group weights q ← q · exp(η R_g), renormalised."""
    new = weights * torch.exp(eta * group_risks.detach())
    return new / new.sum()
