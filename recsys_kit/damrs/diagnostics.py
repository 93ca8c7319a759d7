"""Mechanism checks: does the denoised-BPR weight single out the pairs we injected? (brief §8.4)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recsys_kit.damrs.train import TrainResult


def injected_pair_scores(result: TrainResult, injected: pd.DataFrame) -> dict[str, float]:
    """Mean w⁺ on injected vs genuine training pairs, the AUC of −w⁺ and of −score for finding injected ones.

    A model without item views (the plain backbone) has no w⁺: only its own score is evaluated (``score_*``).
    ``view_auc`` is the AUC of −cos(z_u, H̄_i), the user against the item's mean view: what the learned views
    know about the pairs before the official weight formula (σ of the unnormalised user vector, the variance
    penalty) turns it into w⁺.
    """
    from sklearn.metrics import roc_auc_score

    model, dataset = result.model, result.train_data.dataset
    users = dataset.inter_feat[model.USER_ID].long()
    items = dataset.inter_feat[model.ITEM_ID].long()
    user_ids = dataset.token2id(model.USER_ID, injected["user_id"].astype(str).tolist())
    item_ids = dataset.token2id(model.ITEM_ID, injected["item_id"].astype(str).tolist())
    injected_keys = set(zip(np.atleast_1d(user_ids).tolist(), np.atleast_1d(item_ids).tolist()))
    label = np.array([(u, i) in injected_keys for u, i in zip(users.tolist(), items.tolist())])
    model.eval()
    with torch.no_grad():
        rep = model.forward()
        scores = (rep["user"][users] * rep["item"][items]).sum(-1).cpu().numpy()
    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    out = {"n_injected_found": float(label.sum()), "score_injected": mean(scores[label]),
           "score_genuine": mean(scores[~label])}
    separable = 0 < label.sum() < len(label)
    if separable:
        out["score_auc"] = float(roc_auc_score(label, -scores))
    if model.graphs:
        weights = model.positive_weights(users.to(model.device), items.to(model.device)).cpu().numpy()
        out.update({"w_pos_injected": mean(weights[label]), "w_pos_genuine": mean(weights[~label])})
        if separable:
            out["w_pos_auc"] = float(roc_auc_score(label, -weights))
            with torch.no_grad():
                view_cos = torch.nn.functional.cosine_similarity(
                    model._id_user(rep["user"][users]), rep["mean_view"][items], dim=1).cpu().numpy()
            out["view_auc"] = float(roc_auc_score(label, -view_cos))
    return out
