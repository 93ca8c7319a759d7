"""The one sampler interface, the per-user positive index, and vectorised uniform candidates.

Every sampler of the zoo subclasses :class:`NegativeSampler`. The trainer hook (``hook.py``) binds it once
to a :class:`SamplingContext` built from a RecBole dataset, then, per batch of ``B`` positives, calls
:meth:`NegativeSampler.training_loss`. The default loss is *RecBole's own* ``model.calculate_loss`` after
writing the chosen negatives into ``interaction["neg_item_id"]``; samplers that weight or synthesise
negatives (PRIS, T-CE, MixGCF, DENS) override it through :mod:`.backbone`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from shared.errors import ConfigError, DataError


class PositiveIndex:
    """Membership test for (user, item) pairs, vectorised: sorted keys ``user * n_items + item`` + searchsorted.

    Works for any data size (memory O(#pairs)); ``contains`` costs O(log #pairs) per query. Catalogues with
    ``n_users * n_items <= DENSE_LIMIT`` also keep a dense bool matrix, making ``contains`` one gather.
    """

    DENSE_LIMIT = 50_000_000  # 50 MB of bools (ml-1m: 6k x 3.7k = 22M)

    def __init__(self, users: np.ndarray | torch.Tensor, items: np.ndarray | torch.Tensor, n_users: int,
                 n_items: int) -> None:
        users = torch.as_tensor(np.asarray(users), dtype=torch.long)
        items = torch.as_tensor(np.asarray(items), dtype=torch.long)
        self.n_users, self.n_items = int(n_users), int(n_items)
        keys = torch.unique(users * self.n_items + items)  # sorted, duplicates merged
        self.keys = keys
        self.row_users = keys // self.n_items
        self.row_items = keys % self.n_items
        self.counts = torch.bincount(self.row_users, minlength=self.n_users)  # positives per user
        self.offsets = torch.zeros(self.n_users + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(self.counts, 0)
        self.dense: torch.Tensor | None = None
        if self.n_users * self.n_items <= self.DENSE_LIMIT:
            self.dense = torch.zeros(self.n_users * self.n_items, dtype=torch.bool)
            self.dense[keys] = True

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Bool tensor, same shape as ``items``: is (user, item) a known pair (``users`` broadcasts)."""
        if self.keys.numel() == 0:
            return torch.zeros_like(items, dtype=torch.bool)
        query = (users * self.n_items + items).reshape(-1)
        if self.dense is not None:
            return self.dense[query].reshape(items.shape)
        pos = torch.searchsorted(self.keys, query).clamp_(max=self.keys.numel() - 1)
        return (self.keys[pos] == query).reshape(items.shape)

    def dense_mask(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, n_items]`` bool mask of each listed user's pairs (for full-softmax samplers)."""
        if self.dense is not None:
            return self.dense.view(self.n_users, self.n_items)[users]
        counts = self.counts[users]  # [B]
        rows = torch.repeat_interleave(torch.arange(len(users)), counts)
        starts = torch.repeat_interleave(self.offsets[users], counts)
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        mask = torch.zeros(len(users), self.n_items, dtype=torch.bool)
        mask[rows, self.row_items[starts + within]] = True
        return mask

    def random_member(self, users: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One uniformly drawn item of each user's pairs, and a bool ``has_any`` (item is 0 where False)."""
        counts = self.counts[users]
        has_any = counts > 0
        pick = (torch.rand(users.shape, generator=generator) * counts.clamp(min=1)).long()
        index = (self.offsets[users] + pick).clamp(max=max(self.keys.numel() - 1, 0))
        items = torch.where(has_any, self.row_items[index] if self.keys.numel() else torch.zeros_like(users),
                            torch.zeros_like(users))
        return items, has_any


@dataclasses.dataclass
class SamplingContext:
    """What a sampler may know about the data: sizes, training positives, counts, optional side information.

    Item id 0 is RecBole's ``[PAD]`` and is never sampled. ``known_negatives`` (predefined sampler) and
    ``heldout`` (false-negative accounting only — never used to choose negatives) are optional indexes.
    ``kg_item_entities``/``kg_entity_items`` are CSR ``(offsets, values)`` pairs for the KG samplers.
    """

    n_users: int
    n_items: int
    positives: PositiveIndex
    item_counts: torch.Tensor  # [n_items] training interaction counts
    known_negatives: PositiveIndex | None = None
    heldout: PositiveIndex | None = None
    kg: Any | None = None  # knowledge.KnowledgeGraph
    max_epochs: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))


def context_from_arrays(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int,
                        **extra: Any) -> SamplingContext:
    """A :class:`SamplingContext` from raw (user, item) training pairs (ids already RecBole-remapped)."""
    users, items = np.asarray(users), np.asarray(items)
    if len(users) == 0:
        raise DataError("the training split has no interactions; check the .inter file and its filters")
    positives = PositiveIndex(users, items, n_users, n_items)
    counts = torch.bincount(torch.as_tensor(items, dtype=torch.long), minlength=n_items).float()
    return SamplingContext(n_users=n_users, n_items=n_items, positives=positives, item_counts=counts, **extra)


def uniform_candidates(ctx: SamplingContext, users: torch.Tensor, num: int,
                       generator: torch.Generator | None = None, max_rounds: int = 200) -> torch.Tensor:
    """``[B, num]`` items drawn uniformly from ``{1..n_items-1}`` minus each user's training positives.

    Vectorised rejection: draw all, redraw only the collisions. Expected rounds ``1/(1 - |I_u^+|/N)``.
    Cost O(B·num·log|R|) per call. Users with every item positive are rejected by :func:`check_context`.
    """
    users_2d = users.reshape(-1, 1).expand(-1, num)
    items = torch.randint(1, ctx.n_items, users_2d.shape, generator=generator)
    bad = ctx.positives.contains(users_2d, items)
    rounds = 0
    while bool(bad.any()):
        rounds += 1
        if rounds > max_rounds:
            raise DataError("uniform negative sampling kept hitting positives: some user in the batch has "
                            "(almost) every item as a positive; filter such users out of the .inter file")
        items[bad] = torch.randint(1, ctx.n_items, (int(bad.sum()),), generator=generator)
        bad = ctx.positives.contains(users_2d, items)
    return items


def check_context(ctx: SamplingContext, num_candidates: int) -> None:
    """Refuse what no sampler can do: a pool larger than the catalogue, a user with no possible negative."""
    available = ctx.n_items - 1  # [PAD] excluded
    if num_candidates > available:
        raise ConfigError(f"candidate pool of {num_candidates} items is larger than the catalogue "
                          f"({available} items); use n_candidates <= {available}")
    full = torch.nonzero(ctx.positives.counts >= available).ravel()
    if len(full):
        raise DataError(f"user id(s) {full[:5].tolist()} have every item as a positive, so no negative exists; "
                        f"remove them from the data (e.g. RecBole's user_inter_num_interval)")


@dataclasses.dataclass
class Negatives:
    """What a sampler chose for a batch: item ids ``[B]`` or ``[B, K]`` (K with ``weights [B, K]``)."""

    items: torch.Tensor
    weights: torch.Tensor | None = None


class NegativeSampler:
    """Interface of every sampler: ``bind`` once, ``sample`` per batch, optional epoch/step hooks.

    Subclasses set ``name``, ``family`` (static | dynamic | adversarial | reweighting | knowledge),
    ``needs_model`` and document their per-step ``cost``. Hyper-parameters are ``__init__`` arguments,
    stored unchanged (``params()`` returns them for the run's saved config).
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    cost: ClassVar[str] = ""
    needs_model: ClassVar[bool] = False
    num_candidates: int = 1

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(int(seed))
        else:
            self.generator.manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        self.ctx: SamplingContext | None = None
        self.epoch = 0
        self.last_negatives: Negatives | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def bind(self, ctx: SamplingContext) -> NegativeSampler:
        """Attach to a dataset (validates the candidate pool and that every user has a negative)."""
        check_context(ctx, self.num_candidates)
        self.ctx = ctx
        return self

    def on_epoch_start(self, model: torch.nn.Module | None, epoch: int) -> None:
        """Called before each training epoch (curricula, warm-ups, score histories)."""
        self.epoch = epoch

    def parameters(self) -> list[torch.nn.Parameter]:
        """Sampler parameters trained jointly with the recommender through ``training_loss`` (DENS gates)."""
        return []

    def after_step(self, model: torch.nn.Module, interaction: Any) -> None:
        """Called after the recommender's optimizer step (generator/policy updates of IRGAN and KGPolicy)."""

    # --- sampling --------------------------------------------------------------------------------
    def sample(self, model: torch.nn.Module | None, users: torch.Tensor, pos_items: torch.Tensor) -> Negatives:
        """Negatives for a batch of (user, positive) pairs; never a training positive of the user."""
        raise NotImplementedError

    def training_loss(self, model: torch.nn.Module, interaction: Any) -> torch.Tensor:
        """RecBole's own loss on the chosen negative: write ``neg_item_id`` [B], call ``calculate_loss``."""
        users, pos = interaction[model.USER_ID], interaction[model.ITEM_ID]
        negatives = self.sample(model, users.cpu(), pos.cpu())
        self.last_negatives = negatives
        interaction.update(_neg_field(model, negatives.items.to(users.device)))
        loss = model.calculate_loss(interaction)
        return sum(loss) if isinstance(loss, tuple) else loss

    def params(self) -> dict[str, Any]:
        """The hyper-parameters this sampler was built with (saved beside a run)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {"name": self.name, **{n: getattr(self, n) for n in names if hasattr(self, n)}}

    def _require_ctx(self) -> SamplingContext:
        if self.ctx is None:
            raise ConfigError(f"sampler {self.name!r} is not bound to a dataset; call sampler.bind(context) "
                              f"or train through recsys_kit.negsampling.NegSamplingTrainer")
        return self.ctx


def _neg_field(model: torch.nn.Module, items: torch.Tensor) -> Any:
    from recbole.data.interaction import Interaction

    return Interaction({model.NEG_ITEM_ID: items})


SAMPLERS: dict[str, type[NegativeSampler]] = {}


def register(cls: type[NegativeSampler]) -> type[NegativeSampler]:
    """Class decorator: make a sampler available to :func:`get_sampler` under ``cls.name``."""
    SAMPLERS[cls.name] = cls
    return cls


def get_sampler(name: str, **kwargs: Any) -> NegativeSampler:
    """Build a sampler by name (``uniform``, ``dns``, ``mixgcf``, …) with its hyper-parameters.

    Each family module registers its samplers where they are defined; the package ``__init__`` imports every
    family, so any import of ``recsys_kit.negsampling`` (or one of its modules) fills :data:`SAMPLERS`.
    """
    if name not in SAMPLERS:
        raise ConfigError(f"unknown negative sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    try:
        return SAMPLERS[name](**kwargs)
    except TypeError as err:
        raise ConfigError(f"sampler {name!r}: {err}") from err
