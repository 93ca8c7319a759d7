"""The copying benchmark's GPU profile: one script, one GPU, ≤ 10 minutes (issue 24).

``PROFILE=gpu python -m llm_dynamics_kit.copying.gpu`` trains an 8-layer d=256 LLaMA-style decoder (≈ 6M
non-embedding parameters, context 512) on the environment's Python sources (the ``pysrc`` corpus) with the kit's
accelerate :class:`~llm_dynamics_kit.train.Trainer` (bf16 autocast, ``torch.compile`` of the training forward on
CUDA), for as many steps as fit a wall-clock budget measured after a short calibration; saves a checkpoint at each
step of a log grid; evaluates copy accuracy and induction scores (the paper's geometry and the robust probes) on
every checkpoint; and writes ``results/gpu/llm/copying.json`` with the device named, tokens/s and MFU (model FLOPs
from :func:`~llm_dynamics_kit.model.flops_per_token` over the device's dense bf16 peak).

``PROFILE=tiny`` runs the same path on CPU in seconds (the CI test); ``--out`` changes where the JSON goes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_dynamics_kit.copying.bench import VOCAB, probe_pool
from llm_dynamics_kit.copying.claims import evaluate as score
from llm_dynamics_kit.copying.evaluate import default_task, one_token_induction_ceiling
from llm_dynamics_kit.copying.track import (
    evaluate_model,
    find_checkpoints,
    load_checkpoint_model,
    log_grid,
    onsets,
    training_loss_curve,
    write_records,
)
from llm_dynamics_kit.data import DataConfig, prepare_data
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.train import Callback, TrainConfig, Trainer
from shared.errors import ConfigError
from shared.results import atomic_write_text
from shared.seeding import seed_everything

# dense bf16 peak FLOP/s by device-name substring (vendor datasheets, no sparsity); MFU is left out otherwise
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


@dataclass
class GpuProfile:
    corpus: str = "pysrc"
    max_bytes: int | None = None
    tokenizer_bytes: int | None = 20_000_000
    d_model: int = 256
    n_layers: int = 8
    n_heads: int = 8
    seq_len: int = 512
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 200
    budget_s: float = 330.0  # training wall time (after calibration); data prep + evaluation take the rest
    calibrate_steps: int = 30
    max_steps: int = 200_000
    grid: int = 14  # checkpoints on a log grid
    samples: int = 100
    induction_sequences: int = 32
    mixed_precision: str = "bf16"
    compile: bool = True
    device: str = "cuda"


PROFILES = {
    "gpu": GpuProfile(),
    "tiny": GpuProfile(corpus="stdlib", max_bytes=300_000, tokenizer_bytes=None, d_model=32, n_layers=2, n_heads=2,
                       seq_len=64, batch=4, warmup=5, budget_s=2.0, calibrate_steps=3, max_steps=12, grid=3,
                       samples=4, induction_sequences=4, mixed_precision="no", compile=False, device="cpu"),
}


def device_name(device: str) -> str:
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


class GridCheckpoints(Callback):
    """Save a checkpoint at each step of ``steps`` (the trainer saves the final one itself)."""

    def __init__(self, steps: list[int]):
        self.steps = set(steps)

    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if trainer.step in self.steps and trainer.step != trainer.config.steps:
            trainer.save_checkpoint()


def _trainer(model: torch.nn.Module, data, prof: GpuProfile, steps: int, out_dir: Path | None, callbacks=()):
    config = TrainConfig(steps=steps, batch_size=prof.batch, seq_len=prof.seq_len, lr=prof.lr,
                         warmup_steps=min(prof.warmup, max(1, steps // 10)), weight_decay=0.0, eval_every=0,
                         log_every=max(1, steps // 50), checkpoint_every=0, keep_checkpoints=0, device=prof.device,
                         mixed_precision=prof.mixed_precision, cpu_threads=0)
    return Trainer(model, data.train, data.valid, config, out_dir=out_dir, callbacks=callbacks)


def run(profile: str = "gpu", out: str | Path = "results/gpu/llm/copying.json", work: str | Path | None = None,
        seed: int = 0) -> dict[str, Any]:
    """Train, checkpoint on a log grid, evaluate every checkpoint; write and return the results payload."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown PROFILE {profile!r}; profiles: {sorted(PROFILES)}")
    prof = PROFILES[profile]
    if prof.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("PROFILE=gpu needs a CUDA device; use PROFILE=tiny for the CPU smoke run")
    wall = time.perf_counter()
    out = Path(out)
    work = Path(work) if work is not None else out.parent / "copying_gpu_run"
    data_cfg = DataConfig(corpus=prof.corpus, vocab_size=VOCAB, max_bytes=prof.max_bytes,
                          tokenizer_bytes=prof.tokenizer_bytes)
    data = prepare_data(data_cfg)
    prep_s = time.perf_counter() - wall
    config = ModelConfig(vocab_size=data.vocab_size, d_model=prof.d_model, n_layers=prof.n_layers,
                         n_heads=prof.n_heads, max_seq_len=prof.seq_len,
                         ffn=FFNConfig(kind="dense", hidden=4 * prof.d_model))
    if prof.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    # calibration: a throw-away copy measures the step time (compile included) so the real run fits the budget
    seed_everything(seed)
    probe = Transformer(config)
    calib = _trainer(torch.compile(probe) if prof.compile else probe, data, prof, prof.calibrate_steps, None)
    calib.train_step()  # first step: compilation / allocator warm-up
    start = time.perf_counter()
    for _ in range(prof.calibrate_steps - 1):
        calib.train_step()
    if prof.device == "cuda":
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / max(1, prof.calibrate_steps - 1)
    del calib, probe
    steps = int(max(prof.calibrate_steps, min(prof.max_steps, prof.budget_s / max(step_s, 1e-6))))
    grid = log_grid(steps, prof.grid, first=max(1, min(50, steps // 20)))
    seed_everything(seed)
    model = Transformer(config)  # the evaluated weights come from checkpoints of this model
    trainer = _trainer(torch.compile(model) if prof.compile else model, data, prof, steps, work,
                       callbacks=[GridCheckpoints(grid)])
    train_start = time.perf_counter()
    result = trainer.fit(resume=False)
    if prof.device == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - train_start
    # evaluation of every checkpoint (paper's probe geometry + the robust probes), on the training device
    pool = probe_pool(data)
    task = default_task(model, n_samples=prof.samples, seed=1000 + seed, vocab_pool=pool)
    induction = {"half_len": 100, "n_sequences": prof.induction_sequences, "seed": seed, "vocab_pool": pool}
    losses = training_loss_curve(work)
    records = []
    for step, path in find_checkpoints(work):
        ckpt = load_checkpoint_model(path).to(trainer.device)
        near = [s for s in losses if s <= step]
        records.append({"step": step, "tokens": step * prof.batch * prof.seq_len,
                        "train_loss": losses[max(near)] if near else None,
                        **evaluate_model(ckpt, task, induction, batch_size=32)})
    write_records(records, work / "copying.jsonl")
    summary = onsets(records)
    name = device_name(prof.device)
    flops_per_s = result.flops_seen / train_s
    peak = peak_flops(name) if prof.device == "cuda" else None
    row = {"dataset": prof.corpus, "arm": "vanilla", "seed": seed, **summary.as_row(), "steps": steps,
           "batch_size": prof.batch, "tokens_seen": result.tokens_seen,
           "max_induction": float(max(np.max(r["induction"]) for r in records)),
           "max_induction_min": float(max(np.max(r["induction_min"]) for r in records)),
           "final_repeat_acc_min": records[-1]["repeat_acc_min"], "final_train_loss": result.final_train_loss,
           "one_token_ceiling": one_token_induction_ceiling(task), "train_seconds": train_s}
    payload = {"benchmark": "copying", "kit": "llm", "profile": profile, "device": name,
               "tokens_seen": result.tokens_seen, "steps": steps, "tokens_per_s": result.tokens_seen / train_s,
               "model_flops_per_s": flops_per_s, "peak_flops": peak,
               "mfu": flops_per_s / peak if peak else None, "calibration_step_s": step_s,
               "data_prep_s": prep_s, "train_s": train_s, "parameters": sum(p.numel() for p in model.parameters()),
               "config": {**asdict(prof), "vocab": VOCAB, "checkpoint_grid": grid, "corpus": data.meta},
               "rows": [row], "curves": records}
    claims, controls = score(payload)
    payload.update(claims=claims, controls=controls, wall_time_s=time.perf_counter() - wall)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(payload, indent=1, default=lambda v: None if isinstance(v, float) and
                                      not math.isfinite(v) else float(v)) + "\n")
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "gpu"), choices=sorted(PROFILES))
    parser.add_argument("--out", default="results/gpu/llm/copying.json")
    parser.add_argument("--work", default=None, help="run folder for checkpoints (default: beside --out)")
    args = parser.parse_args(argv)
    payload = run(args.profile, args.out, args.work)
    print(json.dumps({k: payload[k] for k in ("device", "steps", "tokens_seen", "tokens_per_s", "mfu", "wall_time_s")},
                     default=str))


if __name__ == "__main__":
    main()
