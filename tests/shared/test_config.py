from dataclasses import dataclass, field
from typing import Literal

import pytest

from shared.config import load_config, parse_overrides, save_config, to_dict
from shared.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])


@dataclass
class RunConfig:
    name: str = "run"
    steps: int = 100
    ffn: Literal["dense", "moe"] = "dense"
    resume: bool = False
    optim: Optim = field(default_factory=Optim)


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig(name="x", steps=7, ffn="moe", optim=Optim(lr=0.5))
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(RunConfig, path) == cfg


def test_file_then_cli_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\noptim:\n  lr: 0.1\n")
    cfg = load_config(RunConfig, path, overrides=["optim.lr=3e-4", "ffn=moe", "resume=true"])
    assert cfg.steps == 5 and cfg.optim.lr == pytest.approx(3e-4) and cfg.ffn == "moe" and cfg.resume is True
    assert cfg.optim.betas == [0.9, 0.95]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["stepz=3"], "unknown key"),
        (["steps=many"], "expected an integer"),
        (["ffn=sparse"], "not one of"),
        (["optim.lr=fast"], "expected a number"),
        (["steps"], "key=value"),
    ],
)
def test_bad_overrides_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, overrides=overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(RunConfig, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(RunConfig, bad)


def test_parse_overrides_nests():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert to_dict(RunConfig())["optim"]["lr"] == 1e-3
