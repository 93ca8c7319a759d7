"""Read scores and embeddings out of RecBole's own models (BPR, LightGCN, any GeneralRecommender).

Nothing here changes a model: selection reads its parameters under ``torch.no_grad``; samplers that need a
custom loss (weights, synthetic negatives) get the embeddings *with* gradient from the model's own weights
and reproduce the model's own regulariser (LightGCN: ``reg_weight * EmbLoss`` on layer-0 embeddings;
BPR: none, as in RecBole).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _is_lightgcn(model: torch.nn.Module) -> bool:
    return hasattr(model, "norm_adj_matrix") and hasattr(model, "n_layers") and hasattr(model, "get_ego_embeddings")


def _is_mf(model: torch.nn.Module) -> bool:
    return hasattr(model, "user_embedding") and hasattr(model, "item_embedding") and not _is_lightgcn(model)


def layer_embeddings(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer user and item embeddings ``[U, L+1, d]``, ``[N, L+1, d]`` (MF: ``L = 0``), with gradient."""
    if _is_lightgcn(model):
        all_e = model.get_ego_embeddings()
        layers = [all_e]
        for _ in range(model.n_layers):
            all_e = torch.sparse.mm(model.norm_adj_matrix, all_e)
            layers.append(all_e)
        stacked = torch.stack(layers, dim=1)  # [U+N, L+1, d]
        return torch.split(stacked, [model.n_users, model.n_items])
    if _is_mf(model):
        return model.user_embedding.weight.unsqueeze(1), model.item_embedding.weight.unsqueeze(1)
    raise TypeError(f"{type(model).__name__} exposes no embedding tables; layer-wise samplers (MixGCF, DENS, "
                    f"PRIS, T-CE) support RecBole's BPR/LightGCN-style models")


def final_embeddings(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings the model scores with (LightGCN: layer mean), ``[U, d]``, ``[N, d]``."""
    if _is_lightgcn(model):
        return model.forward()
    if _is_mf(model):
        return model.user_embedding.weight, model.item_embedding.weight
    users, items = layer_embeddings(model)
    return users.mean(1), items.mean(1)


@torch.no_grad()
def score_candidates(model: torch.nn.Module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Scores ``[B, M]`` of candidate ``items [B, M]`` for ``users [B]``, without gradient.

    BPR/LightGCN use their embedding tables (one propagation for LightGCN); any other RecBole model falls
    back to its own ``predict`` on the repeated interaction (as RecBole's dynamic sampler does).
    """
    device = next(model.parameters()).device
    users, items = users.to(device), items.to(device)
    was_training = model.training
    try:
        if _is_lightgcn(model) or _is_mf(model):
            user_e, item_e = final_embeddings(model)
            return torch.einsum("bd,bmd->bm", user_e[users], item_e[items]).cpu()
        from recbole.data.interaction import Interaction

        model.eval()
        flat_users = users.reshape(-1, 1).expand_as(items).reshape(-1)
        inter = Interaction({model.USER_ID: flat_users, model.ITEM_ID: items.reshape(-1)})
        return model.predict(inter.to(device)).reshape(items.shape).cpu()
    finally:
        model.train(was_training)


def regulariser(model: torch.nn.Module, users: torch.Tensor, *item_groups: torch.Tensor) -> torch.Tensor:
    """The model's own L2 term on layer-0 embeddings of the batch (LightGCN's ``reg_weight·EmbLoss``; BPR: 0)."""
    weight = float(getattr(model, "reg_weight", 0.0) or 0.0)
    if weight == 0.0:
        return torch.zeros((), device=users.device)
    require_pow = bool(getattr(model, "require_pow", False))
    tensors = [model.user_embedding(users)] + [model.item_embedding(g) for g in item_groups]
    # EmbLoss: sum_k ||E_k||_p (or ^2 / 2 with require_pow) divided by the batch size
    total = sum((t.pow(2).sum() / 2) if require_pow else torch.norm(t, p=2) for t in tensors)
    return weight * total / users.shape[0]


def weighted_bpr(pos_scores: torch.Tensor, neg_scores: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean_b sum_k w_bk · -log σ(s_ub,i - s_ub,j_k)`` (``neg_scores [B]`` or ``[B, K]``; RecBole's BPRLoss at K=1)."""
    if neg_scores.dim() == 1:
        neg_scores = neg_scores.unsqueeze(1)
    per_pair = -F.logsigmoid(pos_scores.unsqueeze(1) - neg_scores)  # [B, K]
    if weights is None:
        weights = torch.full_like(per_pair, 1.0 / per_pair.shape[1])
    return (weights * per_pair).sum(1).mean()
