"""The GPU profile's script runs end to end on CPU at a tiny budget (PROFILE=tiny)."""

import json

from llm_dynamics_kit.copying.gpu import PROFILES, main, peak_flops


def test_gpu_script_runs_on_cpu_at_a_tiny_budget(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.setenv("PROFILE", "tiny")
    out = tmp_path / "results" / "gpu" / "llm" / "copying.json"
    main(["--out", str(out), "--work", str(tmp_path / "run")])
    data = json.loads(out.read_text())
    assert data["profile"] == "tiny" and data["device"].startswith("CPU") and data["mfu"] is None
    assert data["tokens_seen"] == data["steps"] * 4 * 64 and data["tokens_per_s"] > 0
    steps = [r["step"] for r in data["curves"]]
    assert steps == sorted(steps) and steps[-1] == data["steps"] and len(steps) >= 2  # checkpoints on the log grid
    assert {"repeat_acc_min", "induction_min", "copy_acc"} <= set(data["curves"][-1])
    assert data["config"]["corpus"]["fingerprint"] and data["claims"]
    assert PROFILES["gpu"].mixed_precision == "bf16" and PROFILES["gpu"].compile
    assert peak_flops("NVIDIA H200") == 989e12 and peak_flops("some CPU") is None
