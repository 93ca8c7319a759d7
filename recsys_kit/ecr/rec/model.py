"""ECR's emotion-aware recommender in plain torch (brief §2.2): RGCN entity encoder, local/global emotion fusion,
soft prompt tokens, and a small Transformer backbone.

Substitution (brief §8.1 ``TinyBackbone``): the paper injects the prompt as prefix key/values into a frozen
DialoGPT and reads RoBERTa token features; on a CPU we feed [S_rec ; Ẽ'_l ; E'_g ; context turns ; user query]
into a 2-layer Transformer whose query output is the user vector, with turn features from a frozen sentence
encoder (MiniLM) or TF-IDF. Everything the paper adds on top of UniCRS — emotion embeddings, the shared Fuse
MLP, the co-occurrence global tokens, the weighted loss — is implemented as written.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_kit.ecr.kg import KnowledgeGraph
from recsys_kit.ecr.labels import EMOTIONS, PAD_EMOTION


@dataclasses.dataclass
class RecModelConfig:
    """Architecture knobs; paper values in comments (d = 768 there)."""

    dim: int = 64  # d (paper: 768)
    entity_dim: int = 32  # d_e = d/2 (paper: 384)
    emotion_dim: int = 16  # paper: 48 = d/16; [R] a larger share for a tiny d
    num_bases: int = 8  # RGCN bases (paper code: 8)
    n_soft_tokens: int = 10  # n_prefix_rec
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    text_dim: int = 64  # set from the featurizer
    max_turns: int = 8
    use_emotion: bool = True  # local emotion fusion (ECR[L]); False = UniCRS-style entity tokens
    use_global: bool = True  # global co-occurrence tokens (ECR[G])
    mask_text_padding: bool = True  # [R] the official code does not mask pad tokens in token–entity attention
    init_std: float = 0.02  # [R] N(0, 0.02) for the added position/segment embeddings (GPT-2/BERT practice);
    # torch's default N(0, 1) (norm ≈ √d ≈ 8) swamps an entity's own component (norm ≈ 1) once the attended
    # turn tokens are added onto it, and the model then ignores entities (and emotions) for many epochs


def relation_edges(kg: KnowledgeGraph) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None]:
    """Per relation, ``(src, dst, 1/deg_r(dst))`` over both edge directions (mean aggregation per relation)."""
    out = []
    for r in range(kg.n_relations):
        keep = kg.relations == r
        if not keep.any():
            out.append(None)
            continue
        pairs = np.unique(np.stack([np.concatenate([kg.heads[keep], kg.tails[keep]]),
                                    np.concatenate([kg.tails[keep], kg.heads[keep]])], axis=1), axis=0)
        src, dst = pairs[:, 0], pairs[:, 1]  # duplicate triples count once
        degree = np.bincount(dst, minlength=kg.n_entities).astype(np.float32)
        out.append((torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(1.0 / degree[dst])))
    return out


def sparse_tensor(matrix: sp.spmatrix) -> torch.Tensor:
    """A SciPy sparse matrix as a coalesced torch COO tensor."""
    coo = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=False).coalesce()


class RGCN(nn.Module):
    """Relational GCN layer with basis decomposition, per-relation mean aggregation and a root weight.

    ``out_i = W_0 x_i + b + Σ_r mean_{j ∈ N_r(i)} W_r x_j``, ``W_r = Σ_b a_rb V_b`` (Schlichtkrull et al.).
    """

    def __init__(self, dim: int, n_relations: int, num_bases: int = 8):
        super().__init__()
        num_bases = min(num_bases, max(1, n_relations))
        self.bases = nn.Parameter(torch.empty(num_bases, dim, dim))
        self.coefficients = nn.Parameter(torch.empty(n_relations, num_bases))
        self.root = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.bases)
        nn.init.xavier_uniform_(self.coefficients)

    def forward(self, x: torch.Tensor, edges: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None]) -> torch.Tensor:
        weights = torch.einsum("rb,bio->rio", self.coefficients, self.bases)  # (R, d, d)
        out = self.root(x)  # (N, d)
        for r, edge in enumerate(edges):
            if edge is not None:  # gather -> transform -> scatter-mean (index_add is fast to differentiate)
                src, dst, norm = edge
                out = out.index_add(0, dst, (x[src] @ weights[r]) * norm.unsqueeze(1))
        return out


def residual_mlp(dim: int, hidden: int) -> nn.Sequential:
    """The ``d -> hidden -> d`` ReLU MLP that ECR adds residually everywhere."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class EntityEncoder(nn.Module):
    """X -> H = RGCN(X) + X -> H = MLP(H) + H -> E = H W_e  ((N, d_e) -> (N, d))."""

    def __init__(self, n_entities: int, n_relations: int, entity_dim: int, dim: int, num_bases: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(n_entities, entity_dim))
        nn.init.xavier_uniform_(self.embedding)
        self.rgcn = RGCN(entity_dim, n_relations, num_bases)
        self.mlp = residual_mlp(entity_dim, entity_dim // 2)
        self.project = nn.Linear(entity_dim, dim)

    def forward(self, edges: list) -> torch.Tensor:
        h = self.rgcn(self.embedding, edges) + self.embedding
        h = self.mlp(h) + h
        return self.project(h)  # (N, d)


class EmotionEncoder(nn.Module):
    """V (10 × d) -> V' = (MLP(V) + V) W_v;  F_e = Σ_i p_i V'[f_i]  (paper Eq. 3)."""

    def __init__(self, dim: int, emotion_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(len(EMOTIONS) + 1, dim, padding_idx=PAD_EMOTION)
        self.mlp = residual_mlp(dim, dim // 2)
        self.project = nn.Linear(dim, emotion_dim)

    def forward(self, labels: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        table = self.embedding.weight
        table = self.project(self.mlp(table) + table)  # (10, emotion_dim)
        return (table[labels] * probs.unsqueeze(-1)).sum(dim=-2)  # (B, n_e, n_f) -> (B, n_e, emotion_dim)


class Fuse(nn.Module):
    """The code's Eq. 4: L_c(L_b(ReLU(L_a([e ; F])))), shared by the local and global branches."""

    def __init__(self, dim: int, emotion_dim: int):
        super().__init__()
        self.a = nn.Linear(dim + emotion_dim, dim)
        self.b = nn.Linear(dim, dim + emotion_dim)
        self.c = nn.Linear(dim + emotion_dim, dim)

    def forward(self, entity: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        return self.c(self.b(torch.relu(self.a(torch.cat([entity, emotion], dim=-1)))))


class ECRRecommender(nn.Module):
    """Scores every KG entity for a dialogue context; ``use_emotion``/``use_global`` off = the UniCRS-style baseline."""

    def __init__(self, kg: KnowledgeGraph, config: RecModelConfig, cooccurrence: sp.csr_matrix | None = None):
        super().__init__()
        self.config = config
        d = config.dim
        self.entities = EntityEncoder(kg.n_entities, kg.n_relations, config.entity_dim, d, config.num_bases)
        self.edges = relation_edges(kg)
        self.text_mlp = residual_mlp(config.text_dim, config.text_dim // 2)
        self.text_project = nn.Linear(config.text_dim, d)
        self.turn_position = nn.Embedding(config.max_turns, d)
        self.token_entity = nn.Linear(d, d, bias=False)  # W_c of the semantic fusion
        self.soft_tokens = nn.Parameter(torch.randn(config.n_soft_tokens, d) * 0.02)
        self.soft_mlp = residual_mlp(d, d // 2)
        self.user_query = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.segment = nn.Embedding(5, d)  # soft / local / global / text / query
        for table in (self.turn_position, self.segment):
            nn.init.normal_(table.weight, std=config.init_std)
        if config.use_emotion:
            self.emotions = EmotionEncoder(d, config.emotion_dim)
            self.fuse = Fuse(d, config.emotion_dim)
        self.cooccurrence = None
        if config.use_global:
            if cooccurrence is None:
                raise ValueError("use_global needs the co-occurrence matrix")
            self.cooccurrence = sparse_tensor(cooccurrence)
        layer = nn.TransformerEncoderLayer(d, config.n_heads, 2 * d, config.dropout, batch_first=True,
                                           norm_first=True)
        self.backbone = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def entity_matrix(self) -> torch.Tensor:
        """The RGCN entity matrix E (N, d), recomputed every step as in the paper."""
        return self.entities(self.edges)

    def _semantic_fusion(self, batch: dict[str, torch.Tensor], E: torch.Tensor):
        """Turn tokens T (B, n_t, d), the entities' own rows E_l and the attended text Σ_q α_qj t_q (B, n_e, d)."""
        text = batch["text"]  # (B, n_t, text_dim)
        text_mask = batch["text_mask"]  # (B, n_t) True = real turn
        T = self.text_project(self.text_mlp(text) + text) + self.turn_position(batch["turn_position"])  # (B, n_t, d)
        own = E[batch["entities"]]  # (B, n_e, d)
        scores = (self.token_entity(T) @ own.transpose(1, 2)) / E.shape[1]  # (B, n_t, n_e), /d as in the code
        if self.config.mask_text_padding:
            scores = scores.masked_fill(~text_mask.unsqueeze(-1), float("-inf"))
        alpha = torch.softmax(scores, dim=1)  # over the token axis
        return T, own, alpha.transpose(1, 2) @ T

    @torch.no_grad()
    def fusion_scale(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean L2 norms of the fused local entity's parts: its own row, the attended text, the position and
        segment embeddings (a diagnostic: the entity's own part must not be swamped by what is added to it)."""
        E = self.entity_matrix()
        _, own, attended = self._semantic_fusion(batch, E)
        mask = batch["entity_mask"]
        return {"entity": float(own.norm(dim=-1)[mask].mean()), "attended_text": float(attended.norm(dim=-1)[mask].mean()),
                "turn_position": float(self.turn_position.weight.norm(dim=-1).mean()),
                "segment": float(self.segment.weight.norm(dim=-1).mean())}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits over all entities (B, N)."""
        cfg = self.config
        E = self.entity_matrix()  # (N, d)
        text_mask = batch["text_mask"]
        ids, entity_mask = batch["entities"], batch["entity_mask"]  # (B, n_e)
        T, own, attended = self._semantic_fusion(batch, E)
        local = attended + own  # (B, n_e, d): ẽ_j = Σ_q α_qj t_q + e_j
        parts, masks, segments = [], [], []
        B = ids.shape[0]
        soft = self.soft_tokens + self.soft_mlp(self.soft_tokens)
        parts.append(soft.unsqueeze(0).expand(B, -1, -1))
        masks.append(torch.ones(B, cfg.n_soft_tokens, dtype=torch.bool, device=ids.device))
        segments.append(0)
        feeling = None
        if cfg.use_emotion:
            feeling = self.emotions(batch["emotion_labels"], batch["emotion_probs"])  # (B, n_e, emotion_dim)
            local = self.fuse(local, feeling)
        parts.append(local)
        masks.append(entity_mask)
        segments.append(1)
        if cfg.use_global:
            G = torch.sparse.mm(self.cooccurrence, E)[ids]  # (B, n_e, d): Σ_i P(e_i|e_j) E[i]  (Eq. 5)
            if feeling is not None:
                G = self.fuse(G, feeling)
            parts.append(G)
            masks.append(entity_mask)
            segments.append(2)
        parts.append(T)
        masks.append(text_mask)
        segments.append(3)
        parts.append(self.user_query.expand(B, -1, -1))
        masks.append(torch.ones(B, 1, dtype=torch.bool, device=ids.device))
        segments.append(4)
        sequence = torch.cat([p + self.segment.weight[s] for p, s in zip(parts, segments)], dim=1)  # (B, L, d)
        hidden = self.backbone(sequence, src_key_padding_mask=~torch.cat(masks, dim=1))
        user = self.norm(hidden[:, -1])  # (B, d)
        return user @ E.T  # (B, N)
