"""Transition² as a RecBole ``SequentialRecommender`` (brief §3).

Components, each behind a switch of brief §3.7:

- transition-aware graph encoder (TGE): a global item graph counted from *training* histories, one count matrix
  per feedback pair (+→+, +→−, −→+, −→−), mixed by a 2×2 edge-weight matrix W (uniform, fixed or learned) and
  propagated LightGCN-style (mean over K+1 layers, as in C2DSR's ``GCNLayer``);
- cross-transition multi-head self-attention (CTMSA): a SASRec block stack whose heads each see one transition
  type through their own mask (per-head (B, H, L, L) additive masks broadcast inside RecBole's attention);
- per-domain prediction: candidates outside the target's domain (and padding) are never ranked;
- v2 contrastive terms L_align (domain views or graph-vs-sequence) and L_cont (liked vs disliked).

Everything concrete is a reconstruction [R] of the paper's named components (its method section is not public);
the docstrings name the brief section each default follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
import yaml
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import TransformerEncoder
from torch import nn

from shared.errors import ConfigError, DataError

FEEDBACK_PAIRS = (("pos", "pos"), ("pos", "neg"), ("neg", "pos"), ("neg", "neg"))
MASK_TYPES = ("all", "intra_dom", "cross_dom", "same_fb", "cross_fb", "pos_to_pos", "pos_to_neg", "neg_to_pos",
              "neg_to_neg")
NEG_FILL = -1e9

# The arms of brief §10 as switch settings of one model (same architecture, same budget).
PRESETS: dict[str, dict] = {
    "sasrec_mixed": dict(use_graph=False, keep_negatives_in_history=False, use_feedback_emb=False,
                         head_masks=["all"], lambda_align=0.0, lambda_cont=0.0),
    "sasrec_neg": dict(use_graph=False, keep_negatives_in_history=True, use_feedback_emb=True,
                       head_masks=["all"], lambda_align=0.0, lambda_cont=0.0),
    "c2dsr_lite": dict(use_graph=True, edge_weighting="uniform", keep_negatives_in_history=False,
                       use_feedback_emb=False, head_masks=["all", "intra_dom", "cross_dom", "all"],
                       lambda_align=0.0, lambda_cont=0.0),
    "t2_v1": dict(use_graph=True, edge_weighting="learned_2x2", keep_negatives_in_history=True,
                  use_feedback_emb=True, head_masks=["all", "intra_dom", "cross_dom", "cross_fb"],
                  lambda_align=0.0, lambda_cont=0.0),
    "t2_v2": dict(use_graph=True, edge_weighting="learned_2x2", keep_negatives_in_history=True,
                  use_feedback_emb=True, head_masks=["all", "intra_dom", "cross_dom", "cross_fb"],
                  lambda_align=0.1, lambda_cont=0.1),
}


def transition_counts(sequences: Sequence[dict[str, np.ndarray]], n_items: int, scope: str = "mixed",
                      symmetric: bool = True) -> dict[tuple[str, str], sp.csr_matrix]:
    """Count matrices C_ab[i, j] = #(i immediately followed by j with feedback pair (a, b)) (brief §3.2).

    ``scope="mixed"`` counts consecutive pairs of the merged cross-domain history (C2DSR's ``adj``);
    ``scope="single"`` counts consecutive pairs within one domain, skipping the other domains' items
    (C2DSR's ``adj_single``). ``symmetric`` also adds C_ab[j, i].
    """
    rows: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in FEEDBACK_PAIRS}
    cols: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in FEEDBACK_PAIRS}
    for seq in sequences:
        items, positive, domains = (np.asarray(seq["items"]), np.asarray(seq["positive"], bool),
                                    np.asarray(seq["domains"]))
        if scope == "mixed":
            chains = [np.arange(len(items))]
        elif scope == "single":
            chains = [np.flatnonzero(domains == d) for d in np.unique(domains)]
        else:
            raise ConfigError(f"graph scope must be 'mixed' or 'single', got {scope!r}")
        for chain in chains:
            if len(chain) < 2:
                continue
            src, dst = chain[:-1], chain[1:]
            for a, b in FEEDBACK_PAIRS:
                keep = (positive[src] == (a == "pos")) & (positive[dst] == (b == "pos"))
                rows[(a, b)].append(items[src][keep])
                cols[(a, b)].append(items[dst][keep])
    out = {}
    for pair in FEEDBACK_PAIRS:
        r = np.concatenate(rows[pair]) if rows[pair] else np.zeros(0, np.int64)
        c = np.concatenate(cols[pair]) if cols[pair] else np.zeros(0, np.int64)
        matrix = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_items, n_items))
        out[pair] = (matrix + matrix.T).tocsr() if symmetric else matrix
    return out


def _to_sparse_tensor(matrix: sp.spmatrix) -> torch.Tensor:
    coo = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=False).coalesce()


def normalised_count_graphs(counts: dict[tuple[str, str], sp.csr_matrix]) -> list[torch.Tensor]:
    """D_abs⁻¹ C_ab for each feedback pair, D_abs = the raw transition degree over all pairs (brief §3.2).

    Normalising by the raw count (not by the weighted sum) keeps the degree positive when W has negative entries.
    """
    degree = np.asarray(sum(counts.values()).sum(axis=1)).ravel()
    inverse = sp.diags(1.0 / np.maximum(degree, 1.0))
    return [_to_sparse_tensor(inverse @ counts[pair]) for pair in FEEDBACK_PAIRS]


def transition_masks(item_seq: torch.Tensor, domain_seq: torch.Tensor, positive_seq: torch.Tensor,
                     names: Sequence[str]) -> torch.Tensor:
    """Boolean masks (B, len(names), L, L): M[b, h, i, j] = query i may attend key j under mask ``names[h]``.

    Every mask is causal and padding-aware (brief §3.3), and the diagonal is always on so no query row is empty.
    A name may combine types with '&', e.g. ``"cross_dom&cross_fb"``.
    """
    batch, length = item_seq.shape
    valid = item_seq > 0                                                          # (B, L)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=item_seq.device))
    base = causal.unsqueeze(0) & valid.unsqueeze(1)                               # (B, L, L), key j valid
    same_dom = domain_seq.unsqueeze(2) == domain_seq.unsqueeze(1)                 # (B, L, L): d_i == d_j
    pos_q, pos_k = positive_seq.unsqueeze(2), positive_seq.unsqueeze(1)
    same_fb = pos_q == pos_k
    atoms = {
        "all": base, "intra_dom": same_dom, "cross_dom": ~same_dom, "same_fb": same_fb, "cross_fb": ~same_fb,
        "pos_to_pos": pos_k & pos_q, "pos_to_neg": pos_k & ~pos_q,            # key j → query i
        "neg_to_pos": ~pos_k & pos_q, "neg_to_neg": ~pos_k & ~pos_q,
    }
    eye = torch.eye(length, dtype=torch.bool, device=item_seq.device).unsqueeze(0)
    masks = []
    for name in names:
        mask = base
        for atom in name.split("&"):
            if atom not in atoms:
                raise ConfigError(f"unknown head mask {atom!r}; choose from {list(MASK_TYPES)} (combine with '&')")
            mask = mask & atoms[atom]
        masks.append(mask | eye)
    return torch.stack(masks, dim=1)


def compact_positive_history(item_seq: torch.Tensor, keep: torch.Tensor, *others: torch.Tensor
                             ) -> tuple[torch.Tensor, ...]:
    """Left-align the kept positions of each row (drops negatives from histories); returns the new lengths last."""
    batch, length = item_seq.shape
    target = torch.where(keep, keep.long().cumsum(1) - 1, torch.full_like(item_seq, length))  # (B, L)
    out = []
    for seq in (item_seq, *others):
        buffer = torch.zeros(batch, length + 1, dtype=seq.dtype, device=seq.device)
        buffer.scatter_(1, target, torch.where(keep, seq, torch.zeros_like(seq)))
        out.append(buffer[:, :length])
    return (*out, keep.sum(1))


DEFAULTS_YAML = Path(__file__).with_name("transition2.yaml")


def _with_defaults(config) -> dict:
    """The model's settings: the RecBole config's values, falling back to transition2.yaml for missing keys."""
    defaults = yaml.safe_load(DEFAULTS_YAML.read_text())
    keys = set(defaults) | {"LIST_SUFFIX"}
    return {key: config[key] if config[key] is not None else defaults.get(key) for key in keys}


def last_window(item_seq: torch.Tensor, length: torch.Tensor, window: int, *others: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
    """Keep the last ``window`` positions of each left-aligned row (re-left-aligned); new lengths last."""
    if item_seq.size(1) <= window:
        return (item_seq, *others, length)
    start = (length - window).clamp(min=0).unsqueeze(1)                          # (B, 1)
    index = start + torch.arange(window, device=item_seq.device).unsqueeze(0)   # (B, W)
    new_length = length.clamp(max=window)
    inside = torch.arange(window, device=item_seq.device).unsqueeze(0) < new_length.unsqueeze(1)
    out = [torch.where(inside, seq.gather(1, index.clamp(max=seq.size(1) - 1)), torch.zeros_like(index))
           for seq in (item_seq, *others)]
    return (*out, new_length)


class Transition2(SequentialRecommender):
    """Transition²: domain- and feedback-transition-aware cross-domain sequential recommender (brief §3)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        c = _with_defaults(config)
        self.hidden_size = c["hidden_size"]
        self.n_layers, self.n_heads = c["n_layers"], c["n_heads"]
        self.use_graph = bool(c["use_graph"])
        self.edge_weighting = c["edge_weighting"]
        self.graph_scope = c["graph_scope"]
        self.gnn_layers = int(c["gnn_layers"])
        self.keep_negatives = bool(c["keep_negatives_in_history"])
        self.use_feedback_emb, self.use_domain_emb = bool(c["use_feedback_emb"]), bool(c["use_domain_emb"])
        self.ctmsa_mode, self.pred_head = c["ctmsa_mode"], c["pred_head"]
        self.fuse_graph_user = bool(c["fuse_graph_user"])
        self.lambda_align, self.lambda_cont = float(c["lambda_align"]), float(c["lambda_cont"])
        self.align_view, self.cont_form = c["align_view"], c["cont_form"]
        self.tau, self.cont_margin = float(c["tau"]), float(c["cont_margin"])
        self.position_order = c["position_order"] or "recency"   # see transition2.yaml
        self._check_switches()
        self.head_masks = self._expand_head_masks(list(c["head_masks"]))
        # The encoder sees the last `input_window` entries of *its own* input: the last W interactions when
        # negatives are kept, the last W positives when they are dropped (so positive-only arms are not starved
        # of history when the dataset lists are longer than W). 0 = the dataset's list length.
        self.window = int(c["input_window"] or self.max_seq_length)

        self.DOMAIN, self.FEEDBACK = c["DOMAIN_FIELD"] or "domain", c["FEEDBACK_FIELD"] or "feedback"
        self.DOMAIN_SEQ = self.DOMAIN + c["LIST_SUFFIX"]
        self.FEEDBACK_SEQ = self.FEEDBACK + c["LIST_SUFFIX"]
        tokens = dataset.field2token_id.get(self.FEEDBACK, {})
        if "pos" not in tokens:
            raise DataError("Transition2 needs a 'feedback' token field with 'pos'/'neg' values (use T2Dataset)")
        self.pos_id, self.neg_id = tokens["pos"], tokens.get("neg", -1)
        self.register_buffer("item_domain", torch.as_tensor(dataset.item_domain_ids()))  # (N,)
        self.n_domains = dataset.num(self.DOMAIN)

        d = self.hidden_size
        self.item_embedding = nn.Embedding(self.n_items, d, padding_idx=0)
        self.position_embedding = nn.Embedding(self.window, d)
        self.feedback_embedding = nn.Embedding(dataset.num(self.FEEDBACK), d, padding_idx=0)
        self.domain_embedding = nn.Embedding(self.n_domains, d, padding_idx=0)
        self.layer_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.graph_dropout = nn.Dropout(c["graph_dropout"])
        encoder_args = dict(n_layers=self.n_layers, n_heads=self.n_heads, hidden_size=d, inner_size=c["inner_size"],
                            hidden_dropout_prob=c["hidden_dropout_prob"], attn_dropout_prob=c["attn_dropout_prob"],
                            hidden_act=c["hidden_act"], layer_norm_eps=c["layer_norm_eps"])
        if self.ctmsa_mode == "split_heads":
            self.encoder = TransformerEncoder(**encoder_args)
        else:  # per_mask_fusion: one full-head encoder per distinct mask, fused by a linear layer (brief §3.3)
            self.fusion_masks = list(dict.fromkeys(self.head_masks))
            self.encoders = nn.ModuleList(TransformerEncoder(**encoder_args) for _ in self.fusion_masks)
            self.fusion = nn.Linear(d * len(self.fusion_masks), d)
        if self.pred_head == "per_domain_linear":  # C2DSR's lin_X/lin_Y as one masked linear layer (brief §3.4)
            self.output_layer = nn.Linear(d, self.n_items)
        self._init_graph(dataset, c)
        self.apply(self._init_weights)

    # ----- construction -------------------------------------------------------------------------------------
    def _check_switches(self) -> None:
        choices = {"edge_weighting": ("uniform", "fixed_2x2", "learned_2x2"),
                   "graph_scope": ("mixed", "mixed+single"), "ctmsa_mode": ("split_heads", "per_mask_fusion"),
                   "pred_head": ("tied_masked", "per_domain_linear"), "align_view": ("domain", "graph_sequence"),
                   "cont_form": ("infonce", "triplet"), "position_order": ("forward", "recency")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"Transition2 {key}={getattr(self, key)!r}; choose one of {list(allowed)}")

    def _expand_head_masks(self, names: list[str]) -> list[str]:
        """One mask per head; a shorter list is repeated in contiguous head groups (H must be a multiple)."""
        if not names or self.n_heads % len(names):
            raise ConfigError(f"head_masks has {len(names)} entries but n_heads={self.n_heads}; give one mask per "
                              "head or a list whose length divides n_heads")
        return [name for name in names for _ in range(self.n_heads // len(names))]

    def _init_graph(self, dataset, c) -> None:
        init = torch.tensor([float(x) for x in c["edge_weight_init"]])
        if init.numel() != 4:
            raise ConfigError("edge_weight_init needs 4 numbers: w_{++}, w_{+-}, w_{-+}, w_{--}")
        if self.edge_weighting == "uniform":
            init = torch.ones(4)
        if self.edge_weighting == "learned_2x2":
            self.edge_weights = nn.Parameter(init)
        else:
            self.register_buffer("edge_weights", init)
        self.graphs: list[list[torch.Tensor]] = []
        if not self.use_graph:
            return
        sequences = getattr(dataset, "train_sequences", None)
        if sequences is None:
            raise DataError("the transition graph needs the training histories of a T2Dataset (train_sequences)")
        if not self.keep_negatives:  # the classic CDSR input: the graph sees the same positive-only histories
            sequences = [{k: v[s["positive"]] for k, v in s.items()} for s in sequences]
        scopes = ["mixed"] + (["single"] if self.graph_scope == "mixed+single" else [])
        for scope_index, scope in enumerate(scopes):
            mats = normalised_count_graphs(transition_counts(sequences, self.n_items, scope, bool(c["graph_symmetric"])))
            for k, mat in enumerate(mats):  # buffers move with .to(device) and are not trained
                self.register_buffer(f"graph_{scope_index}_{k}", mat, persistent=False)
            self.graphs.append([f"graph_{scope_index}_{k}" for k in range(len(mats))])

    def _init_weights(self, module: nn.Module) -> None:
        """SASRec's initialisation (normal(0, 0.02) for linear and embedding weights)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    # ----- graph encoder ------------------------------------------------------------------------------------
    def graph_item_embeddings(self) -> torch.Tensor:
        """Ĥ (N, d): mean over K+1 layers of H ← Σ_ab W_ab D⁻¹C_ab H, averaged over graph scopes (brief §3.2)."""
        base = self.item_embedding.weight
        outputs = []
        for names in self.graphs:
            mats = [getattr(self, name) for name in names]
            layers = [base]
            hidden = base
            for _ in range(self.gnn_layers):
                hidden = self.graph_dropout(hidden)
                hidden = sum(self.edge_weights[k] * torch.sparse.mm(mats[k], hidden) for k in range(4))
                layers.append(hidden)
            outputs.append(torch.stack(layers).mean(0))
        return torch.stack(outputs).mean(0)

    def learned_edge_weights(self) -> dict[str, float]:
        """The current 2×2 feedback edge weights W as {"++": w, "+-": w, "-+": w, "--": w}."""
        return {k: float(v) for k, v in zip(("++", "+-", "-+", "--"), self.edge_weights.detach().cpu())}

    # ----- sequence encoder ---------------------------------------------------------------------------------
    def _inputs(self, interaction) -> tuple[torch.Tensor, ...]:
        item_seq, length = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        domain_seq, feedback_seq = interaction[self.DOMAIN_SEQ], interaction[self.FEEDBACK_SEQ]
        if not self.keep_negatives:
            keep = (item_seq > 0) & (feedback_seq != self.neg_id)
            item_seq, domain_seq, feedback_seq, length = compact_positive_history(item_seq, keep, domain_seq,
                                                                                   feedback_seq)
        item_seq, domain_seq, feedback_seq, length = last_window(item_seq, length, self.window, domain_seq,
                                                                 feedback_seq)
        return item_seq, domain_seq, feedback_seq, length

    def encode(self, interaction) -> dict[str, torch.Tensor]:
        """Run TGE + CTMSA; returns the user state and the per-position pieces the losses need."""
        item_seq, domain_seq, feedback_seq, length = self._inputs(interaction)      # (B, L) each, (B,)
        graph = self.graph_item_embeddings() if self.use_graph else None          # (N, d)
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0).expand_as(item_seq)
        if self.position_order == "recency":  # index 0 = the latest interaction (padding clamps to 0, never read)
            positions = (length.unsqueeze(1) - 1 - positions).clamp(min=0)
        x = self.item_embedding(item_seq) + self.position_embedding(positions)   # (B, L, d)
        historical = graph[item_seq] if graph is not None else None               # ĥ_t (B, L, d)
        if historical is not None:
            x = x + historical
        if self.use_feedback_emb:
            x = x + self.feedback_embedding(feedback_seq)
        if self.use_domain_emb:
            x = x + self.domain_embedding(domain_seq)
        x = self.dropout(self.layer_norm(x))
        positive = feedback_seq == self.pos_id
        masks = transition_masks(item_seq, domain_seq, positive, self.head_masks if self.ctmsa_mode == "split_heads"
                                 else self.fusion_masks)                          # (B, H or M, L, L)
        additive = torch.where(masks, 0.0, -10000.0)
        if self.ctmsa_mode == "split_heads":
            hidden = self.encoder(x, additive, output_all_encoded_layers=False)[-1]    # (B, L, d)
        else:
            per_mask = [enc(x, additive[:, m:m + 1], output_all_encoded_layers=False)[-1]
                        for m, enc in enumerate(self.encoders)]
            hidden = self.fusion(torch.cat(per_mask, dim=-1))                    # (B, L, M·d) -> (B, L, d)
        user = self.gather_indexes(hidden, (length - 1).clamp(min=0))            # (B, d)
        valid = (item_seq > 0).float().unsqueeze(-1)                              # (B, L, 1)
        if self.fuse_graph_user and historical is not None:
            user = user + (historical * valid).sum(1) / valid.sum(1).clamp(min=1)
        return {"user": user, "hidden": hidden, "valid": valid.squeeze(-1), "positive": positive,
                "domain_seq": domain_seq, "historical": historical, "graph": graph}

    # ----- prediction ---------------------------------------------------------------------------------------
    def _all_scores(self, state: dict[str, torch.Tensor], target_domain: torch.Tensor) -> torch.Tensor:
        """(B, N) scores with foreign-domain items and padding at −1e9 (domain-restricted ranking, brief §3.4)."""
        user = state["user"]
        if self.pred_head == "per_domain_linear":
            scores = self.output_layer(user)
        else:
            table = self.item_embedding.weight
            if state["graph"] is not None:
                table = table + state["graph"]                                    # s(v) = <u, Ĥ[v] + E[v]>
            scores = user @ table.t()                                             # (B, N)
        allowed = self.item_domain.unsqueeze(0) == target_domain.unsqueeze(1)     # (B, N)
        allowed[:, 0] = False
        return scores.masked_fill(~allowed, NEG_FILL)

    def calculate_loss(self, interaction) -> torch.Tensor:
        state = self.encode(interaction)
        scores = self._all_scores(state, interaction[self.DOMAIN])
        loss = F.cross_entropy(scores, interaction[self.POS_ITEM_ID])            # CE within the target domain
        if self.lambda_align > 0:
            loss = loss + self.lambda_align * self.align_loss(state, interaction[self.DOMAIN])
        if self.lambda_cont > 0:
            loss = loss + self.lambda_cont * self.feedback_contrast_loss(state)
        return loss

    def predict(self, interaction) -> torch.Tensor:
        scores = self._all_scores(self.encode(interaction), interaction[self.DOMAIN])
        return scores.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self._all_scores(self.encode(interaction), interaction[self.DOMAIN])

    # ----- contrastive terms (v2) ---------------------------------------------------------------------------
    def _info_nce(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        if left.size(0) < 2:
            return left.sum() * 0.0
        logits = F.normalize(left, dim=-1) @ F.normalize(right, dim=-1).t() / self.tau   # (B', B')
        return F.cross_entropy(logits, torch.arange(left.size(0), device=left.device))

    def align_loss(self, state: dict[str, torch.Tensor], target_domain: torch.Tensor) -> torch.Tensor:
        """L_align [R, brief §3.5.2]: in-batch InfoNCE between two views of the same history.

        ``domain``: pooled states over target-domain positions vs over the other domains' positions;
        ``graph_sequence``: mean historical graph embedding g_u vs the sequence state u. Rows of the same user
        in one batch act as negatives for each other (a known InfoNCE false-negative effect).
        """
        valid = state["valid"]
        if self.align_view == "graph_sequence":
            if state["historical"] is None:
                return state["user"].sum() * 0.0
            g = (state["historical"] * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
            return self._info_nce(g, state["user"])
        in_dom = (state["domain_seq"] == target_domain.unsqueeze(1)).float() * valid     # (B, L)
        out_dom = (1 - (state["domain_seq"] == target_domain.unsqueeze(1)).float()) * valid
        both = (in_dom.sum(1) > 0) & (out_dom.sum(1) > 0)
        pool_in = (state["hidden"] * in_dom.unsqueeze(-1)).sum(1) / in_dom.sum(1, keepdim=True).clamp(min=1)
        pool_out = (state["hidden"] * out_dom.unsqueeze(-1)).sum(1) / out_dom.sum(1, keepdim=True).clamp(min=1)
        return self._info_nce(pool_in[both], pool_out[both])

    def feedback_contrast_loss(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """L_cont [R, brief §3.5.3]: the user state should be closer to its liked than to its disliked positions."""
        valid, positive = state["valid"], state["positive"].float()
        pos_w, neg_w = positive * valid, (1 - positive) * valid                          # (B, L)
        usable = (pos_w.sum(1) > 0) & (neg_w.sum(1) > 0)
        if not usable.any():
            return state["user"].sum() * 0.0
        h = state["hidden"]
        h_pos = (h * pos_w.unsqueeze(-1)).sum(1) / pos_w.sum(1, keepdim=True).clamp(min=1)
        h_neg = (h * neg_w.unsqueeze(-1)).sum(1) / neg_w.sum(1, keepdim=True).clamp(min=1)
        user = F.normalize(state["user"][usable], dim=-1)
        sim_pos = (user * F.normalize(h_pos[usable], dim=-1)).sum(-1)
        sim_neg = (user * F.normalize(h_neg[usable], dim=-1)).sum(-1)
        if self.cont_form == "triplet":
            return F.relu(self.cont_margin - sim_pos + sim_neg).mean()
        return F.softplus((sim_neg - sim_pos) / self.tau).mean()   # = −log e^{s+/τ} / (e^{s+/τ} + e^{s−/τ})
