import json

import numpy as np
import pytest
import torch

from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.train import Callback, FunctionCallback, TrainConfig, Trainer, permute_parameter_
from shared.errors import ConfigError, TrainingDivergedError
from shared.seeding import seed_everything

MOE = ModelConfig(vocab_size=128, d_model=32, n_layers=2, n_heads=2, max_seq_len=32,
                  ffn=FFNConfig(kind="moe", hidden=128, n_experts=4, size_strategy="arithmetic", multiple_of=4,
                                p_penalty_coef=0.1))


def _trainer(tokens, out=None, steps=4, model_config=MOE, **kw):
    seed_everything(0)
    settings = dict(steps=steps, batch_size=4, seq_len=32, warmup_steps=2, eval_every=2, eval_batches=2,
                    log_every=1, device="cpu")
    config = TrainConfig(**{**settings, **kw})
    return Trainer(Transformer(model_config), tokens, tokens[:2000], config, out_dir=out)


def test_smoke_training_lowers_the_loss(pattern_tokens, tiny_model_config):
    tiny_model_config.vocab_size = 128
    trainer = _trainer(pattern_tokens, steps=30, model_config=tiny_model_config, lr=3e-3, eval_every=30)
    first = trainer.evaluate()["val_loss"]
    result = trainer.fit()
    assert result.final_val_loss < first - 0.5
    assert result.tokens_seen == 30 * 4 * 32 and result.flops_seen > 0


def test_resume_gives_bit_identical_next_step_loss(pattern_tokens, tmp_path):
    full = _trainer(pattern_tokens, tmp_path / "a", steps=4, checkpoint_every=2, keep_checkpoints=0)
    reference = full.fit().history
    # resume a fresh trainer (different init) from the step-2 checkpoint of another folder's copy
    resumed_dir = tmp_path / "b"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    import shutil

    shutil.copytree(tmp_path / "a" / "checkpoints" / "step_0000002", resumed_dir / "checkpoints" / "step_0000002")
    (resumed_dir / "checkpoints" / "latest").write_text("step_0000002\n")
    seed_everything(99)
    resumed = _trainer(pattern_tokens, resumed_dir, steps=4, checkpoint_every=2, keep_checkpoints=0)
    history = resumed.fit().history
    assert [h["loss"] for h in history if h["step"] > 2] == [h["loss"] for h in reference if h["step"] > 2]
    assert history[-1]["tokens"] == reference[-1]["tokens"]


def test_nan_loss_raises_and_keeps_the_last_checkpoint(pattern_tokens, tmp_path):
    trainer = _trainer(pattern_tokens, tmp_path, steps=6, checkpoint_every=2)

    class Poison(Callback):
        every = 3

        def on_step(self, trainer, metrics):
            with torch.no_grad():
                trainer.raw_model.lm_head.weight.fill_(float("nan"))

    trainer.callbacks.append(Poison())
    before = None
    with pytest.raises(TrainingDivergedError, match="step 4"):
        before = trainer.fit()
    assert before is None
    latest = trainer.latest_checkpoint()
    assert latest is not None and latest.name == "step_0000002"
    from safetensors.torch import load_file

    weights = load_file(str(latest / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_callbacks_see_steps_tokens_and_metrics_are_logged(pattern_tokens, tmp_path):
    seen = []
    trainer = _trainer(pattern_tokens, tmp_path, steps=6)
    trainer.callbacks.append(FunctionCallback(lambda t, m: seen.append((t.step, t.tokens_seen)), every=3))
    trainer.fit()
    assert seen == [(3, 3 * 128), (6, 6 * 128)]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert "aux/p_penalty" in lines[0] and "val_loss" in lines[1] and "moe/activated_hidden" in lines[0]


def test_refresh_optimizer_and_permutation_keep_adam_state_aligned(pattern_tokens):
    trainer = _trainer(pattern_tokens, steps=1)
    trainer.fit()
    param = trainer.raw_model.blocks[0].attn.q_proj.weight
    before, moment = param.detach().clone(), trainer.optimizer.state[param]["exp_avg"].clone()
    perm = torch.randperm(param.shape[0])
    permute_parameter_(param, perm, 0, trainer.optimizer)
    assert torch.equal(param, before[perm])
    assert torch.equal(trainer.optimizer.state[param]["exp_avg"], moment[perm])
    trainer.raw_model.extra = torch.nn.Parameter(torch.zeros(3, 3))
    trainer.refresh_optimizer()
    assert any(p is trainer.raw_model.extra for g in trainer.optimizer.param_groups for p in g["params"])


def test_sequence_longer_than_the_model_context_is_rejected(pattern_tokens):
    with pytest.raises(ConfigError, match="max_seq_len"):
        Trainer(Transformer(MOE), pattern_tokens, None, TrainConfig(seq_len=64, device="cpu"))
    from shared.errors import DataError

    with pytest.raises(DataError, match="fewer than seq_len"):
        Trainer(Transformer(MOE), np.zeros(20, dtype=np.uint16), None, TrainConfig(seq_len=32, device="cpu"))
