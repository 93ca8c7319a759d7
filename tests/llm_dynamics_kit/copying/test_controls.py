"""Controls of the copying tracker (issue 24): induction vs a fixed-offset copier vs no copying at all.

Small versions of the benchmark's controls, each trained in seconds on one CPU thread.
"""

import math

import numpy as np
import pytest
import torch

from llm_dynamics_kit.copying.controls import fixed_repeats, shuffled_stream, variable_repeats
from llm_dynamics_kit.copying.evaluate import default_task
from llm_dynamics_kit.copying.track import CopyingTracker, onsets
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.errors import ConfigError

POOL = np.arange(1, 128)


def _train(source, steps: int, seq_len: int, eval_steps, init_std: float = 0.02, lr: float = 3e-3, seed: int = 0):
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(vocab_size=128, d_model=32, n_layers=2, n_heads=2, max_seq_len=64,
                                    init_std=init_std, ffn=FFNConfig(kind="dense", hidden=64)))
    task = default_task(model, n_samples=8, seed=5, vocab_pool=POOL, prefix_len=4, suffix_len=2)
    tracker = CopyingTracker(task, eval_steps=eval_steps, at_start=False,
                             induction={"half_len": 32, "n_sequences": 16, "vocab_pool": POOL})
    config = TrainConfig(steps=steps, batch_size=16, seq_len=seq_len, lr=lr, warmup_steps=20, weight_decay=0.0,
                         eval_every=0, log_every=10**6, device="cpu", cpu_threads=1, seed=seed)
    Trainer(model, source, None, config, callbacks=[tracker]).fit()
    return tracker.records


def test_fixed_offset_copier_is_not_read_as_induction():
    # every training sequence is a 32-token block repeated once: attending 31 positions back solves it
    records = _train(fixed_repeats(32, 16, POOL, seed=0), steps=250, seq_len=63, eval_steps=[100, 250])
    last = records[-1]
    geometries = [tuple(g) for g in last["probe_geometries"]]
    assert geometries[0] == (32, 0)  # the trained geometry (the paper's probe at this context)
    assert last["repeat_acc"][0] > 0.9  # it copies perfectly there ...
    assert max(last["induction_layer_max"]) > 0.5  # ... and the paper's single-geometry score reads a head
    assert max(last["repeat_acc"][1:]) < 0.2  # but not at the other repeat lengths / positions
    assert max(max(row) for row in last["induction_min"]) < 0.3
    summary = onsets(records)
    assert all(math.isnan(s) for s in summary.layer_steps)  # so no induction-head onset is reported


def test_shuffled_token_text_never_copies(pattern_tokens):
    text = np.concatenate([pattern_tokens[:3000] % 127 + 1, np.arange(1, 128)]).astype(np.int64)
    records = _train(shuffled_stream(text, seed=0), steps=150, seq_len=63, eval_steps=[150])
    last = records[-1]
    assert max(last["repeat_acc"]) < 0.1 and last["copy_acc"] == 0.0
    summary = onsets(records)
    assert math.isnan(summary.copy_step) and all(math.isnan(s) for s in summary.layer_steps)


def test_control_tasks_have_the_stated_structure():
    batch = next(fixed_repeats(5, 3, POOL))
    assert batch.shape == (3, 10) and np.array_equal(batch[:, :5], batch[:, 5:])
    for batch in itertools_take(variable_repeats(40, 4, POOL, lengths=(3, 9), seed=1), 5):
        assert batch.shape == (4, 41)
        for row in batch:  # some segment of 3-9 tokens occurs twice without overlap
            assert any(_repeats(row, k) for k in range(3, 10))
    stream = np.arange(100)
    assert sorted(shuffled_stream(stream).tolist()) == stream.tolist()
    with pytest.raises(ConfigError, match="two copies"):
        next(variable_repeats(10, 2, POOL, lengths=(4, 8)))


def test_benchmark_positive_control_rows_recur_by_chance_unless_asked_not_to():
    """ctrl_variable trains on rows drawn with replacement (the variant that forms induction, controls_bench's
    docstring); distinct_rows=True gives rows whose only recurrence is the copy."""
    from llm_dynamics_kit.copying.controls_bench import CONTROL_MODEL, PROFILES, repeat_control_source

    assert not PROFILES["full"].distinct_rows and PROFILES["full"].copied_context == 2
    shape = (CONTROL_MODEL["batch"], CONTROL_MODEL["seq_len"] + 1)
    source, seq_len = repeat_control_source("ctrl_variable", POOL, seed=0)
    batch = next(source)
    assert seq_len == CONTROL_MODEL["seq_len"] and batch.shape == shape
    assert any(np.unique(row, return_counts=True)[1].max() > 2 for row in batch)  # chance recurrences
    source, _ = repeat_control_source("ctrl_variable", POOL, seed=0, distinct_rows=True)
    assert all(np.unique(row, return_counts=True)[1].max() == 2 for row in next(source))
    fixed, fixed_len = repeat_control_source("ctrl_fixed", POOL, seed=0)
    assert fixed_len == CONTROL_MODEL["seq_len"] - 1 and next(fixed).shape == (CONTROL_MODEL["batch"], fixed_len + 1)
    with pytest.raises(ConfigError, match="not a repeat control"):
        repeat_control_source("ctrl_shuffled", POOL, seed=0)


class _TwoTokenInduction:
    """The planted circuit, but it predicts a copy only once two tokens match (a wrong token 0 after one match)."""

    @staticmethod
    def wrap():
        from .planted import PlantedInductionModel

        class Model(PlantedInductionModel):
            def logits(self, ids):
                out = super().logits(ids).clone()
                t = ids.shape[1]
                earlier = torch.ones(t, t, dtype=torch.bool).tril(-1)
                same = (ids[:, :, None] == ids[:, None, :]) & earlier  # (B, t, s): s < t holds the same token
                prev = torch.zeros_like(same)
                prev[:, 1:, 1:] = ids[:, :-1, None] == ids[:, None, :-1]  # and so did the tokens before t and s
                one_only = same.any(-1) & ~(same & prev).any(-1)
                out[one_only] = 0.0
                out[..., 0] = torch.where(one_only, 100.0, out[..., 0])
                return out

        return Model(vocab_size=512, max_len=128)


def test_copied_context_skips_the_ambiguous_second_copy_token():
    from llm_dynamics_kit.copying.induction import probe_scores

    pool, probes = np.arange(1, 512), [(16, 2), (9, 5)]  # lead-ins: the planted circuit needs a token before
    model = _TwoTokenInduction.wrap()
    one = probe_scores(model, probes, n_sequences=8, vocab_pool=pool, distinct=True)
    two = probe_scores(model, probes, n_sequences=8, vocab_pool=pool, distinct=True, copied_context=2)
    # wrong exactly at the copy's 2nd token: one scored token in 15 (length 16) and in 8 (length 9)
    np.testing.assert_allclose(one.repeat_acc, [14 / 15, 7 / 8], atol=1e-9)
    np.testing.assert_allclose(two.repeat_acc, [1.0, 1.0])
    assert two.repeat_acc_first.tolist() == [0.0, 0.0] == one.repeat_acc_first.tolist()
    record = two.as_record()
    assert record["repeat_copied_context"] == 2 and record["repeat_acc_first"] == [0.0, 0.0]
    from .planted import PlantedInductionModel  # the one-token circuit gets the 2nd token right

    assert probe_scores(PlantedInductionModel(512, 128), probes, n_sequences=8, vocab_pool=pool, distinct=True,
                        copied_context=2).repeat_acc_first.tolist() == [1.0, 1.0]
    for bad in (0, 9):
        with pytest.raises(ConfigError, match="copied_context"):
            probe_scores(model, probes, n_sequences=2, vocab_pool=pool, copied_context=bad)


def test_distinct_variable_repeats_recur_only_in_the_copy():
    """distinct=True: every recurring token belongs to the copied segment, so one matching token means a copy."""
    for row in next(variable_repeats(64, 8, POOL, lengths=(8, 32), seed=3, distinct=True)):
        values, counts = np.unique(row, return_counts=True)
        repeated = int((counts == 2).sum())
        assert counts.max() == 2 and 8 <= repeated <= 32 and _repeats(row, repeated)
    with pytest.raises(ConfigError, match="seq_len \\+ 1"):
        next(variable_repeats(64, 2, np.arange(1, 40), lengths=(8, 32), distinct=True))


def itertools_take(it, n):
    return [next(it) for _ in range(n)]


def _repeats(row, k):
    seen = {}
    for i in range(len(row) - k + 1):
        key = tuple(row[i:i + k])
        if key in seen and i >= seen[key] + k:
            return True
        seen.setdefault(key, i)
    return False


def test_planted_induction_circuit_reads_as_induction_at_every_probe():
    # positive control of the reading (the trained version is the benchmark's ctrl_variable): a hand-built
    # previous-token head (layer 0) + induction head (layer 1) copies at every repeat length and position
    from llm_dynamics_kit.copying.track import evaluate_model

    from .planted import PlantedInductionModel

    model = PlantedInductionModel(vocab_size=512, max_len=128)
    pool = np.arange(1, 512)
    task = default_task(model, n_samples=4, seed=0, vocab_pool=pool, prefix_len=4, suffix_len=2)
    record = evaluate_model(model, task, induction={"half_len": 64, "n_sequences": 8, "vocab_pool": pool})
    assert [tuple(g) for g in record["probe_geometries"]] == [(64, 0), (35, 22), (17, 37)]
    # a one-token induction copier: repeated pool tokens inside a sequence cap it below 1 (the analytic ceiling)
    from llm_dynamics_kit.copying.evaluate import one_token_induction_ceiling

    assert min(record["repeat_acc"]) > 0.85 and record["copy_acc"] >= one_token_induction_ceiling(task) - 0.05
    robust = np.array(record["induction_min"])
    assert robust[1, 0] > 0.9 and robust[0].max() < 0.1  # the induction head is in layer 1, and only there
    assert np.array(record["previous_token"])[0, 0] > 0.9  # with its previous-token head below it
    layer_steps = onsets([{**record, "step": 0, "train_loss": None}]).layer_steps
    assert math.isnan(layer_steps[0]) and layer_steps[1] == 0  # the tracker reads layer 1's head, not layer 0


def test_evaluate_model_adapts_the_model_once(monkeypatch, tiny_model_config):
    from llm_dynamics_kit.copying import adapters, evaluate, icl, induction, track

    calls = []
    real = adapters.as_adapter

    def counting(model):
        calls.append(type(model).__name__)
        return real(model)

    for module in (adapters, evaluate, icl, induction, track):
        monkeypatch.setattr(module, "as_adapter", counting)
    tiny_model_config.max_seq_len = 64
    model = Transformer(tiny_model_config)
    pool = np.arange(1, 100)
    task = default_task(model, n_samples=2, seed=0, vocab_pool=pool, prefix_len=4, suffix_len=2)
    calls.clear()
    track.evaluate_model(model, task, induction={"half_len": 16, "n_sequences": 2, "vocab_pool": pool},
                         icl_tokens=np.arange(200) % 100)
    assert calls[0] == "Transformer"  # wrapped once where the model enters ...
    assert all(name.endswith("Adapter") for name in calls[1:])  # ... every metric then receives the adapter


def test_tracker_controls_are_scored_by_rule():
    from llm_dynamics_kit.copying.claims import evaluate, evaluate_controls

    base = {"arm": "control", "seed": 0, "steps": 3000, "probe_geometries": [[32, 0], [19, 11], [9, 21]],
            "copy_step": float("nan"), "max_copy_acc": 0.0}
    rows = [
        {**base, "dataset": "ctrl_variable", "final_heldout_repeat_acc": 0.95, "copied_context": 2,
         "final_heldout_repeat_acc_first": 0.3, "final_repeat_acc": [0.99, 0.96, 0.95],
         "final_induction_min_max": 0.6, "induction_min_layer": 1, "final_previous_token_max": 0.8,
         "previous_token_layer": 0, "induction_onset_layer0": float("nan"), "induction_onset_layer1": 800},
        {**base, "dataset": "ctrl_fixed", "final_repeat_acc": [1.0, 0.0, 0.0], "final_induction_min_max": 0.02,
         "max_single_geometry_induction": 0.98, "induction_onset_layer0": float("nan"),
         "induction_onset_layer1": float("nan")},
        {**base, "dataset": "ctrl_shuffled", "final_repeat_acc": [0.01, 0.0, 0.02], "final_repeat_acc_min": 0.0,
         "induction_onset_layer0": float("nan"), "induction_onset_layer1": float("nan")},
    ]
    assert evaluate({"config": {}, "rows": rows}) == ([], [])  # llm.copying leaves its old ctrl rows alone
    claims, controls = evaluate_controls({"config": {}, "rows": rows})
    assert "from copy token 3 on" in controls[0]["expect"] and "one copied token in context: 0.3" in controls[0]["observed"]
    assert claims == [] and [(c["id"], c["passed"]) for c in controls] == [
        ("copying-pos-variable-repeats-seed0", True), ("copying-neg-fixed-offset-seed0", True),
        ("copying-neg-shuffled-seed0", True)]
    flipped = [{**rows[0], "previous_token_layer": 1}, {**rows[1], "induction_onset_layer1": 100},
               {**rows[2], "final_repeat_acc": [0.5, 0.0, 0.0]}]
    assert not any(c["passed"] for c in evaluate_controls({"config": {}, "rows": flipped})[1])
    untrained = {**rows[1], "final_repeat_acc": [0.05, 0.0, 0.0]}  # learned nothing: the negative shows nothing
    assert not evaluate_controls({"config": {}, "rows": [untrained]})[1][0]["passed"]


def test_log_grid():
    from llm_dynamics_kit.copying.track import log_grid

    grid = log_grid(2500, 16)
    assert grid[0] == 10 and grid[-1] == 2500 and grid == sorted(set(grid)) and 12 <= len(grid) <= 16
    assert log_grid(5, 16, first=10) == [5]
    with pytest.raises(ConfigError):
        log_grid(0)


@pytest.mark.slow
def test_controls_benchmark_quick_profile_writes_rows_figures_and_verdicts(tmp_path, isolated_cache, monkeypatch):
    import json

    from llm_dynamics_kit.copying.controls_bench import BENCHMARK
    from shared.benchmarks import run_benchmark

    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    data = json.loads(run_benchmark(BENCHMARK, profile="quick", out=tmp_path).read_text())
    assert data["benchmark"] == "copying_controls" and data["claims"] == []
    assert sorted(r["dataset"] for r in data["rows"]) == ["ctrl_fixed", "ctrl_shuffled", "ctrl_variable"]
    assert [c["id"] for c in data["controls"]] == ["copying-pos-variable-repeats-seed0", "copying-neg-fixed-offset-seed0",
                                                  "copying-neg-shuffled-seed0"]
    positive = next(r for r in data["rows"] if r["dataset"] == "ctrl_variable")
    assert positive["copied_context"] == 2 and positive["steps"] == 60 and 0 <= positive["final_heldout_repeat_acc"] <= 1
    assert not data["controls"][0]["passed"]  # 60 steps learn no induction: the positive control must say so
    assert {f["path"] for f in data["figures"]} == {"copying_controls_positive.png",
                                                    "copying_controls_positive_induction.png"}
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()
