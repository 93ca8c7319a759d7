import json

from click.testing import CliRunner

from recsys_kit.cli import group


def test_samplers_command_lists_every_family():
    result = CliRunner().invoke(group, ["negsample-samplers"])
    assert result.exit_code == 0
    for family in ("static", "dynamic", "adversarial", "reweighting", "knowledge"):
        assert family in result.output


def test_bad_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(group, ["negsample-bench", "--samplers", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown sampler" in unknown.output
    missing = runner.invoke(group, ["negsample-bench", "--data-path", str(tmp_path), "--dataset", "mine",
                                    "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "mine.inter" in missing.output
    model = runner.invoke(group, ["negsample-bench", "--models", "SASRec", "--out", str(tmp_path)])
    assert model.exit_code == 2 and "unsupported model" in model.output


def test_bench_command_on_a_user_dataset(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERKITS_WORKERS", "1")  # tiny runs: worker start-up would cost more than it saves
    out = tmp_path / "out"
    result = CliRunner().invoke(group, [
        "negsample-bench", "--dataset", "tiny", "--data-path", str(tiny_dataset), "--models", "BPR",
        "--samplers", "dns,popularity", "--settings", "all_positive,low_ratings_negative", "--seeds", "2",
        "--epochs", "2", "--eval-step", "2", "--embedding-size", "8", "--profile", "quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "recsys" / "negsampling.json").read_text())
    arms = {(a["setting"], a["sampler"]) for a in data["aggregate"]}
    assert ("low_ratings_negative", "predefined") in arms and ("all_positive", "uniform") in arms
    assert all(a["metrics"]["test_ndcg@20"]["n"] == 2 for a in data["aggregate"])
    assert any(f["path"].endswith("accuracy_vs_time.png") for f in data["figures"])
    assert (out / "recsys" / data["figures"][0]["path"]).is_file()
