"""`paperkits llm …`: train / evaluate / sample with the kit's substrate; each paper's commands load lazily."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli import LazyKitGroup, config_option, out_option, seed_option
from shared.errors import DataError

# command name -> "module:click object"; a paper adds its line here when it lands.
PAPER_COMMANDS: dict[str, str] = {
    "hmoe": "llm_dynamics_kit.hmoe.cli:group",
    "copying": "llm_dynamics_kit.copying.cli:group",
    "copying-track": "llm_dynamics_kit.copying.cli:track_command",
    "ssd": "llm_dynamics_kit.ssd.cli:group",
    "moefy": "llm_dynamics_kit.ssd.cli:moefy_command",
    "sparse-bench": "llm_dynamics_kit.ssd.cli:sparse_bench_command",
}


@click.group(name="llm", cls=LazyKitGroup, lazy_commands=PAPER_COMMANDS)
def group() -> None:
    """LLM training dynamics: HMoE heterogeneous experts, SSD sparse–dense training + MoEfication, copying as grokking."""


def resolve_model_dir(path: Path) -> Path:
    """A saved-model folder from a run folder (its latest checkpoint) or a model folder itself."""
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    pointer = path / "checkpoints" / "latest"
    if pointer.is_file():
        return path / "checkpoints" / pointer.read_text().strip()
    raise DataError(f"{path} is neither a saved model (config.json + model.safetensors) nor a run folder with "
                    "checkpoints/latest; pass the --out folder of `paperkits llm train`")


def _run_dir_of(model_dir: Path) -> Path:
    return model_dir.parent.parent if model_dir.parent.name == "checkpoints" else model_dir


@group.command("train")
@config_option()
@out_option("runs/llm")
@seed_option()
@click.option("--corpus", default=None, help="stdlib (default), shakespeare, or comma-separated files/folders/JSONL.")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT holds a checkpoint.")
def train_command(config_path: Path | None, overrides: tuple[str, ...], out: Path, seed: int, corpus: str | None,
                  no_resume: bool) -> None:
    """Train a decoder (dense or MoE FFN) with the kit's trainer; resumes from OUT's latest checkpoint."""
    from llm_dynamics_kit.train import RunConfig, train_run
    from shared.config import load_config

    extra = [f"train.seed={seed}"] + ([f"data.corpus={corpus}"] if corpus else [])
    config = load_config(RunConfig, config_path, list(extra) + list(overrides))
    _, result = train_run(config, out, resume=not no_resume)
    click.echo(json.dumps({"out": str(out), "step": result.step, "tokens": result.tokens_seen,
                           "flops": result.flops_seen, "train_loss": result.final_train_loss,
                           "val_loss": result.final_val_loss}))


@group.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--corpus", default=None, help="Corpus to evaluate on (default: the run's own validation split).")
@click.option("--batches", type=int, default=50, show_default=True, help="Validation batches.")
def eval_command(model: Path, corpus: str | None, batches: int) -> None:
    """Validation loss / perplexity (and routing statistics for MoE) of a run folder or saved model."""
    import dataclasses

    from llm_dynamics_kit.data import prepare_data
    from llm_dynamics_kit.model import Transformer
    from llm_dynamics_kit.train import RunConfig, TrainConfig, Trainer
    from shared.config import load_config

    model_dir = resolve_model_dir(model)
    run_dir = _run_dir_of(model_dir)
    config = load_config(RunConfig, run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else RunConfig()
    data_cfg = dataclasses.replace(config.data, corpus=corpus) if corpus else config.data
    data = prepare_data(data_cfg)
    lm = Transformer.from_pretrained(model_dir)
    if data.vocab_size != lm.config.vocab_size:
        raise DataError(f"the corpus tokenizer has {data.vocab_size} tokens but the model expects "
                        f"{lm.config.vocab_size}; evaluate with the run's own data settings")
    train_cfg = TrainConfig(steps=1, batch_size=config.train.batch_size, seq_len=config.train.seq_len,
                            device="cpu")
    trainer = Trainer(lm, data.train, data.valid, train_cfg)
    metrics = trainer.evaluate(max_batches=batches)
    from llm_dynamics_kit.train import routing_metrics

    metrics.update({k: v for k, v in routing_metrics(lm).items() if not isinstance(v, list)})
    metrics["activated_params"] = lm.activated_params()
    metrics["total_params"] = lm.num_params()
    click.echo(json.dumps(metrics))


@group.command("generate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--prompt", default="", help="Text to continue.")
@click.option("--tokens", type=int, default=64, show_default=True, help="New tokens to sample.")
@click.option("--temperature", type=float, default=0.8, show_default=True, help="0 = greedy.")
@seed_option()
def generate_command(model: Path, prompt: str, tokens: int, temperature: float, seed: int) -> None:
    """Sample a continuation from a run folder (needs its tokenizer.json)."""
    import torch
    from tokenizers import Tokenizer

    from llm_dynamics_kit.data import EOS_TOKEN
    from llm_dynamics_kit.model import Transformer

    model_dir = resolve_model_dir(model)
    tok_path = _run_dir_of(model_dir) / "tokenizer.json"
    if not tok_path.is_file():
        raise DataError(f"no tokenizer.json in {_run_dir_of(model_dir)}; generate from a `paperkits llm train` run folder")
    tokenizer = Tokenizer.from_file(str(tok_path))
    lm = Transformer.from_pretrained(model_dir).eval()
    ids = tokenizer.encode(prompt).ids or [tokenizer.token_to_id(EOS_TOKEN)]
    generator = torch.Generator().manual_seed(seed)
    out = lm.generate(torch.tensor([ids]), tokens, temperature=temperature, generator=generator)
    click.echo(prompt + tokenizer.decode(out[0, len(ids):].tolist()))
