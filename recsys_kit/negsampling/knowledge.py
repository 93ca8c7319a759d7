"""Knowledge-enhanced negative sampling (survey §3.5) from RecBole atomic ``.kg``/``.link`` files.

The KG is read as an item–attribute bipartite graph: item i (via ``.link`` item -> entity e_i) is joined to
every entity n with a triple (e_i, r, n) or (n, r, e_i). Two hops item -> attribute -> item reach items that
share a KG fact with the positive ("hard by knowledge").

- ``kg_neighbour`` (baseline): one uniform two-hop KG neighbour of the positive; uniform fallback when the
  positive has no KG neighbour or the neighbour is a training positive. Cost O(1).
- ``kgpolicy`` (KGPolicy-lite, Wang et al., WWW'20): a policy walks ``k_step`` times from the positive; each
  step scores an action set of ``num_sample`` two-hop KG items + ``num_random`` random items with
  π(n) = softmax_n <g_u, LeakyReLU(g_a ⊙ g_n)> and samples one; the last step *prunes*: among its top
  ``prune_size`` actions by π, keep the recommender's argmax s(u,j). Reward r = s(u,j) + <e_i, e_j> (recommender
  embeddings), baseline = last epoch's mean reward, REINFORCE loss -(r - b) Σ_t log π(a_t). Left out (documented):
  the official GraphSAGE encoder over the KG (plain embeddings here) and MF pre-training.
  Cost per positive: k_step × (num_sample + num_random) policy scores + prune_size recommender scores.
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
from shared.errors import DataError


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


class _Policy(torch.nn.Module):
    """KGPolicy-lite scorer: π(n | u, a) ∝ exp <g_u, LeakyReLU(g_a ⊙ g_n)>."""

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.users = torch.nn.Embedding(n_users, dim)
        self.items = torch.nn.Embedding(n_items, dim)
        torch.nn.init.normal_(self.users.weight, std=0.1)
        torch.nn.init.normal_(self.items.weight, std=0.1)

    def logits(self, users: torch.Tensor, anchors: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B, A]`` logits of actions ``[B, A]`` from anchors ``[B]``."""
        mixed = F.leaky_relu(self.items(anchors).unsqueeze(1) * self.items(actions))  # [B, A, d]
        return torch.einsum("bd,bad->ba", self.users(users), mixed)


@register
class KGPolicySampler(NegativeSampler):
    """KGPolicy-lite: a REINFORCE policy walking the KG from the positive, with recommender pruning."""

    name = "kgpolicy"
    family = "knowledge"
    cost = "k_step x (num_sample + num_random) policy scores + prune_size recommender scores"
    needs_model = True

    def __init__(self, k_step: int = 2, num_sample: int = 32, num_random: int = 32, prune_size: int = 8,
                 dim: int = 32, lr: float = 1e-3, seed: int | None = None) -> None:
        super().__init__(seed)
        self.k_step, self.num_sample, self.num_random = int(k_step), int(num_sample), int(num_random)
        self.prune_size, self.dim, self.lr = int(prune_size), int(dim), float(lr)
        self.num_candidates = self.num_sample + self.num_random

    def bind(self, ctx: SamplingContext):
        super().bind(ctx)
        _require_kg(ctx, self.name)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=self.generator)))
            self.policy = _Policy(ctx.n_users, ctx.n_items, self.dim)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.baseline, self._epoch_rewards, self._pending = 0.0, [], None
        return self

    def on_epoch_start(self, model, epoch):
        super().on_epoch_start(model, epoch)
        if self._epoch_rewards:
            self.baseline = float(np.mean(self._epoch_rewards))
        self._epoch_rewards = []

    def actions(self, users: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """``[B, A]`` action set: KG two-hop items of the anchor (random items where none) + random items."""
        ctx = self._require_ctx()
        kg = ctx.kg
        hop_items, found = kg.two_hop(anchors.unsqueeze(1).expand(-1, self.num_sample).contiguous(), self.generator)
        filler = torch.randint(1, ctx.n_items, hop_items.shape, generator=self.generator)
        hop_items = torch.where(found & (hop_items > 0), hop_items, filler)
        randoms = torch.randint(1, ctx.n_items, (len(users), self.num_random), generator=self.generator)
        return torch.cat([hop_items, randoms], 1)

    def sample(self, model, users, pos_items):
        ctx = self._require_ctx()
        anchors, chosen_steps, action_steps = pos_items, [], []
        with torch.no_grad():
            for step in range(self.k_step):
                acts = self.actions(users, anchors)
                logits = self.policy.logits(users, anchors, acts)
                logits = logits.masked_fill(ctx.positives.contains(users.unsqueeze(1), acts), float("-inf"))
                all_bad = torch.isinf(logits).all(1)
                logits[all_bad] = 0.0
                if step < self.k_step - 1:
                    pick = torch.multinomial(torch.softmax(logits, 1), 1, generator=self.generator)[:, 0]
                else:  # prune: top prune_size by the policy, then the recommender's hardest
                    top = logits.topk(min(self.prune_size, acts.shape[1]), dim=1).indices
                    scores = backbone.score_candidates(model, users, acts.gather(1, top))
                    pick = top.gather(1, scores.argmax(1, keepdim=True))[:, 0]
                action_steps.append((anchors, acts))
                chosen_steps.append(pick)
                anchors = acts.gather(1, pick.unsqueeze(1))[:, 0]
        items = anchors.clone()
        bad = (items == 0) | ctx.positives.contains(users, items)
        if bool(bad.any()):  # swapped for uniform negatives, as the official code does
            items[bad] = uniform_candidates(ctx, users[bad], 1, self.generator)[:, 0]
        self._pending = (users, pos_items, items, action_steps, chosen_steps, ~bad)
        return Negatives(items)

    def after_step(self, model, interaction):
        if self._pending is None:
            return
        users, pos, items, action_steps, chosen_steps, valid = self._pending
        self._pending = None
        with torch.no_grad():
            user_e, item_e = backbone.final_embeddings(model)
            user_e, item_e = user_e.cpu(), item_e.cpu()
            reward = (user_e[users] * item_e[items]).sum(-1) + (item_e[pos] * item_e[items]).sum(-1)
        self._epoch_rewards.append(float(reward.mean()))
        log_prob = torch.zeros(len(users))
        for (anchors, acts), pick in zip(action_steps, chosen_steps):
            logits = self.policy.logits(users, anchors, acts)
            logits = logits.masked_fill(self._require_ctx().positives.contains(users.unsqueeze(1), acts), -1e9)
            log_prob = log_prob + torch.log_softmax(logits, 1).gather(1, pick.unsqueeze(1))[:, 0]
        loss = -((reward - self.baseline) * log_prob * valid.float()).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
