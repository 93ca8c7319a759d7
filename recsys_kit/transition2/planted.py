"""Planted feedback-transition data: the positive/negative control generator of the T2 dataset builder.

:func:`planted_source` writes a two-domain RecBole atomic *source* (``.inter`` with an explicit ``label`` column,
``.item`` with a ``domain`` token) in which the next positive item is set by the **feedback transition** of the
history, with a known ``strength``; :func:`planted_build_config` is the :class:`~.data.BuildConfig` that turns it
into a T2 dataset through the ordinary builder (label column, no family map). Use it to test any model: one that
ignores feedback transitions cannot beat the rule's floor.

Generative rule (per user, ``seq_len`` steps). Items form ``n_clusters`` clusters in each domain; cluster ``c``
exists in both domains. A user has a current *interest* cluster. Each step picks its domain (switching with
``p_switch``) and a feedback sign (negative with ``p_neg``). A **negative** interaction is a uniformly random item
of its domain: it carries no information but its sign. A **positive** interaction follows the rule with
probability ``strength`` (else it is a random item of its domain): its cluster is ``interest + SHIFT[a, b]``
(mod ``n_clusters``), and the interest moves there. ``(a, b)`` is a feedback transition:

- ``mode="switch"`` (one step, any domain): the signs of the last two interactions of the merged history
  (−→+ , +→−, … as in the issue's example). A per-item feedback embedding can capture it (``sasrec_neg``).
- ``mode="cross_domain"`` (more than one step, across domains): the signs of the last two interactions *in
  the other domain* than the one being predicted, however far back they are. It needs attention that tells
  domains and feedback transitions apart (T²'s cross-domain / cross-feedback heads) or many examples.
- ``mode="partner"`` (item-level, across domains): no shift; instead a negative on item ``i`` is followed (with
  probability ``strength``) by a positive on ``partner(i)``, a fixed item of the other domain. The −→+ edges of
  T²'s feedback-typed transition graph link exactly these pairs; a sequence model must learn every pair from the
  targets alone, and a positive-only history never sees ``i``.

``SHIFT`` is ``{++: 0, +−: 1, −+: 2, −−: 3}``: a positive-only history (``sasrec_mixed``, ``c2dsr_lite``) sees the
interest but not the transition, so it can only guess shift 0. ``shuffle_feedback=True`` permutes the labels
over all rows after generation: the items and order stay, the feedback carries nothing. Caveat: a positive-only
history then also loses the originally positive items that got a negative label, so a model that keeps every item
still gains over it; ``feedback_effect=False`` (every shift 0, the same item process) removes the signal without
that confound and is the clean negative control.

:func:`oracle_evaluation` ranks a built split with the rule itself (a Bayes filter over the hidden interest): the
ceiling any model can reach from the inputs, and (``see_feedback=False``) the approximate ceiling of positive-only
histories. At the benchmark's settings (400 users, strength 0.9) the NDCG@10 ceilings are about 0.46 (switch,
cross) and 0.65 (partner), against 0.2 and 0.33 for positive-only histories: every variant is learnable from the
inputs the sign-aware arms get, and ``partner`` is already solved at its ceiling by a per-item feedback embedding
(``sasrec_neg``), so it cannot show what T²'s graph adds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

import numpy as np

from recsys_kit.transition2.data import BuildConfig
from shared.errors import ConfigError
from shared.results import atomic_write_text

SHIFT = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}  # (a positive?, b positive?)
DOMAINS = ("A", "B")


@dataclasses.dataclass
class PlantedConfig:
    """Settings of :func:`planted_source` (every one recorded in ``planted.json``)."""

    n_users: int = 600
    seq_len: int = 30
    n_clusters: int = 6
    items_per_cluster: int = 8
    p_neg: float = 0.35
    p_switch: float = 0.5
    strength: float = 0.9             # probability that a positive follows the rule (0 = no signal)
    mode: Literal["switch", "cross_domain", "partner"] = "switch"
    shuffle_feedback: bool = False    # negative control 1: labels permuted over rows after generation
    feedback_effect: bool = True      # False = negative control 2: every transition shifts by 0 (no signal)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("switch", "cross_domain", "partner"):
            raise ConfigError(f"planted mode must be 'switch', 'cross_domain' or 'partner', got {self.mode!r}")
        if not 0.0 <= self.strength <= 1.0 or not 0.0 < self.p_neg < 1.0 or not 0.0 <= self.p_switch <= 1.0:
            raise ConfigError("strength and p_switch must lie in [0, 1] and p_neg in (0, 1)")
        if self.n_clusters < 4:
            raise ConfigError("n_clusters must be >= 4 (the four feedback transitions shift to distinct clusters)")
        if self.seq_len < 8 or self.n_users < 10 or self.items_per_cluster < 1:
            raise ConfigError("seq_len must be >= 8, n_users >= 10 and items_per_cluster >= 1")


def item_id(domain: int, cluster: int, k: int, cfg: PlantedConfig) -> int:
    """The token of item ``k`` of ``cluster`` in ``domain`` (1-based, domain-major)."""
    return 1 + (domain * cfg.n_clusters + cluster) * cfg.items_per_cluster + k


def item_cluster(token: int, cfg: PlantedConfig) -> tuple[int, int]:
    """(domain index, cluster) of an item token."""
    block = (int(token) - 1) // cfg.items_per_cluster
    return block // cfg.n_clusters, block % cfg.n_clusters


def partners(cfg: PlantedConfig) -> np.ndarray:
    """``partner[i]``: the fixed item of the other domain that follows a negative on item ``i`` (mode "partner");
    a seeded random bijection between the two domains' items (index 0 unused)."""
    per_domain = cfg.n_clusters * cfg.items_per_cluster
    perm = np.random.default_rng(cfg.seed + 7).permutation(per_domain)
    out = np.zeros(2 * per_domain + 1, dtype=np.int64)
    out[1:per_domain + 1] = per_domain + 1 + perm            # A item k -> B item perm[k]
    out[per_domain + 1 + perm] = np.arange(1, per_domain + 1)  # and back
    return out


def generate(cfg: PlantedConfig) -> dict[str, np.ndarray]:
    """The planted interactions as arrays ``user, item, positive, domain, time, followed`` (``followed``: the
    row is a positive that obeyed the rule; ``positive`` is already shuffled when ``shuffle_feedback``)."""
    rng = np.random.default_rng(cfg.seed)
    users, items, positive, domains, times, followed = [], [], [], [], [], []
    per_domain = cfg.n_clusters * cfg.items_per_cluster
    partner = partners(cfg)
    for user in range(cfg.n_users):
        interest = int(rng.integers(cfg.n_clusters))
        domain = int(rng.integers(2))
        history: list[tuple[int, bool]] = []  # (domain, positive) of the interactions so far
        for t in range(cfg.seq_len):
            if cfg.mode == "partner" and history and not history[-1][1] and rng.random() < cfg.strength:
                # a negative on item i: the next interaction is the positive partner(i) in the other domain
                item = int(partner[items[-1]])
                domain = item_cluster(item, cfg)[0]
                history.append((domain, True))
                users.append(user)
                items.append(item)
                positive.append(True)
                domains.append(domain)
                times.append(t)
                followed.append(True)
                continue
            if t and rng.random() < cfg.p_switch:
                domain = 1 - domain
            # the first two steps are positive so every user has an interest anchor in the history
            is_pos = t < 2 or rng.random() >= cfg.p_neg
            obeys = False
            if not is_pos:
                item = 1 + domain * per_domain + int(rng.integers(per_domain))
            else:
                if cfg.mode == "partner":
                    last = []  # the partner rule carries the signal; other positives keep the interest
                elif cfg.mode == "switch":
                    last = [p for _, p in history[-2:]]
                else:  # the last two interactions in the other domain (none yet: no shift)
                    last = [p for d, p in history if d != domain][-2:]
                shift = SHIFT[tuple(last)] if len(last) == 2 and cfg.feedback_effect else 0
                if rng.random() < cfg.strength:
                    interest = (interest + shift) % cfg.n_clusters
                    item = item_id(domain, interest, int(rng.integers(cfg.items_per_cluster)), cfg)
                    obeys = t >= 2
                else:
                    item = 1 + domain * per_domain + int(rng.integers(per_domain))
            history.append((domain, is_pos))
            users.append(user)
            items.append(item)
            positive.append(is_pos)
            domains.append(domain)
            times.append(t)
            followed.append(obeys)
    out = {"user": np.asarray(users), "item": np.asarray(items), "positive": np.asarray(positive),
           "domain": np.asarray(domains), "time": np.asarray(times), "followed": np.asarray(followed)}
    if cfg.shuffle_feedback:
        out["positive"] = np.random.default_rng(cfg.seed + 1).permutation(out["positive"])
    return out


def planted_source(folder: str | Path, cfg: PlantedConfig | None = None, name: str = "planted") -> Path:
    """Write ``<folder>/<name>.inter`` (user, item, label pos/neg, timestamp), ``<name>.item`` (item, domain) and
    ``planted.json``; returns ``folder``. Build it with :func:`planted_build_config`."""
    cfg = cfg or PlantedConfig()
    folder = Path(folder)
    data = generate(cfg)
    labels = np.where(data["positive"], "pos", "neg")
    lines = ["user_id:token\titem_id:token\tlabel:token\ttimestamp:float"]
    lines += [f"u{u}\t{i}\t{lab}\t{t}" for u, i, lab, t in zip(data["user"], data["item"], labels, data["time"])]
    atomic_write_text(folder / f"{name}.inter", "\n".join(lines) + "\n")
    n_items = 2 * cfg.n_clusters * cfg.items_per_cluster
    item_lines = ["item_id:token\tdomain:token"]
    item_lines += [f"{i}\t{DOMAINS[item_cluster(i, cfg)[0]]}" for i in range(1, n_items + 1)]
    atomic_write_text(folder / f"{name}.item", "\n".join(item_lines) + "\n")
    atomic_write_text(folder / "planted.json", json.dumps({"planted": dataclasses.asdict(cfg),
                                                            "rule_share": float(data["followed"].mean())},
                                                           indent=2) + "\n")
    return folder


def planted_build_config(folder: str | Path, name: str = "planted", dataset: str = "T2-planted",
                         **overrides) -> BuildConfig:
    """The :class:`BuildConfig` that builds a :func:`planted_source` folder: its label column, its domain
    tokens (no family map), no item k-core (every planted item is kept)."""
    settings = dict(source_dir=str(folder), source_name=name, name=dataset, label_field="label",
                    domain_field="domain", domain_families={}, min_user_positives=3, min_item_interactions=1)
    settings.update(overrides)
    return BuildConfig(**settings)


# ----- the rule's ceiling: a Bayes filter that knows the generative rule -------------------------------------
def _prior_shifts(cfg: PlantedConfig) -> dict[int, float]:
    """The shift distribution when the two signs that set it are not seen (independent signs, ``p_neg``)."""
    out: dict[int, float] = {}
    for (a, b), shift in SHIFT.items():
        out[shift] = out.get(shift, 0.0) + (1 - cfg.p_neg if a else cfg.p_neg) * (1 - cfg.p_neg if b else cfg.p_neg)
    return out


def oracle_scores(history: list[tuple[int, bool, int]], target_domain: int, cfg: PlantedConfig,
                  see_feedback: bool = True) -> np.ndarray:
    """P(next positive item) of a predictor that knows the planted rule (scores over item tokens 0..N, -inf for
    padding and foreign-domain items); ranking by it gives the rule's ceiling on a split.

    ``history`` is the merged history before the target, ``(item token, positive, domain index)`` per
    interaction, from the first one on. A forward (HMM) filter tracks the user's hidden interest cluster: each
    positive either obeyed the rule (probability ``strength``: cluster = interest + shift) or was random. With
    ``see_feedback=False`` the history must hold the positives only (what SASRec-mixed and C2DSR-lite see) and
    every shift is marginalised over independent signs, an approximate ceiling for positive-only histories
    (exact Bayes would also condition on the number of positives). Shuffled labels are not modelled: there
    the filter still assumes the unshuffled rule.
    """
    n_c, per, strength = cfg.n_clusters, cfg.items_per_cluster, cfg.strength
    partner = partners(cfg)
    belief = np.full(n_c, 1.0 / n_c)
    seen: list[tuple[int, bool]] = []  # (domain, positive)

    def shifts(domain: int) -> dict[int, float]:
        if not cfg.feedback_effect or cfg.mode == "partner":
            return {0: 1.0}
        if cfg.mode == "switch":
            last = [p for _, p in seen[-2:]]
        else:
            last = [p for d, p in seen if d != domain][-2:]
        if len(last) < 2:
            return {0: 1.0}
        return {SHIFT[tuple(last)]: 1.0} if see_feedback else _prior_shifts(cfg)

    for t, (item, positive, domain) in enumerate(history):
        partner_step = (cfg.mode == "partner" and t > 0 and not history[t - 1][1]
                        and int(partner[history[t - 1][0]]) == int(item))
        if positive and not partner_step:
            cluster = item_cluster(item, cfg)[1]
            new = belief * (1 - strength) / (n_c * per)              # a random positive: the interest stays
            for shift, p_shift in shifts(domain).items():
                moved = np.roll(belief, shift)                        # P(interest + shift = c)
                new[cluster] += moved[cluster] * p_shift * strength / per
            belief = new / new.sum()
        seen.append((domain, bool(positive)))
    cluster_p = sum(p * np.roll(belief, s) for s, p in shifts(target_domain).items())
    n_items = 2 * n_c * per
    scores = np.full(n_items + 1, -np.inf)
    tokens = np.arange(1, n_items + 1)
    blocks = (tokens - 1) // per
    mine = blocks // n_c == target_domain
    scores[tokens[mine]] = strength * cluster_p[blocks[mine] % n_c] / per + (1 - strength) / (n_c * per)
    if cfg.mode == "partner" and see_feedback and history and not history[-1][1]:
        follow = int(partner[history[-1][0]])
        if item_cluster(follow, cfg)[0] == target_domain:
            scores[follow] = 2.0                                      # above every rule probability
    return scores


def oracle_evaluation(split, dataset, cfg: PlantedConfig, see_feedback: bool = True, seed: int = 0):
    """The rule's ceiling on a RecBole split of a built planted dataset (a :class:`~.evaluate.Evaluation`):
    :func:`oracle_scores` on each row's own input lists (decoded through ``dataset``'s token maps), ties broken at
    random (seeded). ``see_feedback=False`` drops the negatives from each history first (positive-only arms)."""
    from recsys_kit.transition2.data import DOMAIN_FIELD, FEEDBACK_FIELD, POS
    from recsys_kit.transition2.evaluate import Evaluation

    inter = split.inter_feat
    item_tok, fb_tok = dataset.field2id_token[dataset.iid_field], dataset.field2id_token[FEEDBACK_FIELD]
    dom_tok = dataset.field2id_token[DOMAIN_FIELD]
    suffix = dataset.config["LIST_SUFFIX"]
    rng = np.random.default_rng(seed)
    lists = [inter[f + suffix].numpy() for f in (dataset.iid_field, FEEDBACK_FIELD, DOMAIN_FIELD)]
    lengths, targets = inter[dataset.item_list_length_field].numpy(), inter[dataset.iid_field].numpy()
    target_domains = inter[DOMAIN_FIELD].numpy()
    ranks, domains = [], []
    for row in range(len(inter)):
        n = int(lengths[row])
        history = [(int(item_tok[i]), fb_tok[f] == POS, DOMAINS.index(dom_tok[d]))
                   for i, f, d in zip(lists[0][row, :n], lists[1][row, :n], lists[2][row, :n])]
        if not see_feedback:
            history = [h for h in history if h[1]]
        domain = DOMAINS.index(dom_tok[target_domains[row]])
        scores = oracle_scores(history, domain, cfg, see_feedback=see_feedback)
        scores = scores + rng.random(len(scores)) * 1e-9                   # random tie-breaking
        target = int(item_tok[targets[row]])
        ranks.append(int((scores[np.isfinite(scores)] > scores[target]).sum()))
        domains.append(DOMAINS[domain])
    ranks_arr = np.asarray(ranks)
    return Evaluation(users=inter[dataset.uid_field].numpy(), domains=np.asarray(domains), full_rank=ranks_arr,
                      sampled_rank=ranks_arr.copy())
