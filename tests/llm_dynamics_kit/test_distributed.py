"""The trainer under ``accelerate launch`` with 2 CPU processes (gloo): same losses as 1 process, resumable across
process counts (issue 25). One 2-process launch; the 1-process runs happen in this process."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.seeding import seed_everything

SCRIPT = '''
import json, sys
import numpy as np
from llm_dynamics_kit.model import FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.seeding import seed_everything

out, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seed_everything(0)
model = Transformer(ModelConfig(**json.loads(sys.argv[4])))
config = TrainConfig(steps=steps, batch_size=batch, seq_len=16, warmup_steps=1, eval_every=0, log_every=1,
                     checkpoint_every=2, keep_checkpoints=0, device="cpu", cpu_threads=1, lr=3e-3)
trainer = Trainer(model, np.load(sys.argv[5]), None, config, out_dir=out)
result = trainer.fit()
if trainer.accelerator.is_main_process:
    json.dump({"processes": trainer.accelerator.num_processes, "backend": str(trainer.accelerator.state.backend),
               "losses": [h["loss"] for h in result.history], "tokens": result.tokens_seen},
              open(out + "/result.json", "w"))
'''
CONFIG = dict(vocab_size=100, d_model=16, n_layers=2, n_heads=2, max_seq_len=16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_process(tokens, out, steps, batch):
    seed_everything(0)
    config = TrainConfig(steps=steps, batch_size=batch, seq_len=16, warmup_steps=1, eval_every=0, log_every=1,
                         checkpoint_every=2, keep_checkpoints=0, device="cpu", lr=3e-3)
    trainer = Trainer(Transformer(ModelConfig(**CONFIG, ffn=FFNConfig(hidden=32))), tokens, None, config,
                      out_dir=out)
    return trainer.fit()


def test_two_process_accelerate_run_matches_one_process_and_resumes_across_process_counts(pattern_tokens,
                                                                                           tmp_path):
    # reference: 6 steps in one process, global batch 8, checkpoints at steps 2, 4, 6
    reference = [h["loss"] for h in _in_process(pattern_tokens, tmp_path / "one", steps=6, batch=8).history]
    # 1 -> 2 processes: the 2-process launch (batch 4 each) resumes the 1-process step-2 checkpoint
    two = tmp_path / "two"
    shutil.copytree(tmp_path / "one" / "checkpoints" / "step_0000002", two / "checkpoints" / "step_0000002")
    (two / "checkpoints" / "latest").write_text("step_0000002\n")
    np.save(tmp_path / "tokens.npy", pattern_tokens)
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # torchrun-style launcher; Accelerator(cpu=True) then runs MULTI_CPU over gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(_free_port()), str(tmp_path / "train.py"), str(two), "4", "4",
           json.dumps({**CONFIG, "ffn": {"hidden": 32}}), str(tmp_path / "tokens.npy")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((two / "result.json").read_text())
    assert result["processes"] == 2 and result["backend"] == "gloo"
    # the same global batch (2 × 4 rows) as one process of batch 8: the same losses (logged as the global mean)
    assert np.allclose(result["losses"], reference[2:4], rtol=1e-5, atol=1e-6), (result["losses"], reference)
    assert result["tokens"] == 4 * 8 * 16
    # 2 -> 1 process: the 2-process step-4 checkpoint resumes here and continues like the 1-process run
    resumed = _in_process(pattern_tokens, two, steps=6, batch=8)
    assert [h["step"] for h in resumed.history] == [3, 4, 5, 6]
    assert np.allclose([h["loss"] for h in resumed.history], reference[2:], rtol=1e-5, atol=1e-6)
