"""prepare(): the dataset cache follows every build setting; the FFN width follows the hidden size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys_kit.transition2.data import FEEDBACK_FIELD, BuildConfig
from recsys_kit.transition2.train import TrainConfig, build_key, build_model, ensure_built, prepare


def _negative_share(prepared) -> float:
    """Share of negative interactions in the histories RecBole loaded."""
    feedback = prepared.dataset.field2token_id[FEEDBACK_FIELD]
    values = np.concatenate([h["positive"] for h in prepared.dataset.train_sequences])
    assert "neg" in feedback
    return float((~values).mean())


def test_changing_a_threshold_rebuilds_the_cached_data(isolated_cache):
    cfg = TrainConfig(build=BuildConfig(max_users=60, name="T2-key"), max_seq_length=8, hidden_size=8)
    first = prepare(cfg)
    strict = dataclasses.replace(cfg, build=dataclasses.replace(cfg.build, neg_threshold=1.0))
    second = prepare(strict)
    # rating 2 is negative only under the first build: fewer negatives, and separate cache folders
    assert _negative_share(second) < _negative_share(first)
    assert first.config["data_path"] != second.config["data_path"]
    assert build_key(cfg.build) != build_key(strict.build)
    # same settings: the cached files are reused, not rewritten
    inter = ensure_built(cfg) / "T2-key" / "T2-key.inter"
    stamp = inter.stat().st_mtime_ns
    assert ensure_built(dataclasses.replace(cfg, seed=5, hidden_size=16)) / "T2-key" / "T2-key.inter" == inter
    assert inter.stat().st_mtime_ns == stamp


def test_explicit_data_dir_rebuilds_when_the_build_settings_change(tmp_path):
    cfg = TrainConfig(build=BuildConfig(max_users=60, name="T2-dir"), data_dir=str(tmp_path))
    inter = ensure_built(cfg) / "T2-dir" / "T2-dir.inter"
    before = inter.read_text()
    stamp = inter.stat().st_mtime_ns
    ensure_built(cfg)
    assert inter.stat().st_mtime_ns == stamp  # reused
    ensure_built(dataclasses.replace(cfg, build=dataclasses.replace(cfg.build, pos_threshold=5.0)))
    after = inter.read_text()
    assert after != before and after.count("\tpos\n") < before.count("\tpos\n")
    # atomic files the user prepared without stats.json are used as they are
    (tmp_path / "T2-dir" / "stats.json").unlink()
    ensure_built(cfg)
    assert inter.read_text() == after


def test_inner_size_defaults_to_four_times_hidden(prepared, small_config):
    assert small_config.ffn_size == 4 * small_config.hidden_size
    assert prepared.config["inner_size"] == 4 * small_config.hidden_size
    model = build_model(prepared, "t2_v1")
    dense = [m for name, m in model.named_modules() if name.endswith("feed_forward.dense_1")][0]
    assert tuple(dense.weight.shape) == (4 * small_config.hidden_size, small_config.hidden_size)
    override = build_model(prepared, "t2_v1", {"inner_size": 24})
    dense = [m for name, m in override.named_modules() if name.endswith("feed_forward.dense_1")][0]
    assert dense.weight.shape[0] == 24
    assert TrainConfig(hidden_size=32, inner_size=100).ffn_size == 100
    with pytest.raises(ValueError):
        TrainConfig(inner_size=-1)


def test_rewritten_source_files_rebuild_the_data(tmp_path, isolated_cache):
    """The build is keyed on the sources' contents: shuffling labels in a source file is never served stale."""
    from recsys_kit.recbole_compat import recbole_dataset_dir

    source = tmp_path / "src"
    source.mkdir()
    for suffix in ("inter", "item"):
        (source / f"ml-100k.{suffix}").write_bytes((recbole_dataset_dir("ml-100k") / f"ml-100k.{suffix}").read_bytes())
    build = BuildConfig(source_dir=str(source), max_users=60, name="T2-src",
                        domain_families={"A": ["Action", "Thriller"], "B": ["Comedy", "Drama"]})
    for cfg in (TrainConfig(build=build), TrainConfig(build=build, data_dir=str(tmp_path / "data"))):
        inter = ensure_built(cfg) / "T2-src" / "T2-src.inter"
        before = inter.read_text()
        lines = (source / "ml-100k.inter").read_text().splitlines()
        flipped = [lines[0]] + ["\t".join(p[:2] + [str(6 - int(float(p[2])))] + p[3:])
                                for p in (line.split("\t") for line in lines[1:])]
        (source / "ml-100k.inter").write_text("\n".join(flipped) + "\n")  # every rating r becomes 6 - r
        after_dir = ensure_built(cfg)
        assert (after_dir / "T2-src" / "T2-src.inter").read_text() != before
