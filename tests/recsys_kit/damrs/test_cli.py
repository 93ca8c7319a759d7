from click.testing import CliRunner

from recsys_kit.damrs.cli import group
from recsys_kit.damrs.prepare import read_injected


def test_help_lists_commands():
    result = CliRunner().invoke(group, ["--help"])
    assert result.exit_code == 0
    for command in ("build-features", "inject-noise", "train", "convert-mmrec"):
        assert command in result.output


def test_inject_noise_writes_a_recorded_copy(tiny_dataset, tmp_path):
    result = CliRunner().invoke(group, ["inject-noise", str(tiny_dataset), "--scenario", "add20", "--seed", "1",
                                       "--root", str(tmp_path / "noisy")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "noisy" / "tiny-add20-s1"
    assert len(read_injected(folder)) > 0 and (folder / "modalities.json").is_file()
    replaced = CliRunner().invoke(group, ["inject-noise", str(tiny_dataset), "--scenario", "replace20",
                                          "--root", str(tmp_path / "noisy")])
    assert replaced.exit_code == 0 and (tmp_path / "noisy" / "tiny-replace20-s0" / "replaced_a.tsv").is_file()


def test_user_mistakes_are_one_line_errors(tiny_dataset, tmp_path):
    result = CliRunner().invoke(group, ["inject-noise", str(tiny_dataset), "--scenario", "shuffle20"])
    assert result.exit_code == 2 and "unknown noise kind" in result.output
    bad = CliRunner().invoke(group, ["train", str(tiny_dataset), "--set", "model.backbone=gru",
                                     "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "backbone" in bad.output
