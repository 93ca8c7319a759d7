import json

import torch
from click.testing import CliRunner

from shared.cli import root

TINY = ["--set", "data.vocab_size=300", "--set", "data.valid_fraction=0.3", "--set", "model.d_model=32",
        "--set", "model.n_layers=1", "--set", "model.n_heads=2", "--set", "model.max_seq_len=16",
        "--set", "model.ffn.hidden=64", "--set", "model.ffn.n_experts=4", "--set", "model.ffn.top_k=2",
        "--set", "train.steps=12", "--set", "train.batch_size=2", "--set", "train.seq_len=16",
        "--set", "train.eval_every=6", "--set", "train.eval_batches=1", "--set", "train.device=cpu",
        "--set", "train.warmup_steps=2", "--set", "monitor_every=4"]
SCHEDULE = ["--set", "ssd.n_experts=4", "--set", "ssd.top_k=2", "--set", "ssd.monitor_every=4",
            "--set", "ssd.warmup_dense_steps=4", "--set", "ssd.threshold=-1", "--set", "ssd.sparse_steps=4",
            "--set", "ssd.final_dense_steps=2", "--set", "ssd.kmeans_iters=3", "--set", "ssd.min_recall=0"]


def test_ssd_train_then_moefy_and_sparse_bench(tiny_corpus_dir, tmp_path, isolated_cache):
    out = tmp_path / "run"
    result = CliRunner().invoke(root, ["llm", "ssd", "train", "--out", str(out), "--corpus", str(tiny_corpus_dir),
                                       *TINY, *SCHEDULE])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["step"] == 12 and report["sparse_phases"] == [{"phase": "sparse", "start": 8, "end": 10}]
    assert (out / "ssd_phases.json").is_file() and (out / "monitor.png").is_file()
    assert (out / "ssd_config.yaml").is_file()
    moe_dir = tmp_path / "moe"
    result = CliRunner().invoke(root, ["llm", "moefy", str(out), "--experts", "4", "--k", "0.5,1",
                                       "--batches", "1", "--iters", "3", "--out", str(moe_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert abs(report["val_loss_moe_1.0"] - report["val_loss_dense"]) < 1e-4  # k = E is the dense model
    assert report["val_loss_moe_0.5"] > 0
    from llm_dynamics_kit.model import Transformer

    reloaded = Transformer.from_pretrained(moe_dir)
    assert all(f.mode == "sparse" and f.top_k == 2 for f in reloaded.ffns)
    result = CliRunner().invoke(root, ["llm", "sparse-bench", str(moe_dir), "--d-model", "64", "--experts", "4",
                                       "--k", "0.5", "--repeats", "2", "--json-out", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "s.json").read_text())
    assert {(r["scope"], r["shape"]) for r in rows} == {("ffn", "decode"), ("ffn", "prefill"), ("model", "decode"),
                                                        ("model", "prefill")}
    assert all(r["tokens_per_s"] > 0 for r in rows)


def test_moefy_hf_folder_and_user_errors(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2, n_inner=64,
                               activation_function="relu")).save_pretrained(tmp_path / "gpt2")
    result = CliRunner().invoke(root, ["llm", "moefy", str(tmp_path / "gpt2"), "--hf", "--experts", "4",
                                       "--k", "0.5", "--out", str(tmp_path / "labels")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["max_abs_diff_k_equals_e"] < 1e-4 and 0 < report["top1_agreement_0.5"] <= 1
    assert len(json.loads((tmp_path / "labels" / "expert_labels.json").read_text())[0]) == 64
    result = CliRunner().invoke(root, ["llm", "moefy", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "error:" in result.output and "neither a saved model" in result.output
    GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2, n_inner=64,
                               activation_function="silu")).save_pretrained(tmp_path / "silu")
    result = CliRunner().invoke(root, ["llm", "moefy", str(tmp_path / "silu"), "--hf", "--experts", "4"])
    assert result.exit_code == 2 and "transformer.h.0.mlp" in result.output
    result = CliRunner().invoke(root, ["llm", "ssd", "train", "--set", "ssd.top_k=40"])
    assert result.exit_code == 2 and "top_k" in result.output
    result = CliRunner().invoke(root, ["llm", "ssd", "config"])
    assert result.exit_code == 0 and "threshold: 0.8" in result.output
    # brief §8.2: batch 16 sequences; §2.3: recall@k ≥ ρ≈0.9 safety on the switch
    assert "batch_size: 16" in result.output and "min_recall: 0.9" in result.output
