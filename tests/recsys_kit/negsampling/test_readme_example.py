"""The README's plug-in example, run as written against RecBole's own Config/Trainer (a fresh interpreter)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def readme_plugin_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("### recsys_kit — negative-sampling zoo", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_example_runs_with_recboles_own_config(tmp_path):
    code = readme_plugin_example()
    assert "Config(model=" in code and "recbole_config" not in code  # RecBole's own Config, not our helper
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ndcg@10" in proc.stdout
