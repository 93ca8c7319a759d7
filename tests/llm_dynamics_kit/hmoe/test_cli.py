import json

import numpy as np
import yaml
from click.testing import CliRunner

from shared.cli import root


def test_config_train_and_analyze_an_hmoe_run(tiny_corpus_dir, tmp_path, isolated_cache):
    runner = CliRunner()
    config = tmp_path / "hmoe.yaml"
    made = runner.invoke(root, ["llm", "hmoe", "config", "hmoe_topk_pp", "--total", "64", "--out", str(config)])
    assert made.exit_code == 0, made.output
    ffn = yaml.safe_load(config.read_text())["model"]["ffn"]
    assert ffn["kind"] == "moe" and ffn["size_strategy"] == "arithmetic" and ffn["p_penalty_coef"] == 0.1
    out = tmp_path / "run"
    trained = runner.invoke(root, [
        "llm", "train", "--config", str(config), "--out", str(out), "--corpus", str(tiny_corpus_dir),
        "--set", "data.vocab_size=300", "--set", "data.valid_fraction=0.3", "--set", "model.d_model=16",
        "--set", "model.n_layers=1", "--set", "model.n_heads=2", "--set", "model.max_seq_len=16",
        "--set", "model.ffn.multiple_of=4", "--set", "train.steps=2", "--set", "train.batch_size=2",
        "--set", "train.seq_len=16", "--set", "train.eval_every=2", "--set", "train.eval_batches=1",
        "--set", "train.device=cpu"])
    assert trained.exit_code == 0, trained.output
    analyzed = runner.invoke(root, ["llm", "hmoe", "analyze", str(out), "--batches", "2"])
    assert analyzed.exit_code == 0, analyzed.output
    report = json.loads(analyzed.output.strip().splitlines()[-1])
    assert report["sizes"] == [[4, 4, 8, 8, 8, 8, 12, 12]]
    assert abs(sum(report["activation_fraction"][0]) - 2.0) < 1e-3
    # routing per user label: one class per validation token (-1 = skip)
    from llm_dynamics_kit.data import prepare_data
    from llm_dynamics_kit.train import RunConfig
    from shared.config import load_config

    valid = prepare_data(load_config(RunConfig, out / "config.yaml").data).valid
    labels = (np.asarray(valid) % 2).astype(np.int64)
    np.save(tmp_path / "labels.npy", labels)
    labelled = runner.invoke(root, ["llm", "hmoe", "analyze", str(out), "--batches", "2",
                                    "--labels", str(tmp_path / "labels.npy")])
    assert labelled.exit_code == 0, labelled.output
    by_label = json.loads(labelled.output.strip().splitlines()[-1])["by_label"]
    assert set(by_label) == {"0", "1"} and len(by_label["0"]["activated_hidden"]) == 1
    np.save(tmp_path / "short.npy", labels[:3])
    short = runner.invoke(root, ["llm", "hmoe", "analyze", str(out), "--labels", str(tmp_path / "short.npy")])
    assert short.exit_code != 0 and "one entry per token" in short.output
    dense = runner.invoke(root, ["llm", "hmoe", "config", "nonsense"])
    assert dense.exit_code == 2 and "unknown HMoE arm" in dense.output
