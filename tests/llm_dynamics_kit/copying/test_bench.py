import json
import math

import pytest

from llm_dynamics_kit.copying.bench import BENCHMARK, SYNTHETIC, condition_tokens
from shared.benchmarks import run_benchmark


@pytest.mark.slow
def test_quick_profile_writes_results(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "copying" and data["profile"] == "quick"
    assert {(row["dataset"], row["arm"]) for row in data["rows"]} == {
        ("stdlib", "vanilla"), ("stdlib", "batch_2B"), (SYNTHETIC, "vanilla")}
    for row in data["rows"]:
        assert 0.0 <= row["max_copy_acc"] <= 1.0 and row["steps"] == 30
        assert row["batch_size"] == (4 if row["arm"] == "vanilla" else 8)
        if row["dataset"] == "stdlib":
            assert row["val_loss"] < 7.0
    claims = {c["id"]: c for c in data["claims"]}
    assert claims["copying-1-delayed-stdlib"]["verdict"] in {"untestable", "not_reproduced", "direction_only",
                                                             "reproduced"}
    assert "copying-2-steps-stdlib" in claims and "copying-2-steps-synthetic" not in claims  # one arm: no claim 2
    assert [c["id"] for c in data["controls"]] == ["copying-pos-synthetic"]
    assert data["summary"] and any(n.startswith("[stdlib corpus (paper's setting)] claim 2") for n in data["notes"])
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()
    # identical initial weights across batch sizes: both arms start from the same step-0 evaluation
    first = {row["arm"]: row["initial_copy_gold_logprob"] for row in data["rows"] if row["dataset"] == "stdlib"}
    assert math.isfinite(first["vanilla"]) and first["vanilla"] == first["batch_2B"]


def test_synthetic_condition_is_repeated_random_spans_with_text_gaps():
    from types import SimpleNamespace

    import numpy as np

    text = (np.arange(20_000) % 300 + 1).astype(np.uint16)
    data = SimpleNamespace(train=text, vocab_size=512)
    assert condition_tokens("stdlib", data) is data.train
    stream = condition_tokens(SYNTHETIC, data)
    assert stream.dtype == np.uint16 and len(stream) == 1_000_000 and 0 not in set(stream[:50_000].tolist())
    # text appears only in the gaps (0-8 tokens after each 10-24-token span): a small share of the stream
    assert 0.02 < np.mean(np.diff(stream[:50_000].astype(int)) == 1) < 0.3
    # and it rewards copying: 4-grams recur within 128 tokens, unlike in the text itself
    from llm_dynamics_kit.copying.corpus import repeat_fraction

    assert repeat_fraction(stream[:20_000], window=128) > 0.1 > repeat_fraction(text[:20_000], window=128)
    assert condition_tokens(SYNTHETIC, data)[:1000].tolist() == stream[:1000].tolist()  # deterministic


def test_full_profile_is_sized_for_2e7_tokens_on_the_python_sources():
    from llm_dynamics_kit.copying.bench import PROFILES, _arm_settings, _plan

    prof = PROFILES["full"]
    assert prof.corpus == "pysrc" and prof.max_bytes is None and prof.log_grid > 0
    assert prof.steps * prof.batch * prof.seq_len >= 2e7 and (prof.n_layers, prof.d_model, prof.seq_len) == (4, 128, 256)
    batches = {arm: _arm_settings(arm, prof)[0] for arm in prof.arms}
    assert batches == {"vanilla": 32, "batch_half": 16, "batch_quarter": 8, "attn_dropout": 8, "weight_decay": 8}
    assert _arm_settings("attn_dropout", prof)[1:] == (0.1, 0.0) and _arm_settings("weight_decay", prof)[1:] == (0.0, 0.1)
    plan = _plan(prof)
    assert [name for name, _, _ in plan] == ["pysrc"]  # the tracker controls are llm.copying_controls
    assert plan[0][1].corpus == "pysrc" and plan[0][1].tokenizer_bytes == 20_000_000


def test_an_interrupted_run_resumes_mid_run_from_its_checkpoint(tmp_path, isolated_cache, monkeypatch):
    """A run stopped between checkpoints continues from the latest one and ends as the uninterrupted run."""
    import dataclasses

    from llm_dynamics_kit.copying import bench
    from llm_dynamics_kit.copying.track import CopyingTracker

    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    prof = dataclasses.replace(bench.PROFILES["quick"], steps=20, eval_every=5, checkpoint_every=10)
    (dataset, data_cfg, _), *_ = bench._plan(prof)
    reference, ref_records = bench._train_arm(dataset, "vanilla", 0, data_cfg, prof)

    original = CopyingTracker.on_step

    def stop_at_15(self, trainer, metrics):
        original(self, trainer, metrics)
        if trainer.step == 15:
            raise KeyboardInterrupt  # the session ends between the checkpoints at 10 and 20

    run_dir = tmp_path / "run"
    monkeypatch.setattr(CopyingTracker, "on_step", stop_at_15)
    with pytest.raises(KeyboardInterrupt):
        bench._train_arm(dataset, "vanilla", 0, data_cfg, prof, run_dir)
    monkeypatch.setattr(CopyingTracker, "on_step", original)
    row, records = bench._train_arm(dataset, "vanilla", 0, data_cfg, prof, run_dir)
    assert row["resumed_from_step"] == 10 and reference["resumed_from_step"] == 0
    assert [r["step"] for r in records] == [r["step"] for r in ref_records] == [0, 5, 10, 15, 20]
    for key in ("train_loss", "copy_gold_logprob", "copy_token_acc"):
        assert [r[key] for r in records] == pytest.approx([r[key] for r in ref_records], abs=1e-6), key
    assert row["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-6)
