"""``paperkits agents …`` commands (the server command is exercised through ServerThread elsewhere)."""

import json

from click.testing import CliRunner

from agents_kit.cli import group
from tests.agents_kit.conftest import register


def test_help_lists_the_commands():
    result = CliRunner().invoke(group, ["--help"])
    assert result.exit_code == 0
    for name in ("server", "client", "schema", "init-config"):
        assert name in result.output


def test_client_launches_a_goal_from_a_yaml_config(server, tmp_path):
    register(server, "Helper", "helps")
    config = tmp_path / "agent.yaml"
    runner = CliRunner()
    assert runner.invoke(group, ["init-config", str(config), "--name", "Cli", "--desc", "cli agent"]).exit_code == 0
    result = runner.invoke(group, ["client", "--config", str(config), "--set", f"server.url={server.url}",
                                   "--set", "policy.kind=scripted", "--set", f"agent.token_file={tmp_path / 'tok'}",
                                   "--goal", "say done", "--team", "Helper", "--timeout", "20"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout[result.stdout.index("{"):])
    assert answer["conclusion"] == "Done: say done" and len(answer["comm_id"]) == 32
    assert (tmp_path / "tok").read_text().strip()  # the token is kept for the next start


def test_user_mistakes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(group, ["client"])
    assert missing.exit_code == 2 and "--config agent.yaml is required" in missing.output
    config = tmp_path / "a.yaml"
    config.write_text("agent: {name: X}\npolicy: {kind: oracle}\n")
    bad = runner.invoke(group, ["client", "--config", str(config)])
    assert bad.exit_code == 2 and "policy.kind must be llm, scripted or replay" in bad.output
    config.write_text("agent: {name: X, colour: red}\n")
    unknown = runner.invoke(group, ["client", "--config", str(config)])
    assert unknown.exit_code == 2 and "colour" in unknown.output


def test_schema_command_writes_json(tmp_path):
    out = tmp_path / "schema.json"
    assert CliRunner().invoke(group, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["protocol"] == "ioa/1"


def test_server_takes_a_backend_and_refuses_an_unknown_one():
    runner = CliRunner()
    assert "--backend" in runner.invoke(group, ["server", "--help"]).output
    result = runner.invoke(group, ["server", "--backend", "postgres://db:5432"])
    assert result.exit_code != 0
    assert "backend must be 'sqlite' or 'nats://HOST:PORT'" in result.output
