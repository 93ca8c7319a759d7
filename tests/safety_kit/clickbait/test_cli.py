import json

from click.testing import CliRunner

from safety_kit.cli import group as safety_group
from safety_kit.clickbait.synthetic import synthetic_headlines


def write_corpus(path, n=160, seed=0):
    texts, y, _ = synthetic_headlines(n, seed=seed)
    lines = [json.dumps({"id": f"p{i}", "text": t, "label": int(label)}) for i, (t, label) in enumerate(zip(texts, y))]
    path.write_text("\n".join(lines) + "\n")
    return y


def test_train_eval_predict_round_trip(tmp_path):
    runner = CliRunner()
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    write_corpus(train, 240, 0)
    write_corpus(test, 120, 1)
    model = tmp_path / "model.pkl"
    result = runner.invoke(safety_group, ["clickbait", "train", str(train), "--model-out", str(model), "--set",
                                          "text_model=lexical", "--set", "max_epochs=6", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert model.is_file() and model.with_suffix(".yaml").is_file()
    result = runner.invoke(safety_group, ["clickbait", "eval", str(test), "--model", str(model)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["n"] == 120 and metrics["accuracy"] > 0.7  # synthetic cues are learnable
    # predict: unlabelled rows, one without text -> skipped with a warning (default policy)
    rows = [{"id": "a", "text": "You won't believe what the striker did"}, {"id": "b", "text": ""},
            {"id": "c", "text": "The senate passes the budget bill on tuesday"}]
    data = tmp_path / "new.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores.csv"
    result = runner.invoke(safety_group, ["clickbait", "predict", str(data), "--model", str(model), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped 1 of 3" in result.output and "posts/s" in result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "id,score,is_clickbait" and [line.split(",")[0] for line in lines[1:]] == ["a", "c"]
    scores = {line.split(",")[0]: float(line.split(",")[1]) for line in lines[1:]}
    assert scores["a"] > scores["c"]
    # the same rows with --on-error raise: one-line error, exit code 2, the earlier scores file is untouched
    before = out.read_text()
    result = runner.invoke(safety_group, ["clickbait", "predict", str(data), "--model", str(model), "--output", str(out),
                                          "--on-error", "raise"])
    assert result.exit_code == 2 and "row 1 has no text" in result.output
    assert out.read_text() == before


def test_user_mistakes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(safety_group, ["clickbait", "train", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "x"}) + "\n")
    result = runner.invoke(safety_group, ["clickbait", "predict", str(data), "--model", str(junk), "--output",
                                          str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "not a clickbait model" in result.output
    result = runner.invoke(safety_group, ["clickbait", "train", str(data), "--set", "model=svm"])
    assert result.exit_code == 2 and "model must be" in result.output
