"""The click commands: build-data writes files; user mistakes are one-line errors with exit code 2."""

from __future__ import annotations

import json

from click.testing import CliRunner

from recsys_kit.cli import group as recsys_group


def test_build_data_and_bad_domain_field(tmp_path):
    runner = CliRunner()
    result = runner.invoke(recsys_group, ["transition2", "build-data", "--out", str(tmp_path), "--max-users", "50",
                                          "--name", "T2-cli"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_users"] <= 50
    assert (tmp_path / "T2-cli" / "T2-cli.inter").is_file()
    bad = runner.invoke(recsys_group, ["transition2", "build-data", "--out", str(tmp_path), "--domain-field", "genre"])
    assert bad.exit_code == 2 and "unknown domain field 'genre'" in bad.output
    typo = runner.invoke(recsys_group, ["transition2", "train", "--set", "model_size=3", "--out", str(tmp_path)])
    assert typo.exit_code == 2 and "unknown key" in typo.output


def test_help_lists_commands():
    result = CliRunner().invoke(recsys_group, ["transition2", "--help"])
    assert result.exit_code == 0 and "build-data" in result.output and "train" in result.output


def test_train_derives_inner_size_from_hidden_size(tmp_path, monkeypatch):
    """--hidden-size alone gives a 4× FFN; --inner-size overrides it (the config the command trains with)."""
    import recsys_kit.transition2.train as train_module

    seen = []

    def fake_prepare(cfg):
        seen.append(cfg)
        raise KeyboardInterrupt  # stop before any data is built or trained

    monkeypatch.setattr(train_module, "prepare", fake_prepare)
    runner = CliRunner()
    runner.invoke(recsys_group, ["transition2", "train", "--hidden-size", "32", "--out", str(tmp_path)])
    runner.invoke(recsys_group, ["transition2", "train", "--hidden-size", "32", "--inner-size", "100",
                                 "--out", str(tmp_path)])
    assert [(c.hidden_size, c.ffn_size) for c in seen] == [(32, 128), (32, 100)]
