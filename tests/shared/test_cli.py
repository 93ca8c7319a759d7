import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from shared.cli import root

KITS = ["recsys", "llm", "safety", "agents"]


@click.command()
def _hello() -> None:
    click.echo("hi")


def test_root_help_lists_every_kit():
    result = CliRunner().invoke(root, ["--help"])
    assert result.exit_code == 0, result.output
    for kit in KITS + ["bench", "report"]:
        assert kit in result.output


@pytest.mark.parametrize("kit", KITS)
def test_kit_group_help(kit):
    result = CliRunner().invoke(root, [kit, "--help"])
    assert result.exit_code == 0, result.output
    assert f"paperkits {kit}" in result.output or "Usage" in result.output


def test_user_error_is_one_line_exit_2():
    # through the installed console script, as a user would run it
    proc = subprocess.run([sys.executable, "-m", "shared.cli", "bench", "nosuch"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown benchmark or kit 'nosuch'")
    assert "Traceback" not in proc.stderr


def test_bad_seeds_is_user_error():
    result = CliRunner().invoke(root, ["bench", "--seeds", "a,b"])
    assert result.exit_code == 2
    assert "--seeds must be comma-separated integers" in result.output


def test_bench_list_runs():
    result = CliRunner().invoke(root, ["bench", "--list"])
    assert result.exit_code == 0, result.output


def test_lazy_kit_group_loads_commands_on_demand():
    from shared.cli import LazyKitGroup

    group = LazyKitGroup(name="demo", lazy_commands={"hello": "tests.shared.test_cli:_hello", "gone": "no.such:cmd"})
    assert group.list_commands(None) == ["gone", "hello"]
    result = CliRunner().invoke(group, ["hello"])
    assert result.exit_code == 0 and result.output.strip() == "hi"
    result = CliRunner().invoke(group, ["gone"])
    assert result.exit_code == 2 and "'demo gone' is not available" in result.output
    assert "pip install 'paperkits[demo]'" in result.output
    assert isinstance(_hello, click.Command)


def test_bench_with_nothing_selected_still_writes_report(tmp_path, monkeypatch):
    monkeypatch.setattr("shared.benchmarks.select", lambda names: [])
    result = CliRunner().invoke(root, ["bench", "all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "REPORT.md").is_file()
