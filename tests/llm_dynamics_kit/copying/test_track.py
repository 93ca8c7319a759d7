import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from llm_dynamics_kit.copying.track import (
    TASK_FILE,
    TRACK_FILE,
    CopyingTracker,
    find_checkpoints,
    onsets,
    read_records,
)
from llm_dynamics_kit.model import Transformer
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.errors import DataError


def test_onsets_known_answers():
    steps = [0, 100, 200, 300, 400, 500]
    loss = [None, 5.0, 3.3, 3.05, 3.0, 3.0]  # 90 % of the 2.0 drop (≤ 3.2) is first reached at step 300
    acc = [0.0, 0.0, 0.02, 0.1, 0.6, 0.8]
    layer_max = [[0, 0], [0, 0], [0.4, 0], [0.5, 0.1], [0.5, 0.35], [0.6, 0.5]]
    records = [{"step": s, "tokens": 10 * s, "train_loss": lo, "copy_acc": a, "induction_layer_max": m}
               for s, lo, a, m in zip(steps, loss, acc, layer_max)]
    result = onsets(records)
    assert result.loss_step == 300 and result.loss_tokens == 3000
    assert result.copy_step == 400 and result.copy_tokens == 4000  # first acc >= 0.5 * 0.8
    assert result.ratio == pytest.approx(400 / 300)
    assert result.abruptness == pytest.approx(0.5 / 0.8)
    assert result.layer_steps == [200, 400] and result.layer_rho == pytest.approx(1.0)
    flat = onsets([{**r, "copy_acc": 0.01} for r in records])
    assert math.isnan(flat.copy_step) and math.isnan(flat.ratio)  # no copying: no onset, not a fake one
    assert math.isnan(result.token_step)  # no per-token accuracies recorded: no token onset
    token = [0.002, 0.003, 0.01, 0.04, 0.12, 0.13]  # the per-token jump: first >= 0.5 * 0.13 at step 400
    tokened = onsets([{**r, "copy_acc": 0.01, "copy_token_acc": t} for r, t in zip(records, token)])
    assert tokened.token_step == 400 and tokened.token_tokens == 4000 and tokened.max_copy_token_acc == 0.13
    assert math.isnan(tokened.copy_step)  # exact match never reached its threshold
    chance = onsets([{**r, "copy_token_acc": 0.003} for r in records])
    assert math.isnan(chance.token_step)  # chance-level token accuracy is not an onset
    with pytest.raises(DataError):
        onsets([])


@pytest.fixture
def tracked_run(tmp_path, tiny_model_config, pattern_tokens):
    from llm_dynamics_kit.copying.evaluate import default_task
    from llm_dynamics_kit.copying.task import token_pool

    config = tiny_model_config
    config.max_seq_len = 64
    model = Transformer(config)
    task = default_task(model, n_samples=4, seed=1, vocab_pool=token_pool(100), prefix_len=4, suffix_len=2)
    tracker = CopyingTracker(task, eval_every=5, induction={"half_len": 16, "n_sequences": 4,
                                                            "vocab_pool": token_pool(100)},
                             icl_tokens=pattern_tokens[:2000])
    train = TrainConfig(steps=10, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=2, eval_every=0, log_every=1,
                        checkpoint_every=5, keep_checkpoints=0, device="cpu", cpu_threads=1)
    run = tmp_path / "run"
    Trainer(model, pattern_tokens, None, train, out_dir=run, callbacks=[tracker]).fit()
    return run, tracker


def test_tracker_records_steps_tokens_and_scores(tracked_run):
    run, tracker = tracked_run
    records = read_records(run / TRACK_FILE)
    assert [r["step"] for r in records] == [0, 5, 10]
    assert [r["tokens"] for r in records] == [0, 5 * 4 * 32, 10 * 4 * 32]
    assert records[0]["train_loss"] is None and records[1]["train_loss"] > 0
    assert np.array(records[2]["induction"]).shape == (2, 2)
    assert all(0 <= r["copy_acc"] <= 1 for r in records)
    assert all(math.isfinite(r["icl_score"]) for r in records)
    assert (run / TASK_FILE).is_file()
    assert [step for step, _ in find_checkpoints(run)] == [5, 10]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("copy_acc" in m for m in metrics)


def test_copying_track_cli_reproduces_the_callback(tracked_run):
    from llm_dynamics_kit.cli import group

    run, tracker = tracked_run
    out = run / "sweep"
    result = CliRunner().invoke(group, ["copying-track", "--checkpoints", str(run), "--sequences", "4",
                                        "--half-len", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["checkpoints"] == 2
    swept = read_records(out / "copying.jsonl")
    by_step = {r["step"]: r for r in tracker.records}
    for record in swept:  # the same fixed task (copy_task.json) gives the same numbers
        assert record["copy_acc"] == by_step[record["step"]]["copy_acc"]
        assert record["copy_gold_logprob"] == pytest.approx(by_step[record["step"]]["copy_gold_logprob"], rel=1e-4)
        assert record["tokens"] == by_step[record["step"]]["tokens"]
    assert (out / "induction_heatmap.png").is_file() and (out / "copy_and_loss_vs_steps.png").is_file()


def test_cli_errors_are_one_line(tmp_path):
    from llm_dynamics_kit.cli import group

    result = CliRunner().invoke(group, ["copying-track", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2 and "no checkpoints" in result.output
    result = CliRunner().invoke(group, ["copying", "eval", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "error:" in result.output


def test_sweep_over_hf_trainer_checkpoints(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llm_dynamics_kit.copying.task import make_copy_task
    from llm_dynamics_kit.copying.track import track_checkpoints

    torch.manual_seed(0)
    for step in (10, 5):
        model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                           bos_token_id=0, eos_token_id=0))
        model.save_pretrained(tmp_path / f"checkpoint-{step}")
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"num_input_tokens_seen": 7 * step}))
    task = make_copy_task(np.arange(1, 64), n_seqs=2, prefix_len=4, suffix_len=2, n_samples=3, seed=0)
    records = track_checkpoints(tmp_path, task, {"half_len": 8, "n_sequences": 2}, out=tmp_path / "t.jsonl")
    assert [(r["step"], r["tokens"]) for r in records] == [(5, 35), (10, 70)]
    assert np.array(records[0]["induction"]).shape == (1, 2) and read_records(tmp_path / "t.jsonl") == records
