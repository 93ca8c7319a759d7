"""Per-domain installs, as users take the kits: ``pip install .[agents]`` alone, in a fresh venv, brings no torch.

The project is copied (sources and packaging only) so the build leaves nothing in the checkout; the install
reaches the package registry for its dependencies, with the project's constraints file so it resolves the
versions the rest of the suite runs with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "constraints.txt", "shared", "recsys_kit", "llm_dynamics_kit",
           "safety_kit", "agents_kit")


@pytest.mark.slow
def test_agents_extra_installs_alone_without_torch(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-c", str(src / "constraints.txt"),
                              f"{src}[agents]"], capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run(
        [str(py), "-c", "import importlib.util as u, agents_kit, agents_kit.cli, agents_kit.server.app;"
                        "assert u.find_spec('torch') is None, 'torch was installed';"
                        "assert u.find_spec('recbole') is None; print('ok')"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0 and probe.stdout.strip() == "ok", probe.stderr
    cli = subprocess.run([str(env_dir / "bin" / "paperkits"), "agents", "--help"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert cli.returncode == 0 and "server" in cli.stdout, cli.stderr
    # a kit whose extra is missing says how to install it instead of a traceback
    missing = subprocess.run([str(env_dir / "bin" / "paperkits"), "llm", "--help"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
    assert missing.returncode != 0 and "pip install 'paperkits[llm]'" in missing.stderr, missing.stderr
    assert sys.executable != str(py)
