"""`paperkits safety pip train|scan`: a real detector file, per-file errors that do not stop a scan, exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from safety_kit.cli import group as safety
from safety_kit.pip.detector_bundle import DetectorBundle

TRAIN = ["pip", "train", "--seed", "0", "--set", "n_train=40", "--set", "n_test=20",
         "--set", "vlm.train_steps=250", "--set", "vlm.train_scenes=3000"]  # the quick model: cached


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_vlm):
    out = tmp_path_factory.mktemp("pip-run")
    result = CliRunner().invoke(safety, [*TRAIN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


def test_train_writes_detector_config_metrics_and_examples(trained):
    out, result = trained
    assert (out / "detector.pkl").is_file() and (out / "config.yaml").is_file() and (out / "tiny_vlm.pt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 80 and 0 <= metrics["auc"] <= 1
    assert len(list((out / "examples").glob("*.png"))) == 8
    bundle = DetectorBundle.load(out / "detector.pkl")
    assert bundle.detector.n_features_in_ == 3 * 4 * 16 and bundle.backend == "tiny"


def test_scan_reports_bad_files_and_keeps_going(trained, tmp_path):
    out, _ = trained
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGB", (64, 48), (120, 30, 30)).save(big)
    good = sorted((out / "examples").glob("*.png"))
    args = ["pip", "scan", str(corrupt), str(text), str(big), *map(str, good), "--detector", str(out / "detector.pkl")]
    result = CliRunner().invoke(safety, args)
    lines = result.output.splitlines()
    errors = [line for line in lines if "\tERROR\t" in line]
    assert len(errors) == 3
    assert "not a readable image" in errors[0] and "not a readable image" in errors[1]
    assert "64x48" in errors[2] and "--resize" in errors[2]
    verdicts = [line for line in lines if "\tADVERSARIAL\t" in line or "\tCLEAN\t" in line]
    assert len(verdicts) == len(good)
    flagged = any("\tADVERSARIAL\t" in line for line in verdicts)
    assert result.exit_code == (1 if flagged else 2)  # bad files alone exit 2; any flagged image exits 1
    resized = CliRunner().invoke(safety, ["pip", "scan", str(big), "--resize", "--detector", str(out / "detector.pkl")])
    assert "ERROR" not in resized.output and resized.exit_code in (0, 1)


def test_scan_exit_codes_follow_the_threshold(trained):
    out, _ = trained
    images = [str(p) for p in sorted((out / "examples").glob("*.png"))]
    det = ["--detector", str(out / "detector.pkl")]
    everything = CliRunner().invoke(safety, ["pip", "scan", *images, *det, "--threshold", "-1e9"])
    assert everything.exit_code == 1 and everything.output.count("ADVERSARIAL") == len(images)
    nothing = CliRunner().invoke(safety, ["pip", "scan", *images, *det, "--threshold", "1e9", "--json"])
    assert nothing.exit_code == 0
    records = [json.loads(line) for line in nothing.output.splitlines() if line.startswith("{")]
    assert [r["verdict"] for r in records] == ["clean"] * len(images)


def test_user_mistakes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(safety, ["pip", "scan", "x.png", "--detector", str(tmp_path / "none.pkl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "junk.pkl").write_bytes(b"junk")
    junk = runner.invoke(safety, ["pip", "scan", "x.png", "--detector", str(tmp_path / "junk.pkl")])
    assert junk.exit_code == 2 and "not a PIP detector file" in junk.output
    bad = runner.invoke(safety, ["pip", "train", "--out", str(tmp_path), "--set", "alarm_k=5"])
    assert bad.exit_code == 2 and "alarm_k" in bad.output
    hf = runner.invoke(safety, ["pip", "train", "--out", str(tmp_path), "--backend", "blip2"])
    assert hf.exit_code == 2 and "--checkpoint" in hf.output
    assert runner.invoke(safety, ["pip", "--help"]).exit_code == 0


def test_default_probe_depends_on_backend():
    from safety_kit.pip import scenes
    from safety_kit.pip.detector_bundle import HF_DEFAULT_PROBES, PIPTrainConfig

    assert PIPTrainConfig(backend="tiny").probes == [scenes.DEFAULT_PROBES[0]]
    assert PIPTrainConfig(backend="instructblip").probes == ["Is there a clock?"] == list(HF_DEFAULT_PROBES[:1])
    assert PIPTrainConfig(backend="llava", probes=["Is it raining?"]).probes == ["Is it raining?"]
