import json

from click.testing import CliRunner

from recsys_kit.cli import group


def test_cli_end_to_end(tmp_path, isolated_cache):
    runner = CliRunner()
    sim = tmp_path / "sim.jsonl"
    r = runner.invoke(group, ["ecr", "simulate", str(sim), "--n-dialogues", "30"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(group, ["ecr", "annotate", str(sim), str(tmp_path / "emo.jsonl"), "--method", "teacher"])
    assert r.exit_code == 0, r.output
    first = json.loads((tmp_path / "emo.jsonl").read_text().splitlines()[0])
    assert isinstance(first["messages"][0]["emotion"], dict) and first["messages"][0]["emotion"]
    rec = tmp_path / "rec"
    r = runner.invoke(group, ["ecr", "train-rec", "--n-dialogues", "30", "--out", str(rec), "--set", "epochs=1",
                              "--set", "model.dim=32", "--set", "model.entity_dim=16"])
    assert r.exit_code == 0, r.output
    assert "AUC=" in r.output and (rec / "metrics.json").is_file() and (rec / "config.yaml").is_file()
    gen = tmp_path / "gen"
    r = runner.invoke(group, ["ecr", "train-gen", "--n-items", "5", "--epochs", "1", "--out", str(gen)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(group, ["ecr", "chat", "--rec", str(rec), "--gen", str(gen)],
                      input="I love comedy movies like Toy Story\nno, I hate horror\nquit\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("System:") == 2


def test_cli_user_errors_are_one_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(group, ["ecr", "annotate", str(tmp_path / "missing.jsonl"), str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
    r = runner.invoke(group, ["ecr", "train-rec", "--set", "nope=1"])
    assert r.exit_code == 2 and "unknown key" in r.output
    r = runner.invoke(group, ["ecr", "chat", "--rec", str(tmp_path)])
    assert r.exit_code == 2 and "train-rec" in r.output
