import json

from click.testing import CliRunner

from shared.cli import root


def test_train_eval_generate_from_the_command_line(tiny_corpus_dir, tmp_path, isolated_cache):
    out = tmp_path / "run"
    args = ["llm", "train", "--out", str(out), "--corpus", str(tiny_corpus_dir),
            "--set", "data.vocab_size=300", "--set", "data.valid_fraction=0.3",
            "--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
            "--set", "model.max_seq_len=16", "--set", "model.ffn.hidden=32",
            "--set", "train.steps=3", "--set", "train.batch_size=2", "--set", "train.seq_len=16",
            "--set", "train.eval_every=3", "--set", "train.eval_batches=1", "--set", "train.device=cpu"]
    result = CliRunner().invoke(root, args)
    assert result.exit_code == 0, result.output
    assert (out / "config.yaml").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads(result.output.strip().splitlines()[-1])["step"] == 3
    evaluated = CliRunner().invoke(root, ["llm", "eval", str(out), "--batches", "1"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output.strip().splitlines()[-1])["val_loss"] > 0
    sample = CliRunner().invoke(root, ["llm", "generate", str(out), "--prompt", "The", "--tokens", "4"])
    assert sample.exit_code == 0 and sample.output.startswith("The")


def test_user_mistakes_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(root, ["llm", "train", "--out", str(tmp_path), "--corpus", str(tmp_path / "none")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(root, ["llm", "eval", str(tmp_path)])
    assert result.exit_code == 2 and "neither a saved model" in result.output
    result = CliRunner().invoke(root, ["llm", "hmoe", "sizes", "--strategy", "hybrid"])
    assert result.exit_code == 0 and json.loads(result.output) == [64, 64, 64, 64, 128, 128, 256, 256]
