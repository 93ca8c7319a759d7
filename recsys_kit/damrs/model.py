"""DA-MRS as a RecBole ``GeneralRecommender`` wrapping LightGCN, MF-BPR or (reconstructed) VBPR.

Follows the official XMUDM/DA-MRS code (brief §2): frozen content features only build item–item graphs;
the trainable item-ID table is propagated over each graph (content modalities + behaviour graph) into item
"views" whose mean is added to the backbone's item output. Training uses the denoised BPR, AU and AI.
Every component is a config key, so the same class runs the plain backbone and each ablation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType

from recsys_kit.damrs.features import Modality, align_to_catalogue, load_modality
from recsys_kit.damrs.graphs import NeighbourGraph, behaviour_graph, knn_content_graphs
from recsys_kit.damrs.losses import (
    dbpr_weights,
    denoised_bpr_loss,
    item_alignment_loss,
    user_alignment_loss,
)
from recsys_kit.recbole_compat import patch_graph_models, symmetric_norm_adj
from shared.errors import ConfigError, TrainingDivergedError

patch_graph_models()  # a user's own RecBole Config/Trainer works once the plug-in is imported (idempotent)

# Official defaults (XMUDM/DA-MRS src/configs, brief §8.3); any RecBole config key overrides them.
DAMRS_DEFAULTS: dict[str, Any] = {
    "backbone": "lightgcn",         # lightgcn | mf | vbpr (vbpr is a reconstruction: code unreleased)
    "embedding_size": 64,
    "n_ui_layers": 2,               # LightGCN layers
    "n_mm_layers": 1,               # hops over the item–item graphs
    "knn_k": 10,
    "use_content_graphs": True,     # item–item content graphs (IIG/DIIG); False with use_iib False = plain backbone
    "use_consistency": True,        # DIIG (True) vs IIG (False)
    "use_iib": True,                # behaviour (co-interaction) graph as an extra view
    "iib_topk": 2,
    "iib_min_co": 2,
    "use_dbpr": True,               # denoised BPR (False: plain BPR)
    "dbpr_exponents": [1.0, 2.0, 1.0],  # (α, β, γ); the released code hard-codes (1, 2, 1)
    "kl_weight": 1.0,               # λ_AU (0 disables AU)
    "neighbor_weight": 1e-3,        # λ_AI (0 disables AI)
    "ai_num_pos": 10,
    "ai_temperature": 0.2,
    "ai_max_items": None,           # sub-sample AI anchors (CPU knob); None = every batch item (faithful)
    "reg_weight": 0.1,              # MF/VBPR only: un-squared Frobenius norms of fused embeddings / B
    "modality_files": [],           # one .npy per modality
    "modality_token_files": None,   # one token file per modality (row order); None = row r is item "r"
    "graph_chunk_size": 1024,
    "tie_break": True,
    "include_self": True,           # official: each item is in its own neighbour lists (False: measure the effect)
}

BACKBONES = ("lightgcn", "mf", "vbpr")


class DAMRS(GeneralRecommender):
    """DA-MRS (KDD 2024) over a LightGCN / MF-BPR / VBPR backbone, a RecBole citizen (pairwise input)."""

    input_type = InputType.PAIRWISE

    def __init__(self, config: Any, dataset: Any, modalities: list[Modality] | None = None):
        super().__init__(config, dataset)
        opt = {key: (config[key] if config[key] is not None else default) if key in _config_keys(config)
               else default for key, default in DAMRS_DEFAULTS.items()}
        self.options = opt
        self.backbone = str(opt["backbone"]).lower()
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {BACKBONES}, got {opt['backbone']!r}")
        d = self.latent_dim = int(opt["embedding_size"])
        self.n_ui_layers, self.n_mm_layers = int(opt["n_ui_layers"]), int(opt["n_mm_layers"])
        self.use_dbpr = bool(opt["use_dbpr"])
        self.dbpr_exponents = tuple(float(x) for x in opt["dbpr_exponents"])
        self.kl_weight, self.neighbor_weight = float(opt["kl_weight"]), float(opt["neighbor_weight"])
        self.ai_num_pos, self.ai_temperature = int(opt["ai_num_pos"]), float(opt["ai_temperature"])
        self.ai_max_items = opt["ai_max_items"]
        self.reg_weight = float(opt["reg_weight"]) if self.backbone != "lightgcn" else 0.0

        # VBPR (reconstruction, brief §8.3): z_u ∈ R^{2d}; item = [e_i + H̄_i ; W·concat(x_m)].
        self.user_embedding = nn.Embedding(self.n_users, 2 * d if self.backbone == "vbpr" else d)
        self.item_embedding = nn.Embedding(self.n_items, d)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)

        train_matrix = dataset.inter_matrix(form="coo").astype(np.float32)
        self.active_items = torch.ones(self.n_items, dtype=torch.bool)
        self.active_items[0] = False  # RecBole's [PAD] item: no features, no edges

        if modalities is None:
            modalities = self._load_modalities(opt, dataset)
        item_tokens = list(dataset.field2id_token[self.ITEM_ID])
        strict = opt["modality_token_files"] is None
        self.modality_names = [m.name for m in modalities]
        aligned = [torch.from_numpy(align_to_catalogue(m, item_tokens, strict_rows=strict)) for m in modalities]

        self.graphs: list[NeighbourGraph] = []
        self.view_names: list[str] = []
        self.graph_stats: dict[str, float] = {}
        if opt["use_content_graphs"]:
            if not aligned:
                raise ConfigError("use_content_graphs is on but no modality features were given "
                                  "(set modality_files, or turn use_content_graphs off for the plain backbone)")
            graphs, stats = knn_content_graphs(aligned, k=int(opt["knn_k"]), consistency=bool(opt["use_consistency"]),
                                               active=self.active_items, chunk_size=int(opt["graph_chunk_size"]),
                                               tie_break=bool(opt["tie_break"]),
                                               include_self=bool(opt["include_self"]))
            self.graphs += graphs
            self.view_names += self.modality_names
            for key, value in stats.items():  # "mean_cosine_<m>" -> "mean_cosine_<modality name>"
                if key.startswith("mean_cosine_"):
                    key = f"mean_cosine_{self.modality_names[int(key.rsplit('_', 1)[1])]}"
                self.graph_stats[key] = value
        if opt["use_iib"]:
            self.graphs.append(behaviour_graph(train_matrix, self.n_items, topk=int(opt["iib_topk"]),
                                               min_co_users=int(opt["iib_min_co"]), active=self.active_items,
                                               include_self=bool(opt["include_self"])))
            self.view_names.append("behaviour")
        for i, graph in enumerate(self.graphs):
            self.graph_stats[f"edges_{self.view_names[i]}"] = float(graph.n_edges)
        has_views = bool(self.graphs)
        if not has_views and (self.use_dbpr or self.kl_weight > 0 or self.neighbor_weight > 0):
            raise ConfigError("denoised BPR, AU and AI need item views: enable use_content_graphs or use_iib, or "
                              "set use_dbpr=False, kl_weight=0, neighbor_weight=0 for the plain backbone")

        if self.backbone == "vbpr":
            content = torch.cat(aligned, dim=1) if aligned else torch.zeros(self.n_items, 1)
            self.register_buffer("content_features", content, persistent=False)
            self.content_projection = nn.Linear(content.shape[1], d)
            nn.init.xavier_uniform_(self.content_projection.weight)
        if self.backbone == "lightgcn":
            norm, _ = symmetric_norm_adj(train_matrix, self.n_users, self.n_items)
            indices = torch.from_numpy(np.vstack([norm.row, norm.col]).astype(np.int64))
            adj = torch.sparse_coo_tensor(indices, torch.from_numpy(norm.data.astype(np.float32)), norm.shape,
                                          check_invariants=False)
            self.register_buffer("norm_adj", adj.coalesce(), persistent=False)
        self.restore_user_e: torch.Tensor | None = None
        self.restore_item_e: torch.Tensor | None = None
        self.last_losses: dict[str, float] = {}
        self.to(self.device)
        for graph in self.graphs:
            graph.indices, graph.weights = graph.indices.to(self.device), graph.weights.to(self.device)
        self.active_items = self.active_items.to(self.device)

    @staticmethod
    def _load_modalities(opt: dict[str, Any], dataset: Any) -> list[Modality]:
        files = list(opt["modality_files"] or [])
        token_files = opt["modality_token_files"]
        if token_files is not None and len(token_files) != len(files):
            raise ConfigError(f"modality_token_files has {len(token_files)} entries for {len(files)} modality files")
        return [load_modality(path, token_files[i] if token_files else None) for i, path in enumerate(files)]

    # ------------------------------------------------------------------ forward
    def backbone_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Z_u, Z_i): LightGCN layer-mean or the raw MF/VBPR tables."""
        users, items = self.user_embedding.weight, self.item_embedding.weight
        if self.backbone != "lightgcn":
            return users, items
        ego = torch.cat([users, items], dim=0)  # (U + N, d)
        layers = [ego]
        for _ in range(self.n_ui_layers):
            ego = torch.sparse.mm(self.norm_adj, ego)
            layers.append(ego)
        mean = torch.stack(layers, dim=1).mean(dim=1)
        return mean[: self.n_users], mean[self.n_users:]

    def item_views(self) -> list[torch.Tensor]:
        """H_m = Â_m^{L_mm} E_i for every item graph (content modalities, then behaviour)."""
        ids = self.item_embedding.weight
        return [graph.propagate(ids, self.n_mm_layers) for graph in self.graphs]

    def forward(self) -> dict[str, Any]:
        """All representations for one training step or one evaluation."""
        z_u, z_i = self.backbone_embeddings()
        views = self.item_views()
        mean_view = torch.stack(views).mean(dim=0) if views else torch.zeros_like(z_i)
        item = z_i + mean_view  # fusion h_i = Z_i + H̄_i
        if self.backbone == "vbpr":
            item = torch.cat([item, self.content_projection(self.content_features)], dim=1)  # (N, 2d)
        return {"user": z_u, "item": item, "cf_item": z_i, "views": views, "mean_view": mean_view}

    def _id_user(self, users: torch.Tensor) -> torch.Tensor:
        """The part of a user vector that scores ID-based item views (VBPR: its first d dims)."""
        return users[:, : self.latent_dim] if self.backbone == "vbpr" else users

    # ------------------------------------------------------------------ training
    def calculate_loss(self, interaction: Any) -> tuple[torch.Tensor, ...]:
        """L = L_DBPR + λ_AI L_AI + λ_AU L_AU (+ λ_reg L_reg for MF/VBPR), returned as RecBole-summed parts."""
        self.restore_user_e = self.restore_item_e = None
        users = interaction[self.USER_ID]
        pos = interaction[self.ITEM_ID]
        neg = interaction[self.NEG_ITEM_ID]
        rep = self.forward()
        z_u = rep["user"][users]  # (B, d or 2d)
        h_pos, h_neg = rep["item"][pos], rep["item"][neg]
        pos_scores, neg_scores = (z_u * h_pos).sum(-1), (z_u * h_neg).sum(-1)
        if self.use_dbpr:
            w_pos, w_neg = dbpr_weights(self._id_user(z_u), [v[pos] for v in rep["views"]],
                                        [v[neg] for v in rep["views"]], self.dbpr_exponents)
        else:
            w_pos, w_neg = torch.ones_like(pos_scores), torch.zeros_like(pos_scores)
        parts = [denoised_bpr_loss(pos_scores, neg_scores, w_pos, w_neg)]
        names = ["bpr"]
        if self.kl_weight > 0:
            batch_users = torch.unique(users)
            batch_items = torch.unique(torch.cat([pos, neg]))
            parts.append(self.kl_weight * user_alignment_loss(
                self._id_user(rep["user"][batch_users]), rep["cf_item"][batch_items], rep["mean_view"][batch_items]))
            names.append("au")
        if self.neighbor_weight > 0:
            anchors = torch.unique(torch.cat([pos, neg]))
            if self.ai_max_items is not None and anchors.numel() > int(self.ai_max_items):
                anchors = anchors[torch.randperm(anchors.numel(), device=anchors.device)[: int(self.ai_max_items)]]
            parts.append(self.neighbor_weight * item_alignment_loss(
                rep["views"], anchors, self.ai_num_pos, self.ai_temperature, excluded=~self.active_items))
            names.append("ai")
        if self.reg_weight > 0:
            reg = (z_u.norm(p=2) + h_pos.norm(p=2) + h_neg.norm(p=2)) / users.shape[0]
            parts.append(self.reg_weight * reg)
            names.append("reg")
        values = [float(p.detach()) for p in parts]
        if not all(np.isfinite(values)):
            raise TrainingDivergedError(f"DA-MRS loss became non-finite ({dict(zip(names, values))}); lower the "
                                        "learning rate or check the modality features for extreme values")
        self.last_losses = dict(zip(names, values))
        return tuple(parts)

    # ------------------------------------------------------------------ inference
    def predict(self, interaction: Any) -> torch.Tensor:
        """Score of each (user, item) pair in the interaction."""
        rep = self.forward()
        return (rep["user"][interaction[self.USER_ID]] * rep["item"][interaction[self.ITEM_ID]]).sum(-1)

    def full_sort_predict(self, interaction: Any) -> torch.Tensor:
        """Scores of every item for each user in the batch (representations cached per evaluation)."""
        if self.restore_user_e is None or self.restore_item_e is None:
            with torch.no_grad():
                rep = self.forward()
            self.restore_user_e, self.restore_item_e = rep["user"], rep["item"]
        users = self.restore_user_e[interaction[self.USER_ID]]
        return (users @ self.restore_item_e.T).view(-1)

    def train(self, mode: bool = True) -> DAMRS:
        """Switching mode drops the evaluation cache (parameters may have changed)."""
        self.restore_user_e = self.restore_item_e = None
        return super().train(mode)

    @torch.no_grad()
    def positive_weights(self, users: torch.Tensor, items: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Denoised-BPR w⁺ of arbitrary (user, item) pairs — the model's own noise score (low = suspicious)."""
        if not self.graphs:
            raise ConfigError("this model has no item views (use_content_graphs and use_iib are off), so it has no "
                              "denoised-BPR weight w⁺; score the pairs with predict() instead")
        rep = self.forward()
        out = []
        for start in range(0, users.numel(), batch_size):
            u, i = users[start:start + batch_size], items[start:start + batch_size]
            z_u = self._id_user(rep["user"][u])
            w_pos, _ = dbpr_weights(z_u, [v[i] for v in rep["views"]], [v[i] for v in rep["views"]],
                                    self.dbpr_exponents)
            out.append(w_pos)
        return torch.cat(out)


def _config_keys(config: Any) -> set[str]:
    """Keys present in a RecBole ``Config`` (or a plain dict in tests)."""
    if isinstance(config, dict):
        return set(config)
    return set(getattr(config, "final_config_dict", {}))

