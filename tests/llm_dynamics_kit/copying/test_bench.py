import json
import math

import pytest

from llm_dynamics_kit.copying.bench import BENCHMARK, repeat_augmented
from shared.benchmarks import run_benchmark


def test_repeat_augmentation_duplicates_spans_only():
    import numpy as np

    tokens = np.arange(1000, dtype=np.uint16)
    augmented = repeat_augmented(tokens, fraction=0.5, seed=0)
    assert augmented.dtype == tokens.dtype and len(tokens) < len(augmented) < 2 * len(tokens) + 48
    assert set(np.unique(augmented)) == set(tokens)  # nothing new, only duplicated spans


@pytest.mark.slow
def test_quick_profile_writes_results(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("PAPERKITS_DATA", raising=False)
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path)
    data = json.loads(path.read_text())
    assert data["benchmark"] == "copying" and data["profile"] == "quick"
    assert {row["arm"] for row in data["rows"]} == {"vanilla", "batch_2B"}
    for row in data["rows"]:
        assert 0.0 <= row["max_copy_acc"] <= 1.0 and row["val_loss"] < 7.0
        assert row["batch_size"] == (4 if row["arm"] == "vanilla" else 8)
    assert isinstance(data["extra"]["claims"]["copying_emerged"], bool)
    assert data["summary"] and any(n.startswith("claim 2") for n in data["notes"])
    for fig in data["figures"]:
        assert (tmp_path / "llm" / fig["path"]).is_file()
    # identical initial weights across batch sizes: both arms start from the same step-0 evaluation
    first = {row["arm"]: row["initial_copy_gold_logprob"] for row in data["rows"]}
    assert math.isfinite(first["vanilla"]) and first["vanilla"] == first["batch_2B"]
