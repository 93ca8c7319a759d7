"""`paperkits llm moefy`, `paperkits llm sparse-bench` and `paperkits llm ssd …` (SSD, arXiv 2410.03440)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import click

from llm_dynamics_kit.data import DataConfig
from llm_dynamics_kit.model import FFNConfig, ModelConfig
from llm_dynamics_kit.ssd.controller import SSDConfig
from llm_dynamics_kit.train import TrainConfig
from shared.cli import KitGroup, config_option, out_option, seed_option, user_errors
from shared.errors import DataError


def _ks(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise click.BadParameter(f"expected comma-separated fractions like 0.125,0.25,0.5, got {text!r}") from err
    if not values or not all(0 < v <= 1 for v in values):
        raise click.BadParameter("k/E fractions must be in (0, 1]")
    return values


# ------------------------------------------------------------------------------------------- moefy


@click.command("moefy")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--experts", type=int, default=16, show_default=True, help="Experts per FFN layer (E).")
@click.option("--k", "ks", default="0.125,0.25,0.5", show_default=True, help="k/E fractions to evaluate.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the MoEfied model here (sparse mode at the first k/E).")
@click.option("--hf", is_flag=True, help="MODEL is a local Hugging Face GPT-2-class folder.")
@click.option("--batches", type=int, default=8, show_default=True, help="Validation batches (kit models).")
@click.option("--iters", type=int, default=50, show_default=True, help="Balanced k-means rounds.")
@seed_option()
@user_errors
def moefy_command(model: Path, experts: int, ks: str, out: Path | None, hf: bool, batches: int, iters: int,
                  seed: int) -> None:
    """Split a trained ReLU/GELU FFN into experts (balanced k-means, centroid routers) and report SMoE quality."""
    fractions = _ks(ks)
    if hf:
        click.echo(json.dumps(_moefy_hf(model, experts, fractions, out, iters, seed)))
        return
    import dataclasses

    from llm_dynamics_kit.cli import _run_dir_of, resolve_model_dir
    from llm_dynamics_kit.model import Transformer
    from llm_dynamics_kit.ssd.moefied import check_moefiable, moefy, set_mode

    model_dir = resolve_model_dir(model)
    lm = Transformer.from_pretrained(model_dir).eval()
    check_moefiable(lm)
    trainer = _evaluator(lm, _run_dir_of(model_dir))
    report: dict = {"model": str(model_dir), "experts": experts}
    if trainer is not None:
        report["val_loss_dense"] = trainer.evaluate(max_batches=batches)["val_loss"]
    dense_flops = lm.flops_per_token()
    moefy(lm, n_experts=experts, top_k=1, n_iter=iters, seed=seed)
    for frac in fractions:
        set_mode(lm, "sparse", top_k=max(1, round(frac * experts)))
        if trainer is not None:
            report[f"val_loss_moe_{frac}"] = trainer.evaluate(max_batches=batches)["val_loss"]
        report[f"ffn_flops_fraction_{frac}"] = max(1, round(frac * experts)) / experts
    report["flops_per_token_dense"] = dense_flops
    if out is not None:
        set_mode(lm, "sparse", top_k=max(1, round(fractions[0] * experts)))
        lm.config.ffn = dataclasses.replace(lm.config.ffn, extra={**lm.config.ffn.extra, "mode": "sparse"},
                                            top_k=lm.ffns[0].top_k)
        lm.save_pretrained(out)
        tokenizer = _run_dir_of(model_dir) / "tokenizer.json"
        if tokenizer.is_file():
            (Path(out) / "tokenizer.json").write_bytes(tokenizer.read_bytes())
        report["out"] = str(out)
    click.echo(json.dumps(report))


def _evaluator(lm, run_dir: Path):
    """A Trainer over the run's own validation data (None when the folder has no run config)."""
    from llm_dynamics_kit.data import prepare_data
    from llm_dynamics_kit.train import RunConfig, TrainConfig, Trainer
    from shared.config import load_config

    if not (run_dir / "config.yaml").is_file():
        return None
    config = load_config(RunConfig, run_dir / "config.yaml")
    data = prepare_data(config.data)
    if data.vocab_size != lm.config.vocab_size:
        raise DataError(f"the run's tokenizer has {data.vocab_size} tokens but the model expects "
                        f"{lm.config.vocab_size}")
    cfg = TrainConfig(steps=1, batch_size=config.train.batch_size, seq_len=config.train.seq_len, device="cpu",
                      cpu_threads=1)
    return Trainer(lm, data.train, data.valid, cfg)


def _moefy_hf(path: Path, experts: int, fractions: list[float], out: Path | None, iters: int, seed: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from llm_dynamics_kit.ssd.hf_moefy import hf_labels, moefy_hf, set_hf_experts

    if not (Path(path) / "config.json").is_file():
        raise DataError(f"{path} is not a Hugging Face model folder (no config.json); save one with "
                        "model.save_pretrained(folder)")
    hf_logging.disable_progress_bar()  # keep stdout one JSON line
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval()
    ids = torch.randint(0, model.config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        dense = model(ids).logits
        moefy_hf(model, experts, experts, n_iter=iters, seed=seed)
        report: dict = {"model": str(path), "experts": experts,
                        "max_abs_diff_k_equals_e": float((model(ids).logits - dense).abs().max())}
        for frac in fractions:
            set_hf_experts(model, top_k=max(1, round(frac * experts)))
            logits = model(ids).logits
            report[f"rel_logit_error_{frac}"] = float((logits - dense).norm() / dense.norm())
            report[f"top1_agreement_{frac}"] = float((logits.argmax(-1) == dense.argmax(-1)).float().mean())
    if out is not None:
        from shared.results import atomic_write_text

        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out) / "expert_labels.json", json.dumps([lab.tolist() for lab in hf_labels(model)]))
        report["out"] = str(out)
    return report


# ------------------------------------------------------------------------------------------- sparse-bench


@click.command("sparse-bench")
@click.argument("model", type=click.Path(path_type=Path), required=False)
@click.option("--d-model", type=int, default=512, show_default=True, help="FFN-only benchmark width (D = 4d).")
@click.option("--experts", type=int, default=16, show_default=True)
@click.option("--k", "ks", default="0.125,0.25,0.5", show_default=True, help="k/E fractions.")
@click.option("--repeats", type=int, default=30, show_default=True, help="Interleaved timing repeats.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--json-out", type=click.Path(path_type=Path), default=None, help="Also write the rows here.")
@user_errors
def sparse_bench_command(model: Path | None, d_model: int, experts: int, ks: str, repeats: int, threads: int,
                         json_out: Path | None) -> None:
    """Tokens/s of dense vs sparse inference (batch-1 decode and 128-token prefill) at several k/E."""
    from llm_dynamics_kit.ssd.speed import ffn_speed, model_speed

    fractions = _ks(ks)
    rows = ffn_speed(d_model, n_experts=experts, fractions=fractions, repeats=repeats, threads=threads)
    if model is not None:
        from llm_dynamics_kit.cli import resolve_model_dir
        from llm_dynamics_kit.model import Transformer
        from llm_dynamics_kit.ssd.moefied import check_moefiable

        lm = Transformer.from_pretrained(resolve_model_dir(model))
        check_moefiable(lm)
        lm.config.ffn.n_experts = experts
        rows += model_speed(lm, fractions, repeats=repeats, threads=threads)
    click.echo(f"{'scope':6} {'shape':8} {'path':8} {'k/E':>6} {'tokens/s':>12} {'speed-up':>9}")
    for r in rows:
        click.echo(f"{r['scope']:6} {r['shape']:8} {r['path']:8} {r['k_fraction']:6.3f} {r['tokens_per_s']:12.0f} "
                   f"{r['speedup']:9.2f}")
    if json_out is not None:
        from shared.results import atomic_write_text

        atomic_write_text(json_out, json.dumps(rows, indent=1))


# ------------------------------------------------------------------------------------------- ssd group


def _default_model() -> ModelConfig:
    return ModelConfig(ffn=FFNConfig(kind="moefied", hidden=512, activation="relu", n_experts=16, top_k=8))


def _default_train() -> TrainConfig:
    # brief §8.2 (miniature Model A): AdamW wd 0.1, β=(0.9, 0.95), cosine, batch 16 sequences
    return TrainConfig(batch_size=16, schedule="cosine", weight_decay=0.1, beta2=0.95, cpu_threads=1)


@dataclass
class SSDRunConfig:
    """A `paperkits llm ssd train` run: the kit's run config plus the SSD schedule and monitor period."""

    model: ModelConfig = field(default_factory=_default_model)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=_default_train)
    ssd: SSDConfig = field(default_factory=SSDConfig)
    monitor_every: int = 100


@click.group(name="ssd", cls=KitGroup)
def group() -> None:
    """SSD (arXiv 2410.03440): switchable sparse–dense pre-training with MoEfication."""


@group.command("config")
def config_command() -> None:
    """Print the default `ssd train` config as YAML (edit it and pass it with --config)."""
    import yaml

    from shared.config import to_dict

    click.echo(yaml.safe_dump(to_dict(SSDRunConfig()), sort_keys=False))


@group.command("train")
@config_option()
@out_option("runs/ssd")
@seed_option()
@click.option("--corpus", default=None, help="stdlib (default), shakespeare, or comma-separated files/folders/JSONL.")
@click.option("--static", is_flag=True, help="Static-sparse ablation: switch once, never back.")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT holds a checkpoint.")
def train_command(config_path: Path | None, overrides: tuple[str, ...], out: Path, seed: int, corpus: str | None,
                  static: bool, no_resume: bool) -> None:
    """Train with switchable sparse–dense phases; writes the run, ssd_phases.json and monitor.png to OUT."""
    from llm_dynamics_kit.ssd.controller import SSDController
    from llm_dynamics_kit.ssd.monitor import ActivationMonitor, plot_monitor
    from llm_dynamics_kit.train import RunConfig, train_run
    from shared.config import load_config, save_config
    from shared.results import atomic_write_text

    extra = [f"train.seed={seed}", f"ssd.seed={seed}"] + ([f"data.corpus={corpus}"] if corpus else [])
    extra += ["ssd.static=true"] if static else []
    config = load_config(SSDRunConfig, config_path, extra + list(overrides))
    controller = SSDController(config.ssd)
    monitor = ActivationMonitor(every=config.monitor_every, n_experts=config.ssd.n_experts, stability=False,
                                seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "ssd_config.yaml")
    lm, result = train_run(RunConfig(config.model, config.data, config.train), out, callbacks=[controller, monitor],
                           resume=not no_resume)
    atomic_write_text(out / "ssd_phases.json", json.dumps({"phases": controller.phases, "checks": controller.checks,
                                                           "monitor": monitor.history}, default=float))
    if monitor.history:
        plot_monitor(monitor.history, out / "monitor.png", title="activation ratio per layer")
    click.echo(json.dumps({"out": str(out), "step": result.step, "flops": result.flops_seen,
                           "val_loss": result.final_val_loss, "sparse_phases": controller.phases}))
