"""Knowledge-enhanced negative sampling (survey §3.5) from RecBole atomic ``.kg``/``.link`` files.

The KG is read as an item–attribute bipartite graph: item i (via ``.link`` item -> entity e_i) is joined to
every entity n with a triple (e_i, r, n) or (n, r, e_i). Two hops item -> attribute -> item reach items that
share a KG fact with the positive ("hard by knowledge").

- ``kg_neighbour`` (baseline): one uniform two-hop KG neighbour of the positive; uniform fallback when the
  positive has no KG neighbour or the neighbour is a training positive. Cost O(1).
- ``kgpolicy`` (KGPolicy-lite, Wang et al., WWW'20; brief §3.5): a policy over the KG's nodes (items and
  attribute entities) walks ``k_step`` times from the positive. Every epoch each node gets an action set of
  ``edge_threshold`` sampled KG neighbours (padded with random items) + ``num_random`` random items, and
  π(n | u, a) = softmax_n <g_u, LeakyReLU(g_a ⊙ g_n)>. One k-step, exactly as in the official
  ``KGPolicy.forward``: hop 1 takes the *argmax* action -> node e; hop 2 takes the *top-``num_sample``* actions
  of e; ids that are not items are replaced by random items; *prune*: the recommender scores those
  ``num_sample`` items and keeps its argmax s(u,j), which becomes the next anchor — so pruning happens at every
  k-step, and the negative used for training is the last step's. Selection is greedy (argmax/top-k, no
  sampling) as in the official code; exploration comes from the action sets re-drawn every epoch. Reward per
  step r_t = s(u,j_t) + <e_i, e_{j_t}> (recommender embeddings, i = the original positive), baseline = the
  previous epoch's mean reward, REINFORCE loss -Σ_t (r_t - b)(log π(e_t) + log π(j_t)) (the official code
  computes a discounted return but uses the undiscounted per-step reward; so do we).
  Defaults are the official ones (brief §4): k_step 2, edge_threshold 64 (+64 random), num_sample 32,
  policy lr 1e-4, embedding 64 (the GraphSAGE output width).
  Node representations g_n come from the official 2-layer GraphSAGE (mean aggregator, in [d, d/2] -> out
  [d/2, d], L2-normalised) over each node's sampled KG neighbours padded with self-loops, redrawn with the
  action sets every epoch (``encoder="embedding"`` scores raw node embeddings instead, the earlier lite form).
  Deviations (documented choices): GraphSAGE runs over the item–attribute KG (the official collaborative KG
  also holds user nodes; our users keep their own table), with no MF/KG pre-training (pre-trained weights
  ship in a release zip that is not available offline); with ``filter_positives=True`` (default) training positives among the
  ``num_sample`` candidates are replaced by uniform non-positive items *before* pruning — the official code
  swaps a positive final negative for a uniform one *after* pruning (``filter_positives=False``), which on
  dense data (ml-100k: ~86 training items per user) makes the recommender's argmax land on a training positive
  most of the time, so KGPolicy would mostly train on uniform negatives.
  Cost per positive: k_step × 2 × (edge_threshold + num_random) policy scores (d-dim) + k_step × num_sample
  recommender scores, and the same again with gradient for the REINFORCE step (``policy_batch`` walks, default
  all); per epoch O(#nodes × (edge_threshold + num_random)) to redraw the action sets. At the official defaults
  that is ~2 s per batch of 2048 on one CPU core (ml-100k: ~80 s/epoch), which is why the benchmark shrinks it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recsys_kit.negsampling import backbone
from recsys_kit.negsampling.base import (
    Negatives,
    NegativeSampler,
    SamplingContext,
    register,
    uniform_candidates,
)
from shared.errors import ConfigError, DataError


@dataclasses.dataclass
class KnowledgeGraph:
    """Item–attribute CSR in both directions: ``item_offsets/item_attrs`` and ``attr_offsets/attr_items``."""

    n_items: int
    n_attributes: int
    item_offsets: torch.Tensor
    item_attrs: torch.Tensor
    attr_offsets: torch.Tensor
    attr_items: torch.Tensor

    @classmethod
    def from_pairs(cls, items: np.ndarray, attrs: np.ndarray, n_items: int, n_attributes: int) -> KnowledgeGraph:
        """Build from (item id, attribute id) pairs."""
        pairs = np.unique(np.stack([items, attrs], 1), axis=0) if len(items) else np.zeros((0, 2), dtype=np.int64)

        def csr(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
            order = np.lexsort((cols, rows))
            counts = np.bincount(rows, minlength=n_rows)
            offsets = np.concatenate([[0], np.cumsum(counts)])
            return torch.from_numpy(offsets).long(), torch.from_numpy(cols[order]).long()

        item_offsets, item_attrs = csr(pairs[:, 0], pairs[:, 1], n_items)
        attr_offsets, attr_items = csr(pairs[:, 1], pairs[:, 0], n_attributes)
        return cls(n_items, n_attributes, item_offsets, item_attrs, attr_offsets, attr_items)

    @staticmethod
    def _pick(offsets: torch.Tensor, values: torch.Tensor, rows: torch.Tensor,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        degree = offsets[rows + 1] - offsets[rows]
        has = degree > 0
        choice = (torch.rand(rows.shape, generator=generator) * degree.clamp(min=1)).long()
        index = (offsets[rows] + choice).clamp(max=max(len(values) - 1, 0))
        picked = values[index] if len(values) else torch.zeros_like(rows)
        return torch.where(has, picked, torch.zeros_like(rows)), has

    def two_hop(self, items: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One random item -> attribute -> item walk per entry of ``items`` (any shape); ``found`` mask."""
        attrs, has_attr = self._pick(self.item_offsets, self.item_attrs, items, generator)
        reached, has_item = self._pick(self.attr_offsets, self.attr_items, attrs, generator)
        return reached, has_attr & has_item


def load_knowledge_graph(dataset_dir: str | Path, dataset_name: str, item_token_to_id: dict[str, int],
                         n_items: int) -> KnowledgeGraph:
    """Read ``<name>.kg`` and ``<name>.link`` (RecBole atomic files) into a :class:`KnowledgeGraph`."""
    dataset_dir = Path(dataset_dir)
    kg_path, link_path = dataset_dir / f"{dataset_name}.kg", dataset_dir / f"{dataset_name}.link"
    for path in (kg_path, link_path):
        if not path.is_file():
            raise DataError(f"KG sampler needs {path} (RecBole atomic .kg with head_id/relation_id/tail_id and "
                            f".link with item_id/entity_id); ml-100k from RecBole ships both")
    kg = pd.read_csv(kg_path, sep="\t", dtype=str)
    link = pd.read_csv(link_path, sep="\t", dtype=str)
    kg.columns = [c.split(":")[0] for c in kg.columns]
    link.columns = [c.split(":")[0] for c in link.columns]
    if not {"head_id", "tail_id"} <= set(kg.columns) or not {"item_id", "entity_id"} <= set(link.columns):
        raise DataError(f"{kg_path.name}/{link_path.name}: expected columns head_id,tail_id and item_id,entity_id")
    link = link[link["item_id"].isin(item_token_to_id.keys())]
    entity_to_item = dict(zip(link["entity_id"], link["item_id"].map(item_token_to_id)))
    edges = pd.concat([kg[["head_id", "tail_id"]].set_axis(["src", "dst"], axis=1),
                       kg[["tail_id", "head_id"]].set_axis(["src", "dst"], axis=1)])
    edges = edges[edges["src"].isin(entity_to_item.keys())]
    attr_codes, attr_tokens = pd.factorize(edges["dst"])
    items = edges["src"].map(entity_to_item).to_numpy(dtype=np.int64)
    if len(items) == 0:
        raise DataError(f"{kg_path.name} has no triple touching a linked item of this dataset")
    return KnowledgeGraph.from_pairs(items, attr_codes.astype(np.int64), n_items, len(attr_tokens))


def _require_kg(ctx: SamplingContext, name: str) -> KnowledgeGraph:
    if ctx.kg is None:
        raise DataError(f"sampler {name!r} needs a knowledge graph: the dataset folder must hold .kg and .link "
                        f"files (NegSamplingTrainer loads them when the sampler is knowledge-based)")
    return ctx.kg


@register
class KGNeighbourSampler(NegativeSampler):
    """A random two-hop KG neighbour of the positive (item -> shared attribute -> item)."""

    name = "kg_neighbour"
    family = "knowledge"
    cost = "O(1) per negative"

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        _require_kg(ctx, self.name)
        return self

    def sample(self, model, users, pos_items):
        ctx = self._require_ctx()
        kg = _require_kg(ctx, self.name)
        items, found = kg.two_hop(pos_items, self.generator)
        bad = ~found | (items == 0) | ctx.positives.contains(users, items)
        self.fallback_share = float(bad.float().mean())
        if bool(bad.any()):
            items[bad] = uniform_candidates(ctx, users[bad], 1, self.generator)[:, 0]
        return Negatives(items)


class GraphSAGE(torch.nn.Module):
    """The official KGPolicy node encoder: 2 mean-aggregator SAGE layers (in [d, d/2] -> out [d/2, d]).

    ``h'_n = W_self h_n + W_neigh mean_{m in N(n)} h_m`` (torch_geometric's ``SAGEConv``), LeakyReLU between the
    layers, output L2-normalised. ``N(n)`` = the node's sampled KG neighbours padded with self-loops (official
    ``build_sampler_graph``), redrawn with the action sets every epoch.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        hidden = max(1, dim // 2)
        self.layers = torch.nn.ModuleList([torch.nn.ModuleDict({"self": torch.nn.Linear(d_in, d_out),
                                                                "neigh": torch.nn.Linear(d_in, d_out, bias=False)})
                                           for d_in, d_out in ((dim, hidden), (hidden, dim))])

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """Node representations ``[n_nodes, d]`` from features ``x [n_nodes, d]``, neighbours ``[n_nodes, k]``."""
        for index, layer in enumerate(self.layers):
            x = layer["self"](x) + layer["neigh"](x[neighbours].mean(1))
            if index < len(self.layers) - 1:
                x = F.leaky_relu(x)
        return F.normalize(x, dim=1)


class _Policy(torch.nn.Module):
    """KGPolicy scorer over KG nodes: π(n | u, a) ∝ exp <g_u, LeakyReLU(g_a ⊙ g_n)>.

    ``encoder="graphsage"`` (default, the official design): g_n = GraphSAGE over the KG's node embeddings;
    ``"embedding"``: g_n = the node embedding itself (the earlier KGPolicy-lite). Users keep their own table
    (the official graph also holds user nodes; ours is the item–attribute KG only).
    """

    def __init__(self, n_users: int, n_nodes: int, dim: int, encoder: str = "graphsage") -> None:
        super().__init__()
        self.users = torch.nn.Embedding(n_users, dim)
        self.nodes = torch.nn.Embedding(n_nodes, dim)
        torch.nn.init.xavier_uniform_(self.users.weight)  # the official entity table uses xavier_uniform
        torch.nn.init.xavier_uniform_(self.nodes.weight)
        self.sage = GraphSAGE(dim) if encoder == "graphsage" else None
        self.neighbours: torch.Tensor | None = None
        self._cache: torch.Tensor | None = None

    def set_graph(self, neighbours: torch.Tensor) -> None:
        """The GraphSAGE neighbour lists ``[n_nodes, k]`` (redrawn every epoch)."""
        self.neighbours = neighbours
        self._cache = None

    def node_table(self) -> torch.Tensor:
        """g for every node (GraphSAGE output, or the raw embeddings)."""
        if self.sage is None:
            return self.nodes.weight
        if self.neighbours is None:
            raise ConfigError("KGPolicy's GraphSAGE needs its neighbour lists: call set_graph first")
        return self.sage(self.nodes.weight, self.neighbours)

    def refresh(self) -> None:
        """Recompute the no-grad node table used for sampling (after each policy update)."""
        with torch.no_grad():
            self._cache = self.node_table()

    def logits(self, users: torch.Tensor, anchors: torch.Tensor, actions: torch.Tensor,
               table: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, A]`` logits of actions ``[B, A]`` (node ids) from anchor nodes ``[B]``."""
        if table is None:
            if torch.is_grad_enabled():
                table = self.node_table()
            else:
                if self._cache is None:
                    self.refresh()
                table = self._cache
        mixed = table[anchors].unsqueeze(1) * table[actions]  # [B, A, d]
        mixed = F.leaky_relu_(mixed) if not torch.is_grad_enabled() else F.leaky_relu(mixed)  # in place when sampling
        return torch.einsum("bd,bad->ba", self.users(users), mixed)


def gcn_neighbours(kg: KnowledgeGraph, actions: torch.Tensor, edge_threshold: int) -> torch.Tensor:
    """The first ``edge_threshold`` action columns (sampled KG neighbours) with padding slots -> self-loops."""
    degree = torch.cat([kg.item_offsets[1:] - kg.item_offsets[:-1], kg.attr_offsets[1:] - kg.attr_offsets[:-1]])
    n_nodes = len(degree)
    slots = torch.arange(edge_threshold).unsqueeze(0)
    own = torch.arange(n_nodes).unsqueeze(1).expand(-1, edge_threshold)
    return torch.where(slots < degree.clamp(max=edge_threshold).unsqueeze(1), actions[:, :edge_threshold], own)


def action_table(kg: KnowledgeGraph, edge_threshold: int, num_random: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n_items + n_attributes, edge_threshold + num_random]`` action sets over KG nodes (official
    ``build_sampler_graph``): up to ``edge_threshold`` neighbours drawn without replacement, padded with random
    items, then ``num_random`` random items. Node ids: items ``[0, n_items)``, attribute a -> ``n_items + a``.
    """
    n_nodes = kg.n_items + kg.n_attributes
    # neighbour CSR over all nodes: items -> their attributes, attributes -> their items
    degree = torch.cat([kg.item_offsets[1:] - kg.item_offsets[:-1], kg.attr_offsets[1:] - kg.attr_offsets[:-1]])
    values = torch.cat([kg.item_attrs + kg.n_items, kg.attr_items])
    rows = torch.repeat_interleave(torch.arange(n_nodes), degree)
    # shuffle within rows: sort by (row, random key), then the first edge_threshold of each row are a sample
    keys = torch.rand(len(values), generator=generator)
    order = torch.argsort(rows.double() + keys.double())
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(degree, 0)])
    within = torch.arange(len(values)) - offsets[rows]
    keep = within < edge_threshold
    table = torch.randint(1, kg.n_items, (n_nodes, edge_threshold + num_random), generator=generator)  # random items
    table[rows[keep], within[keep]] = values[order][keep]
    return table


@register
class KGPolicySampler(NegativeSampler):
    """KGPolicy-lite: a REINFORCE policy walking the KG from the positive, pruned by the recommender each step."""

    name = "kgpolicy"
    family = "knowledge"
    cost = ("k_step x 2 x (edge_threshold + num_random) policy scores + k_step x num_sample recommender scores "
            "per positive; action sets redrawn per epoch")
    needs_model = True

    def __init__(self, k_step: int = 2, edge_threshold: int = 64, num_random: int = 64, num_sample: int = 32,
                 dim: int = 64, lr: float = 1e-4, filter_positives: bool = True, policy_batch: int | None = None,
                 encoder: str = "graphsage", seed: int | None = None) -> None:
        super().__init__(seed)
        if encoder not in ("graphsage", "embedding"):
            raise ConfigError(f"kgpolicy encoder must be 'graphsage' (official) or 'embedding', got {encoder!r}")
        self.encoder = encoder
        if min(k_step, edge_threshold, num_sample, dim) < 1 or num_random < 0:
            raise ConfigError("kgpolicy needs k_step, edge_threshold, num_sample, dim >= 1 and num_random >= 0")
        if num_sample > edge_threshold + num_random:
            raise ConfigError(f"num_sample={num_sample} exceeds the action set size edge_threshold + num_random = "
                              f"{edge_threshold + num_random}")
        self.k_step, self.edge_threshold, self.num_random = int(k_step), int(edge_threshold), int(num_random)
        self.num_sample, self.dim, self.lr = int(num_sample), int(dim), float(lr)
        self.filter_positives = bool(filter_positives)
        # REINFORCE on a random subset of the batch's walks (None: all, as the official code); an unbiased,
        # noisier policy gradient that keeps the [B, A, d] backward affordable on CPU (benchmark override)
        self.policy_batch = None if policy_batch is None else int(policy_batch)
        self.num_candidates = self.num_sample

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        kg = _require_kg(ctx, self.name)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=self.generator)))
            self.policy = _Policy(ctx.n_users, kg.n_items + kg.n_attributes, self.dim, self.encoder)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.baseline, self._epoch_rewards, self._pending = 0.0, [], None
        self._new_actions()
        self.fallback_share = 0.0
        return self

    def on_epoch_start(self, model, epoch):
        super().on_epoch_start(model, epoch)
        if self._epoch_rewards:
            self.baseline = float(np.mean(self._epoch_rewards))
        self._epoch_rewards = []
        if epoch > 0:  # fresh neighbour samples and random items every epoch (official adj_epoch = 1)
            self._new_actions()

    def _new_actions(self) -> None:
        """Redraw the action sets and the GraphSAGE neighbour lists drawn with them."""
        kg = self._require_ctx().kg
        self.actions = action_table(kg, self.edge_threshold, self.num_random, self.generator)
        self.policy.set_graph(gcn_neighbours(kg, self.actions, self.edge_threshold))

    def _replace(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Non-item ids -> random items (official ``filter_entity``); training positives -> uniform negatives."""
        ctx = self._require_ctx()
        not_item = (items <= 0) | (items >= ctx.n_items)
        items = torch.where(not_item, torch.randint(1, ctx.n_items, items.shape, generator=self.generator), items)
        if self.filter_positives:
            users_2d = users.unsqueeze(1).expand_as(items)
            bad = ctx.positives.contains(users_2d, items)
            if bool(bad.any()):
                items = items.clone()
                items[bad] = uniform_candidates(ctx, users_2d[bad], 1, self.generator)[:, 0]
        return items

    def sample(self, model, users, pos_items):
        ctx = self._require_ctx()
        anchors, steps, negatives = pos_items, [], []
        with torch.no_grad():
            for _ in range(self.k_step):
                acts1 = self.actions[anchors]  # [B, A]
                hop1 = self.policy.logits(users, anchors, acts1).argmax(1)  # greedy, as the official step 1
                entity = acts1.gather(1, hop1.unsqueeze(1))[:, 0]  # [B] node ids (item or attribute)
                acts2 = self.actions[entity]  # [B, A]
                top = self.policy.logits(users, entity, acts2).topk(self.num_sample, dim=1).indices  # [B, S]
                cand = self._replace(users, acts2.gather(1, top))  # [B, S] item ids
                pick = backbone.score_candidates(model, users, cand).argmax(1)  # prune: recommender's hardest
                chosen = cand.gather(1, pick.unsqueeze(1))[:, 0]
                steps.append((anchors, acts1, hop1, entity, acts2, top.gather(1, pick.unsqueeze(1))[:, 0], cand))
                negatives.append(chosen)
                anchors = chosen
        items = negatives[-1].clone()
        bad = ctx.positives.contains(users, items)
        self.fallback_share = float(bad.float().mean())
        if bool(bad.any()):  # swapped for uniform negatives, as the official code does
            items[bad] = uniform_candidates(ctx, users[bad], 1, self.generator)[:, 0]
        self._pending = (users, pos_items, negatives, steps)
        self.last_walk = steps  # per k-step (anchor, actions, hop-1 pick, entity, actions, hop-2 pick, pruned pool)
        return Negatives(items)

    def after_step(self, model, interaction):
        if self._pending is None:
            return
        users, pos, negatives, steps = self._pending
        self._pending = None
        with torch.no_grad():
            user_e, item_e = backbone.final_embeddings(model)
            user_e, item_e = user_e.cpu(), item_e.cpu()
            rewards = torch.stack([(user_e[users] * item_e[neg]).sum(-1) + (item_e[pos] * item_e[neg]).sum(-1)
                                   for neg in negatives])  # [k_step, B]
        self._epoch_rewards.append(float(rewards.mean()))
        if self.policy_batch is not None and self.policy_batch < len(users):
            keep = torch.randperm(len(users), generator=self.generator)[: self.policy_batch]
            users, rewards = users[keep], rewards[:, keep]
            steps = [tuple(t[keep] for t in step) for step in steps]
        log_prob = []
        table = self.policy.node_table()  # one GraphSAGE pass with gradient for the whole REINFORCE step
        for anchors, acts1, hop1, entity, acts2, hop2, _ in steps:
            lp1 = torch.log_softmax(self.policy.logits(users, anchors, acts1, table), 1).gather(1, hop1.unsqueeze(1))[:, 0]
            lp2 = torch.log_softmax(self.policy.logits(users, entity, acts2, table), 1).gather(1, hop2.unsqueeze(1))[:, 0]
            log_prob.append(lp1 + lp2)
        loss = -((rewards - self.baseline) * torch.stack(log_prob)).sum(0).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.policy.refresh()
