from shared.report import build_report, format_stat
from shared.results import write_results
from tests.shared.test_results import sample_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_renders_table_and_headline_figure(tmp_path):
    write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=2)
    report = build_report(tmp_path)
    text = report.read_text()
    assert "### LLM training dynamics" in text
    assert "#### Demo benchmark" in text
    assert "| method | acc | loss |" in text
    assert "0.6 ± 0.14" in text  # mean ± sample std of method a
    assert "b beats a." in text
    figure = tmp_path / "llm" / "demo_headline.png"
    assert figure.read_bytes()[:8] == PNG_MAGIC
    assert "(llm/demo_headline.png)" in text
    assert "(llm/demo_curve.png)" in text and "*a curve*" in text


def test_empty_results_folder_says_so(tmp_path):
    assert "No benchmark results yet" in build_report(tmp_path).read_text()


def test_format_stat_single_seed_and_nonfinite():
    assert format_stat({"mean": 1.23456, "std": 0.0, "n": 1}) == "1.235"
    assert format_stat({"n": 0, "n_nonfinite": 2}) == "non-finite ×2"


def test_format_stat_hides_float_noise_spread():
    assert format_stat({"mean": 0.04573, "std": 8.5e-18, "n": 3}) == "0.04573 ± 0"


def test_scoreboard_heads_the_report_with_counts_rows_controls_and_stale_files(tmp_path):
    import json

    from shared.report import update_readme
    from tests.shared.test_results import demo_score

    write_results(sample_result(), out=tmp_path, profile="quick", seeds=[0, 1], wall_time_s=2, score=demo_score)
    # a full-profile run of the same benchmark is the stronger one: its row is the one shown
    write_results(sample_result(), out=tmp_path / "full", profile="full", seeds=[0, 1], wall_time_s=2,
                  score=demo_score)
    stale = tmp_path / "safety" / "old.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"schema_version": 1, "benchmark": "old"}))
    text = build_report(tmp_path).read_text()
    board = text.split("## Per benchmark")[0]
    assert text.index("## Claims scoreboard") < text.index("#### Demo benchmark")
    assert "1 claims: 0 reproduced · 1 direction only · 0 not reproduced · 0 untestable" in board
    assert "Controls: 0 passed of 0 run" in board
    assert board.count("| demo | b beats a |") == 1 and "| full |" in board
    assert "| demo | none yet | none yet |" in board
    assert "`safety/old.json`: stale schema — rerun" in board
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- scoreboard:begin -->\nold table\n<!-- scoreboard:end -->\nrest\n")
    update_readme(readme, tmp_path)
    new = readme.read_text()
    assert "old table" not in new and "| demo | b beats a |" in new and new.endswith("rest\n")
