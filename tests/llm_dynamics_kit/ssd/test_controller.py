import numpy as np
import pytest
import torch

from llm_dynamics_kit.model import Transformer
from llm_dynamics_kit.ssd.clustering import balanced_kmeans
from llm_dynamics_kit.ssd.controller import SSDConfig, SSDController
from llm_dynamics_kit.ssd.moefied import MoEfiedFFN
from llm_dynamics_kit.ssd.monitor import ActivationMonitor, activation_stats, routing_recall
from llm_dynamics_kit.train import TrainConfig, Trainer
from shared.errors import ConfigError

from .conftest import relu_config


class Scripted(SSDController):
    """The real state machine fed a scripted similarity signal (one value per check)."""

    def __init__(self, signal, **kwargs):
        super().__init__(SSDConfig(n_experts=8, top_k=4, kmeans_iters=5, **kwargs))
        self.signal = list(signal)

    def check(self, trainer):
        self._current = [balanced_kmeans(f.w_in.weight, 8, n_iter=3) for f in self._ffns(trainer)]
        result = {"step": trainer.step, "similarity": self.signal.pop(0)}
        self.checks.append(result)
        return result


def make_trainer(pattern_tokens, steps, callbacks):
    torch.manual_seed(0)
    model = Transformer(relu_config())
    config = TrainConfig(steps=steps, batch_size=4, seq_len=16, lr=3e-3, warmup_steps=2, eval_every=0,
                         log_every=1, cpu_threads=1, device="cpu")
    return Trainer(model, pattern_tokens, pattern_tokens, config, callbacks=callbacks)


def modes(trainer):
    return [f.mode for f in trainer.raw_model.ffns]


def test_controller_transitions_on_a_scripted_signal(pattern_tokens):
    # checks every 2 steps: nan (step 2), 0.5 (4), 0.9 (6: switch), sparse for steps 7-10 -> dense after 10,
    # then 0.95 at step 12 -> sparse again, cut by the final dense phase starting after step 14
    ctrl = Scripted([np.nan, 0.5, 0.9, 0.95, 0.9, 0.9, 0.9, 0.9], monitor_every=2, warmup_dense_steps=3,
                    threshold=0.8, sparse_steps=4, final_dense_steps=6)
    trainer = make_trainer(pattern_tokens, 20, [ctrl])
    result = trainer.fit()
    assert ctrl.phases == [{"phase": "sparse", "start": 6, "end": 10}, {"phase": "sparse", "start": 12, "end": 14}]
    assert [c["step"] for c in ctrl.checks] == [2, 4, 6, 12, 16, 18, 20]  # still monitored when dense
    assert modes(trainer) == ["dense", "dense"]
    sparse_flags = [h["ssd/sparse"] for h in result.history]
    assert sparse_flags[4:11] == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # history[i] is step i + 1
    assert ctrl.sparse_steps_done(20) == 6
    # FLOPs: 6 sparse steps at k/E = 1/2 cost less than 20 dense steps
    dense_flops = Transformer(relu_config()).flops_per_token(16) * 20 * 4 * 16
    assert result.flops_seen < dense_flops


class ScriptedRecall(Scripted):
    """Scripted similarity and recall@k per check (the ρ safety of the switch rule, brief §2.3)."""

    def __init__(self, signal, recalls, **kwargs):
        super().__init__(signal, **kwargs)
        self.recalls = list(recalls)

    def check(self, trainer):
        result = super().check(trainer)
        result["recall"] = self.recalls.pop(0)
        return result


def test_recall_below_rho_blocks_the_switch(pattern_tokens):
    assert SSDConfig().min_recall == 0.9  # brief §2.3: "as a safety, recall@k ≥ ρ (ρ≈0.9)"
    # similarity is always stable; recall 0.5, 0.89 (< ρ: stay dense), then 0.95 at step 6 -> sparse
    ctrl = ScriptedRecall([0.9] * 6, [0.5, 0.89, 0.95, 0.95, 0.95, 0.95], monitor_every=2, warmup_dense_steps=0,
                          threshold=0.8, sparse_steps=3, final_dense_steps=2)
    make_trainer(pattern_tokens, 10, [ctrl]).fit()
    assert ctrl.phases[0]["start"] == 6
    ctrl = ScriptedRecall([0.9] * 6, [0.95] * 6, monitor_every=2, warmup_dense_steps=0, threshold=0.8,
                          sparse_steps=3, final_dense_steps=2, min_recall=0.0)
    make_trainer(pattern_tokens, 10, [ctrl]).fit()
    assert ctrl.phases[0]["start"] == 2  # ρ = 0 disables the check


def test_static_controller_switches_once_and_stays_sparse(pattern_tokens):
    ctrl = Scripted([0.9] * 10, monitor_every=2, warmup_dense_steps=0, threshold=0.8, patience=2,
                    sparse_steps=3, final_dense_steps=4, static=True)
    trainer = make_trainer(pattern_tokens, 12, [ctrl])
    trainer.fit()
    assert len(ctrl.phases) == 1 and ctrl.phases[0]["start"] == 4 and ctrl.phases[0]["end"] == 12
    assert modes(trainer) == ["sparse", "sparse"]


def test_real_controller_and_monitor_train_in_both_modes(pattern_tokens):
    ctrl = SSDController(SSDConfig(n_experts=8, top_k=4, monitor_every=5, warmup_dense_steps=5, threshold=-1.0,
                                   sparse_steps=10, final_dense_steps=5, kmeans_iters=5, min_recall=0.01))
    monitor = ActivationMonitor(every=5, n_experts=8, n_iter=5)
    trainer = make_trainer(pattern_tokens, 25, [ctrl, monitor])
    result = trainer.fit()
    assert ctrl.phases and ctrl.phases[0]["start"] == 10  # first check (step 5) has no previous partition
    assert all(isinstance(f, MoEfiedFFN) for f in trainer.raw_model.ffns)
    assert result.history[-1]["lm_loss"] < result.history[0]["lm_loss"]
    logged = [h for h in result.history if "act/ratio" in h]
    assert len(logged) == 5 and all(0 < h["act/ratio"] <= 1 for h in logged)
    assert "act/similarity" in logged[-1] and "ssd/recall" in result.history[9]
    assert [r["step"] for r in monitor.history] == [0, 5, 10, 15, 20, 25]
    # neuron permutations by the controller do not fool the monitor: similarity uses original neuron ids
    assert all(-1 <= s <= 1 for r in monitor.history for s in r["similarity"])


def test_activation_stats_and_recall_known_answers():
    acts = torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 3.0, 1.0]])
    stats = activation_stats(acts)
    assert stats == {"ratio": 0.5, "dead": 0.25, "active_per_token": 2.0}
    torch.manual_seed(0)
    x, w = torch.randn(20, 8), torch.randn(32, 8)
    clustering = balanced_kmeans(w, 4, n_iter=5)
    assert routing_recall(x, w, clustering, 4) == pytest.approx(1.0)
    assert 0 < routing_recall(x, w, clustering, 1) < 1


def test_bad_ssd_config():
    with pytest.raises(ConfigError, match="top_k"):
        SSDConfig(n_experts=4, top_k=5)
    with pytest.raises(ConfigError, match="split"):
        SSDConfig(split="metis")


def test_resume_mid_sparse_phase_matches_an_uninterrupted_run(pattern_tokens, tmp_path):
    from llm_dynamics_kit.train import FunctionCallback

    def run(out, stop_at=None):
        torch.manual_seed(0)
        model = Transformer(relu_config(kind="moefied"))
        ctrl = SSDController(SSDConfig(n_experts=8, top_k=4, monitor_every=2, warmup_dense_steps=2, threshold=-1.0,
                                       sparse_steps=4, final_dense_steps=2, kmeans_iters=3, min_recall=0.0))
        callbacks = [ctrl]
        if stop_at:
            def stop(trainer, _metrics):
                trainer.should_stop = trainer.step >= stop_at
            callbacks.append(FunctionCallback(stop))
        config = TrainConfig(steps=12, batch_size=4, seq_len=16, lr=3e-3, warmup_steps=2, eval_every=0,
                             log_every=1, cpu_threads=1, device="cpu")
        trainer = Trainer(model, pattern_tokens, pattern_tokens, config, out_dir=out, callbacks=callbacks)
        trainer.fit()
        return trainer, ctrl

    reference, ref_ctrl = run(tmp_path / "a")
    interrupted, ctrl = run(tmp_path / "b", stop_at=6)
    assert interrupted.step == 6 and ctrl.state == "sparse"
    resumed, ctrl = run(tmp_path / "b")
    assert ctrl.phases == ref_ctrl.phases and resumed.step == 12
    for (name, a), b in zip(reference.raw_model.state_dict().items(), resumed.raw_model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_monitor_measures_natural_sparsity_even_in_sparse_mode(relu_model, tokens):
    from llm_dynamics_kit.ssd.moefied import moefy
    from llm_dynamics_kit.ssd.monitor import ffn_inputs_and_activations

    _, dense_acts = ffn_inputs_and_activations(relu_model, tokens)
    moefy(relu_model, n_experts=8, top_k=1, n_iter=3)
    _, natural = ffn_inputs_and_activations(relu_model, tokens, dense=True)
    _, routed = ffn_inputs_and_activations(relu_model, tokens, dense=False)
    for d, n, r in zip(dense_acts, natural, routed):
        assert activation_stats(n)["ratio"] == pytest.approx(activation_stats(d)["ratio"])  # permutation-invariant
        assert activation_stats(r)["ratio"] <= 1 / 8 + 1e-9 < activation_stats(n)["ratio"]
    assert all(f.mode == "sparse" for f in relu_model.ffns)  # restored after measuring


def test_similarity_signal_ignores_the_controllers_own_permutation(pattern_tokens):
    # warm start only (restart_margin=1): a fresh k-means++ start may legitimately find another partition
    ctrl = SSDController(SSDConfig(n_experts=8, top_k=4, kmeans_iters=30, restart_margin=1.0))
    trainer = make_trainer(pattern_tokens, 5, [ctrl])
    trainer.fit()
    ctrl.check(trainer)
    ctrl.to_sparse(trainer)  # permutes every layer's neurons (weights unchanged as a function)
    assert not all(torch.equal(f.perm, torch.arange(128)) for f in ctrl._ffns(trainer))
    assert ctrl.check(trainer)["similarity"] == pytest.approx(1.0)
