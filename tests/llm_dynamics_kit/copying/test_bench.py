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


def test_random_repeats_arm_trains_on_text_with_repeated_pool_spans():
    from types import SimpleNamespace

    import numpy as np

    from llm_dynamics_kit.copying.bench import _arm_tokens

    data = SimpleNamespace(train=(np.arange(20_000) % 300 + 1).astype(np.uint16), vocab_size=512)
    assert _arm_tokens("vanilla", data) is data.train
    stream = _arm_tokens("random_repeats", data)
    assert stream.dtype == np.uint16 and stream.max() < 512 and 0 not in set(stream.tolist())  # pool excludes id 0
    assert not np.array_equal(stream[:1000], data.train[:1000])
