"""Cross-domain, mixed-feedback sequential datasets for Transition² (brief §2, §5).

:func:`build_t2_dataset` turns any RecBole atomic dataset with ratings and timestamps into the atomic files
Transition² reads: every interaction labelled with its item's **domain** and a **feedback** sign (pos/neg) from
configurable rating thresholds. The default, ML100K-T2, is built from the MovieLens-100k copy that RecBole ships,
with two pseudo-domains made of genre families (brief §5.3). :class:`T2Dataset` is the RecBole
``SequentialDataset`` that keeps negatives in histories but never makes them targets (brief §9.2).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from recbole.data.dataset import SequentialDataset

from shared.errors import ConfigError, DataError
from shared.results import atomic_write_text

# Brief §5.3: genre families of MovieLens as two pseudo-domains (A = action-like, B = drama/comedy-like).
ML_GENRE_DOMAINS: dict[str, list[str]] = {
    "A": ["Action", "Adventure", "Sci-Fi", "Thriller", "War", "Crime", "Western", "Horror", "Mystery", "Film-Noir"],
    "B": ["Comedy", "Drama", "Romance", "Children's", "Animation", "Musical", "Documentary", "Fantasy"],
}
POS, NEG = "pos", "neg"
DOMAIN_FIELD, FEEDBACK_FIELD, ITEM_DOMAIN_FIELD, ORDER_FIELD = "domain", "feedback", "item_domain", "seq_order"


@dataclasses.dataclass
class BuildConfig:
    """How to turn an atomic dataset into a cross-domain mixed-feedback one (every choice is a switch)."""

    source_dir: str = ""                 # folder with <source_name>.inter/.item; "" = RecBole's shipped ml-100k
    source_name: str = "ml-100k"
    name: str = "ML100K-T2"              # output dataset name (folder and file stem)
    user_field: str = "user_id"
    item_field: str = "item_id"
    rating_field: str = "rating"
    time_field: str = "timestamp"
    domain_field: str = "class"          # .item field holding the domain (token) or genres (token_seq)
    # genre family -> domain; {} = every distinct token of domain_field is its own domain (>2 domains OK);
    # None (default) = the MovieLens genre families (ML_GENRE_DOMAINS) for RecBole's shipped ml-100k only
    # (source_dir ""), and no family map for any other source: a user's own domain field is used as it is.
    domain_families: dict[str, list[str]] | None = None
    domain_map_file: str = ""            # optional TSV "item_id<TAB>domain" overriding domain_field
    label_field: str = ""                # .inter column with explicit feedback labels; "" = use rating thresholds
    pos_labels: tuple[str, ...] = ("1", "pos", "+1", "+", "true", "like")     # label values read as positive
    neg_labels: tuple[str, ...] = ("0", "neg", "-1", "-", "false", "dislike")  # label values read as negative
    pos_threshold: float = 4.0           # rating >= pos_threshold -> positive (brief §5.1 convention) [R]
    neg_threshold: float = 2.0           # rating <= neg_threshold -> negative [R]
    neutral: Literal["drop", "neg", "pos"] = "drop"   # ratings strictly between the thresholds [R]
    min_user_positives: int = 5          # k-core on positives per user (brief §5.3 step 5)
    min_item_interactions: int = 5
    filter_rounds: int = 3
    max_users: int = 0                   # 0 = all; otherwise a seeded user subsample (for CI-sized runs)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.neg_threshold >= self.pos_threshold:
            raise ValueError(f"neg_threshold ({self.neg_threshold}) must be below pos_threshold ({self.pos_threshold})")
        if self.min_user_positives < 3:
            raise ValueError("min_user_positives must be >= 3 (one train, one validation and one test target)")
        self.pos_labels, self.neg_labels = tuple(map(str, self.pos_labels)), tuple(map(str, self.neg_labels))
        if set(self.pos_labels) & set(self.neg_labels):
            raise ValueError(f"pos_labels and neg_labels share {sorted(set(self.pos_labels) & set(self.neg_labels))}")

    def families(self) -> dict[str, list[str]]:
        """The genre-family map in force ({} = each domain token is a domain); see ``domain_families``."""
        if self.domain_families is None:
            return dict(ML_GENRE_DOMAINS) if not self.source_dir and self.source_name == "ml-100k" else {}
        return dict(self.domain_families)


@dataclasses.dataclass
class BuildStats:
    """What the builder produced (also written as ``stats.json`` beside the atomic files)."""

    path: str
    n_users: int
    n_items: int
    n_interactions: int
    items_per_domain: dict[str, int]
    negative_share: float
    cross_domain_rate: float
    feedback_switch_rate: float
    p_pos_after_neg: float
    p_pos_after_pos: float
    # what the builder dropped and why: rows by reason; users and items removed by each filter stage
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)


def read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file; columns keep their bare names, types go to ``df.attrs['types']``."""
    if not path.is_file():
        raise DataError(f"atomic file {path} does not exist")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if frame.empty:
        raise DataError(f"atomic file {path} has no rows")
    types = {}
    names = []
    for column in frame.columns:
        name, _, ftype = column.partition(":")
        if not ftype:
            raise DataError(f"{path}: header column {column!r} lacks ':type' (RecBole atomic headers are 'name:type')")
        names.append(name)
        types[name] = ftype
    frame.columns = names
    frame.attrs["types"] = types
    return frame


def _item_domains(cfg: BuildConfig, source: Path) -> pd.Series:
    """item id (str) -> domain name, from a mapping file or from the item file's domain field."""
    if cfg.domain_map_file:
        path = Path(cfg.domain_map_file)
        if not path.is_file():
            raise DataError(f"domain_map_file {path} does not exist; give a TSV 'item_id<TAB>domain'")
        table = pd.read_csv(path, sep="\t", header=None, dtype=str, comment="#")
        if table.shape[1] < 2:
            raise DataError(f"domain_map_file {path} needs two tab-separated columns: item_id, domain")
        if not table.empty and table.iloc[0, 0].split(":")[0] == cfg.item_field:
            table = table.iloc[1:]
        return pd.Series(table.iloc[:, 1].values, index=table.iloc[:, 0].values)
    items = read_atomic(source / f"{cfg.source_name}.item")
    if cfg.domain_field not in items.columns:
        raise DataError(f"unknown domain field {cfg.domain_field!r}: {cfg.source_name}.item has "
                        f"{list(items.columns)}; set domain_field or give domain_map_file")
    values = items[cfg.domain_field]
    family_map = cfg.families()
    if not family_map:
        return pd.Series(values.values, index=items[cfg.item_field].values).replace("", np.nan).dropna()
    order = list(family_map)
    families = {d: set(g) for d, g in family_map.items()}

    def pick(tokens: str) -> str | None:
        genres = set(tokens.split())
        counts = [len(genres & families[d]) for d in order]
        best = int(np.argmax(counts))  # ties go to the first-listed domain (brief §5.3: A if |∩A| >= |∩B|)
        return order[best] if counts[best] > 0 else None

    out = pd.Series([pick(v) for v in values], index=items[cfg.item_field].values).dropna()
    empty = [d for d in order if not (out == d).any()]
    if empty:  # the family map, not the feedback thresholds, is what left a domain without items
        seen = sorted({t for v in values for t in v.split()})
        raise DataError(f"the domain family map gives no item to domain(s) {empty}: no value of "
                        f"{cfg.source_name}.item field {cfg.domain_field!r} is in their families (values seen: "
                        f"{seen[:12]}{' ...' if len(seen) > 12 else ''}); set domain_families={{}} to use each "
                        "token of the field as a domain, or give families that match these values")
    return out


def _labels(labels: pd.Series, cfg: BuildConfig) -> np.ndarray:
    """'pos' / 'neg' per explicit label of ``label_field``; any other value is an error naming it."""
    values = labels.astype(str).str.strip().str.lower()
    pos, neg = {v.lower() for v in cfg.pos_labels}, {v.lower() for v in cfg.neg_labels}
    unknown = sorted(set(values) - pos - neg)
    if unknown:
        raise DataError(f"{cfg.source_name}.inter label column {cfg.label_field!r} has values {unknown[:8]} that are "
                        f"neither pos_labels {list(cfg.pos_labels)} nor neg_labels {list(cfg.neg_labels)}")
    return np.where(values.isin(pos), POS, NEG).astype(object)


def _feedback(ratings: np.ndarray, cfg: BuildConfig) -> np.ndarray:
    """'pos' / 'neg' / '' (dropped) per rating."""
    out = np.full(ratings.shape, "", dtype=object)
    out[ratings >= cfg.pos_threshold] = POS
    out[ratings <= cfg.neg_threshold] = NEG
    middle = (ratings > cfg.neg_threshold) & (ratings < cfg.pos_threshold)
    if cfg.neutral != "drop":
        out[middle] = POS if cfg.neutral == "pos" else NEG
    return out


def transition_statistics(frame: pd.DataFrame) -> dict[str, float]:
    """Cross-domain and feedback-switch rates of consecutive pairs of a (user, order)-sorted frame."""
    same_user = frame["user_id"].values[1:] == frame["user_id"].values[:-1]
    dom, fb = frame[DOMAIN_FIELD].values, frame[FEEDBACK_FIELD].values
    prev_pos, next_pos = (fb[:-1] == POS)[same_user], (fb[1:] == POS)[same_user]
    return {
        "cross_domain_rate": float((dom[1:] != dom[:-1])[same_user].mean()),
        "feedback_switch_rate": float((fb[1:] != fb[:-1])[same_user].mean()),
        "p_pos_after_neg": float(next_pos[~prev_pos].mean()) if (~prev_pos).any() else float("nan"),
        "p_pos_after_pos": float(next_pos[prev_pos].mean()) if prev_pos.any() else float("nan"),
    }


def _check_domains(frame: pd.DataFrame, expected: list[str], cfg: BuildConfig, stage: str) -> None:
    """Every domain must keep at least one positive interaction (a target), else say which one is empty."""
    labelling = (f"label column {cfg.label_field!r}" if cfg.label_field else
                 f"pos >= {cfg.pos_threshold}, neg <= {cfg.neg_threshold}")
    for domain in expected:
        part = frame[frame[DOMAIN_FIELD] == domain]
        if (part[FEEDBACK_FIELD] == POS).sum() == 0:
            raise DataError(f"domain {domain!r} has no positive interaction left after {stage} "
                            f"({labelling}); change the thresholds/labels, the filters or the domain mapping")


def source_folder(cfg: BuildConfig) -> Path:
    """The folder holding ``<source_name>.inter/.item``: ``source_dir``, or RecBole's shipped copy."""
    from recsys_kit.recbole_compat import recbole_dataset_dir

    return Path(cfg.source_dir) if cfg.source_dir else recbole_dataset_dir(cfg.source_name)


def source_fingerprint(cfg: BuildConfig) -> dict[str, str]:
    """``{file: "<size>:<sha256[:16]>"}`` of every source file a build reads (the .inter, .item, domain map).

    The dataset cache is keyed on it, so rewriting a source file (shuffled labels for a control, new rows)
    rebuilds the data instead of serving the old build.
    """
    import hashlib

    folder = source_folder(cfg)
    files = [folder / f"{cfg.source_name}.inter", folder / f"{cfg.source_name}.item"]
    if cfg.domain_map_file:
        files.append(Path(cfg.domain_map_file))
    out = {}
    for path in files:
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            out[path.name] = f"{path.stat().st_size}:{digest.hexdigest()[:16]}"
    return out


def build_t2_frames(cfg: BuildConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labelled, filtered, ordered interaction frame and the item→domain frame (nothing written).

    ``frame.attrs["dropped"]`` counts what was dropped and why (rows without feedback or domain, users and items
    removed by the subsample and each k-core stage); :func:`build_t2_dataset` reports it in ``stats.json``.
    """
    source = source_folder(cfg)
    inter = read_atomic(source / f"{cfg.source_name}.inter")
    roles = [("user", cfg.user_field), ("item", cfg.item_field), ("timestamp", cfg.time_field)]
    roles.append(("label", cfg.label_field) if cfg.label_field else ("rating", cfg.rating_field))
    for role, field in roles:
        if field not in inter.columns:
            hint = " (a sequential dataset needs a time column to order histories)" if role == "timestamp" else ""
            raise DataError(f"{cfg.source_name}.inter has no {role} column {field!r}{hint}; columns are "
                            f"{list(inter.columns)}; set {role if role != 'timestamp' else 'time'}_field")
    try:
        times = inter[cfg.time_field].astype(float).values
        if cfg.label_field and cfg.rating_field not in inter.columns:
            ratings = np.full(len(inter), np.nan)
        else:
            ratings = inter[cfg.rating_field].astype(float).values
    except ValueError as err:
        raise DataError(f"{cfg.source_name}.inter: rating/time columns must be numeric ({err})") from err
    domains = _item_domains(cfg, source)
    frame = pd.DataFrame({"user_id": inter[cfg.user_field].values, "item_id": inter[cfg.item_field].values,
                          "rating": ratings, "timestamp": times, "row": np.arange(len(inter))})
    frame[FEEDBACK_FIELD] = _labels(inter[cfg.label_field], cfg) if cfg.label_field else _feedback(ratings, cfg)
    if cfg.label_field:
        frame["rating"] = np.where(np.isnan(ratings), (frame[FEEDBACK_FIELD] == POS).astype(float), ratings)
    frame[DOMAIN_FIELD] = frame["item_id"].map(domains)
    n_users0 = frame["user_id"].nunique()
    dropped = {"rows_without_feedback": int((frame[FEEDBACK_FIELD] == "").sum()),
               "rows_without_domain": int(frame[DOMAIN_FIELD].isna().sum())}
    frame = frame[(frame[FEEDBACK_FIELD] != "") & frame[DOMAIN_FIELD].notna()]
    if frame.empty:
        cause = ("no item of the interactions has a domain (check domain_field/domain_map_file and the item ids)"
                 if dropped["rows_without_domain"] == len(inter) else
                 f"every rating falls between the thresholds (pos >= {cfg.pos_threshold}, neg <= {cfg.neg_threshold})")
        raise DataError(f"no interaction is left after labelling: {cause}")
    expected = list(cfg.families()) if cfg.families() and not cfg.domain_map_file else sorted(set(domains))
    _check_domains(frame, expected, cfg, "the feedback labelling")
    dropped["users_without_labelled_rows"] = int(n_users0 - frame["user_id"].nunique())
    if cfg.max_users:
        users = np.sort(frame["user_id"].unique())
        rng = np.random.default_rng(cfg.seed)
        keep = rng.choice(users, size=min(cfg.max_users, len(users)), replace=False)
        frame = frame[frame["user_id"].isin(keep)]
        dropped["users_not_subsampled"] = int(len(users) - len(keep))
    users_k, items_k = 0, 0
    for _ in range(cfg.filter_rounds):  # k-core: users by positives, items by all interactions
        before_u, before_i = frame["user_id"].nunique(), frame["item_id"].nunique()
        n_pos = frame[frame[FEEDBACK_FIELD] == POS].groupby("user_id").size()
        frame = frame[frame["user_id"].isin(n_pos.index[n_pos >= cfg.min_user_positives])]
        users_k += before_u - frame["user_id"].nunique()
        n_item = frame.groupby("item_id").size()
        frame = frame[frame["item_id"].isin(n_item.index[n_item >= cfg.min_item_interactions])]
        items_k += before_i - frame["item_id"].nunique()
    before_u = frame["user_id"].nunique()
    n_pos = frame[frame[FEEDBACK_FIELD] == POS].groupby("user_id").size()
    frame = frame[frame["user_id"].isin(n_pos.index[n_pos >= 3])]  # the LS split needs 3 positive targets
    dropped.update({f"users_below_min_user_positives_{cfg.min_user_positives}": int(users_k),
                    f"items_below_min_item_interactions_{cfg.min_item_interactions}": int(items_k),
                    "users_below_3_positives_after_filters": int(before_u - frame["user_id"].nunique())})
    if frame.empty:
        raise DataError(f"no interactions survive the k-core filters (dropped: {dropped}); lower "
                        "min_user_positives/min_item_interactions or widen the thresholds")
    _check_domains(frame, expected, cfg, "the k-core filters")
    # MovieLens has many same-second ties: order by (user, time, file row) and store a strict per-user rank,
    # because RecBole keeps float fields as float32 and would scramble raw unix times (brief §5.3 step 4).
    frame = frame.sort_values(["user_id", "timestamp", "row"], kind="stable")
    frame[ORDER_FIELD] = frame.groupby("user_id").cumcount().astype(float)
    items = frame[["item_id", DOMAIN_FIELD]].drop_duplicates("item_id").rename(columns={DOMAIN_FIELD: ITEM_DOMAIN_FIELD})
    frame = frame.drop(columns="row").reset_index(drop=True)
    frame.attrs["dropped"] = dropped
    return frame, items.reset_index(drop=True)


def build_t2_dataset(cfg: BuildConfig | None = None, out_dir: str | Path = "runs/transition2/data") -> BuildStats:
    """Build and write ``<out_dir>/<name>/<name>.inter|.item`` (+ ``stats.json``); returns the statistics."""
    cfg = cfg or BuildConfig()
    frame, items = build_t2_frames(cfg)
    folder = Path(out_dir) / cfg.name
    inter_text = frame.to_csv(sep="\t", index=False, header=False,
                              columns=["user_id", "item_id", "rating", "timestamp", ORDER_FIELD, DOMAIN_FIELD,
                                       FEEDBACK_FIELD])
    header = (f"user_id:token\titem_id:token\trating:float\ttimestamp:float\t{ORDER_FIELD}:float\t"
              f"{DOMAIN_FIELD}:token\t{FEEDBACK_FIELD}:token\n")
    atomic_write_text(folder / f"{cfg.name}.inter", header + inter_text)
    item_text = items.to_csv(sep="\t", index=False, header=False)
    atomic_write_text(folder / f"{cfg.name}.item", f"item_id:token\t{ITEM_DOMAIN_FIELD}:token\n" + item_text)
    stats = BuildStats(path=str(folder), n_users=int(frame["user_id"].nunique()), n_items=len(items),
                       n_interactions=len(frame),
                       items_per_domain={str(k): int(v) for k, v in items[ITEM_DOMAIN_FIELD].value_counts().sort_index().items()},
                       negative_share=float((frame[FEEDBACK_FIELD] == NEG).mean()), **transition_statistics(frame),
                       dropped=dict(frame.attrs.get("dropped", {})))
    atomic_write_text(folder / "stats.json", json.dumps({"build": dataclasses.asdict(cfg),
                                                          "source": source_fingerprint(cfg),
                                                          "stats": dataclasses.asdict(stats)}, indent=2) + "\n")
    lost = {k: v for k, v in stats.dropped.items() if k.startswith("users") and v}
    if lost:
        logging.getLogger(__name__).info("%s: users dropped by the builder: %s", cfg.name, lost)
    return stats


def recbole_settings(max_seq_length: int = 50, **extra: Any) -> dict[str, Any]:
    """The RecBole config entries a T2 dataset needs (fields, leave-last-two-positives split, CE training)."""
    settings: dict[str, Any] = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": ORDER_FIELD,
        "load_col": {"inter": ["user_id", "item_id", ORDER_FIELD, DOMAIN_FIELD, FEEDBACK_FIELD],
                     "item": ["item_id", ITEM_DOMAIN_FIELD]},
        "MAX_ITEM_LIST_LENGTH": max_seq_length,
        "eval_args": {"split": {"LS": "valid_and_test"}, "group_by": "user", "order": "TO", "mode": "full"},
        "train_neg_sample_args": None, "loss_type": "CE",
        "metrics": ["Recall", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
        "user_inter_num_interval": None, "item_inter_num_interval": None,
    }
    settings.update(extra)
    return settings


class T2Dataset(SequentialDataset):
    """A ``SequentialDataset`` whose targets are positive interactions only; negatives stay in histories.

    It also records each user's *training* history (everything before the validation target) as
    ``train_sequences`` so the transition graph never sees validation or test data (brief §3.2, §9.5).
    """

    def _feedback_ids(self) -> tuple[int, int]:
        tokens = self.field2token_id.get(FEEDBACK_FIELD)
        if not tokens or POS not in tokens:
            raise DataError(f"dataset {self.dataset_name!r} lacks a '{FEEDBACK_FIELD}' token field with "
                            f"'{POS}'/'{NEG}' values; build it with build_t2_dataset")
        return tokens[POS], tokens.get(NEG, -1)

    def data_augmentation(self) -> None:
        pos_id, neg_id = self._feedback_ids()
        self.sort(by=[self.uid_field, self.time_field], ascending=True)
        self.train_sequences = self._training_histories(pos_id)
        super().data_augmentation()
        # one row per (prefix, positive target): negatives are context only (brief §2, §9.2)
        self.inter_feat = self.inter_feat[self.inter_feat[FEEDBACK_FIELD] == pos_id]

    def _training_histories(self, pos_id: int) -> list[dict[str, np.ndarray]]:
        """Per user: items, is-positive and domain ids of the interactions before the validation target."""
        users = self.inter_feat[self.uid_field].numpy()
        items = self.inter_feat[self.iid_field].numpy()
        positive = self.inter_feat[FEEDBACK_FIELD].numpy() == pos_id
        domains = self.inter_feat[DOMAIN_FIELD].numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        out = []
        for start, end in zip(starts, ends):
            # targets are positives at offset >= 1; LS puts the last two into validation and test
            targets = start + 1 + np.flatnonzero(positive[start + 1:end])
            cut = targets[-2] if len(targets) >= 2 else start  # user without a training target: no history
            out.append({"items": items[start:cut], "positive": positive[start:cut], "domains": domains[start:cut]})
        return out

    def item_domain_ids(self) -> np.ndarray:
        """For each internal item id, its id in the interaction ``domain`` field (0 for padding)."""
        item_feat = self.get_item_feature()
        if ITEM_DOMAIN_FIELD not in item_feat.interaction:
            raise DataError(f"dataset {self.dataset_name!r} needs an '{ITEM_DOMAIN_FIELD}' field in its .item file")
        tokens = self.field2id_token[ITEM_DOMAIN_FIELD][item_feat[ITEM_DOMAIN_FIELD].numpy()]
        lookup = self.field2token_id[DOMAIN_FIELD]
        out = np.array([lookup.get(t, 0) for t in tokens], dtype=np.int64)
        out[0] = 0
        return out


def load_build_config(mapping: Mapping[str, Any] | None) -> BuildConfig:
    """A :class:`BuildConfig` from a mapping, with unknown keys reported as :class:`ConfigError`."""
    from shared.config import from_dict

    try:
        return from_dict(BuildConfig, dict(mapping or {}), where="build")
    except ValueError as err:
        raise ConfigError(str(err)) from err
