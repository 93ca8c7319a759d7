import copy

import numpy as np
import pytest
import torch

from llm_dynamics_kit.model import DenseFFN, FFNConfig, ModelConfig, Transformer
from llm_dynamics_kit.ssd.moefied import MoEficationError, MoEfiedFFN, as_moefied, densify, moefy, set_mode
from llm_dynamics_kit.train import TrainConfig, make_optimizer

from .conftest import relu_config


def adam_step(model, tokens, optimizer):
    loss = model(tokens, tokens).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def test_dense_output_unchanged_after_moefy(relu_model, tokens):
    before = relu_model(tokens).logits
    moefy(relu_model, n_experts=8, top_k=2, n_iter=20)
    assert all(isinstance(f, MoEfiedFFN) and f.mode == "sparse" for f in relu_model.ffns)
    set_mode(relu_model, "dense")
    after = relu_model(tokens).logits
    assert torch.allclose(before, after, atol=1e-5)
    assert not all(torch.equal(f.perm, torch.arange(128)) for f in relu_model.ffns)  # really permuted


def test_moefy_densify_round_trip_is_bitwise_with_optimizer_state(relu_model, tokens):
    optimizer = make_optimizer(relu_model, TrainConfig())
    adam_step(relu_model, tokens, optimizer)
    params = {k: v.clone() for k, v in relu_model.state_dict().items()}
    w_in = relu_model.ffns[0].w_in.weight
    moments = {k: v.clone() for k, v in optimizer.state[w_in].items() if torch.is_tensor(v)}
    moefy(relu_model, n_experts=8, top_k=2, optimizer=optimizer)
    assert relu_model.ffns[0].w_in.weight is w_in  # same Parameter object: permuted in place, no copy
    assert not torch.equal(optimizer.state[w_in]["exp_avg"], moments["exp_avg"])
    densify(relu_model, optimizer, restore_order=True, to_dense_modules=True)
    assert all(type(f) is DenseFFN for f in relu_model.ffns) and relu_model.config.ffn.kind == "dense"
    after = relu_model.state_dict()
    assert set(after) == set(params)
    for key, value in params.items():
        assert torch.equal(after[key], value), key
    for key, value in moments.items():
        assert torch.equal(optimizer.state[w_in][key], value), key


def test_optimizer_state_permutation_keeps_the_next_step_identical(relu_model, tokens):
    twin = copy.deepcopy(relu_model)
    opt_a, opt_b = make_optimizer(relu_model, TrainConfig()), make_optimizer(twin, TrainConfig())
    for _ in range(2):
        adam_step(relu_model, tokens, opt_a)
        adam_step(twin, tokens, opt_b)
    clusterings = moefy(relu_model, n_experts=8, top_k=2, optimizer=opt_a)
    set_mode(relu_model, "dense")
    adam_step(relu_model, tokens, opt_a)
    adam_step(twin, tokens, opt_b)
    for layer, clustering in enumerate(clusterings):
        perm = torch.as_tensor(clustering.permutation())
        ours, theirs = relu_model.ffns[layer], twin.ffns[layer]
        assert torch.allclose(ours.w_in.weight, theirs.w_in.weight[perm], atol=1e-6)
        assert torch.allclose(ours.w_out.weight, theirs.w_out.weight[:, perm], atol=1e-6)
    assert torch.allclose(relu_model.lm_head.weight, twin.lm_head.weight, atol=1e-6)


def test_moe_with_k_equal_e_equals_dense(relu_model, tokens):
    dense_logits = relu_model(tokens).logits
    moefy(relu_model, n_experts=8, top_k=8)
    for path in ("masked", "auto", "gather", "loop", "grouped"):
        for f in relu_model.ffns:
            f.inference_path = path
        with torch.no_grad():
            assert torch.allclose(relu_model(tokens).logits, dense_logits, atol=1e-5), path
    assert torch.allclose(relu_model(tokens).logits, dense_logits, atol=1e-5)  # training (masked) path


def test_oracle_topk_equals_masked_dense():
    torch.manual_seed(0)
    dense = DenseFFN(16, 64, "relu")
    ffn = MoEfiedFFN.from_dense(dense, n_experts=8, top_k=3, selector="oracle", mode="sparse")
    x = torch.randn(10, 16)
    h = torch.relu(x @ dense.w_in.weight.T)  # (10, 64)
    mass = h.view(10, 8, 8).sum(-1)
    keep = torch.zeros(10, 8).scatter(-1, mass.topk(3, -1).indices, 1.0)
    expected = (h.view(10, 8, 8) * keep[..., None]).view(10, 64) @ dense.w_out.weight.T
    assert torch.allclose(ffn(x), expected, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(ffn(x), expected, atol=1e-5)
    assert ffn.activated_hidden() == 24


def test_router_gets_gradient_and_unselected_neurons_do_not():
    torch.manual_seed(0)
    ffn = MoEfiedFFN(16, 64, n_experts=8, top_k=2, mode="sparse")
    x = torch.randn(1, 16)
    experts, _ = ffn.select(x)
    ffn(x).sum().backward()
    assert ffn.router.weight.grad is not None and ffn.router.weight.grad.abs().sum() > 0
    grad_rows = ffn.w_in.weight.grad.view(8, 8, 16).abs().sum((1, 2))
    unselected = [e for e in range(8) if e not in experts[0].tolist()]
    assert torch.all(grad_rows[unselected] == 0)
    grouped = MoEfiedFFN(16, 64, n_experts=8, top_k=2, mode="sparse", train_impl="grouped")
    grouped.load_state_dict(ffn.state_dict())
    grouped(x).sum().backward()
    assert torch.allclose(grouped.w_in.weight.grad, ffn.w_in.weight.grad, atol=1e-6)
    assert torch.allclose(grouped.router.weight.grad, ffn.router.weight.grad, atol=1e-6)


def test_registered_kind_builds_trains_and_round_trips_on_disk(tmp_path, tokens):
    torch.manual_seed(0)
    model = Transformer(relu_config(kind="moefied", mode="sparse"))
    assert all(isinstance(f, MoEfiedFFN) and f.mode == "sparse" for f in model.ffns)
    dense_flops = Transformer(relu_config()).flops_per_token()
    model(tokens)
    assert model.flops_per_token() < dense_flops  # k/E = 2/8 of the FFN
    optimizer = make_optimizer(model, TrainConfig(lr=3e-3))
    losses = [adam_step(model, tokens, optimizer) for _ in range(15)]
    assert losses[-1] < losses[0]
    loaded = Transformer.from_pretrained(model.save_pretrained(tmp_path / "m"))
    assert torch.allclose(loaded(tokens).logits, model(tokens).logits, atol=1e-6)


def test_unmoefiable_ffns_raise_errors_naming_the_module(tokens):
    gated = Transformer(relu_config(activation="swiglu"))
    with pytest.raises(MoEficationError, match=r"blocks\.0\.ffn.*gated"):
        moefy(gated, n_experts=8, top_k=2)
    moe = Transformer(ModelConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=2, max_seq_len=32,
                                  ffn=FFNConfig(kind="moe", hidden=128, n_experts=4, top_k=2)))
    with pytest.raises(MoEficationError, match=r"blocks\.0\.ffn is a MoEFFN"):
        as_moefied(moe, 8, 2)
    with pytest.raises(MoEficationError, match="divisible"):
        moefy(Transformer(relu_config()), n_experts=7, top_k=2)


def test_random_split_is_balanced(relu_model):
    clusterings = moefy(relu_model, n_experts=8, top_k=2, split="random", seed=3)
    for c in clusterings:
        assert np.bincount(c.labels).tolist() == [16] * 8


def test_fit_routers_improves_recall_of_activation_mass(relu_model):
    from llm_dynamics_kit.ssd.moefied import fit_routers

    tokens = torch.randint(0, 100, (8, 32), generator=torch.Generator().manual_seed(0))
    moefy(relu_model, n_experts=8, top_k=2, n_iter=10)

    def recall():
        inputs = []
        hooks = [f.register_forward_pre_hook(lambda _m, a: inputs.append(a[0].reshape(-1, 32))) for f in relu_model.ffns]
        with torch.no_grad():
            relu_model(tokens)
        for h in hooks:
            h.remove()
        out = []
        for f, x in zip(relu_model.ffns, inputs):
            f.router.weight.requires_grad_(False)
            mass = f.expert_mass(x)
            top = f.router(x).topk(2, -1).indices
            out.append(float((mass.gather(1, top).sum(1) / mass.sum(1).clamp_min(1e-12)).mean().detach()))
        return np.mean(out)

    before = recall()
    router_before = relu_model.ffns[0].router.weight.clone()
    w_in_before = relu_model.ffns[0].w_in.weight.clone()
    fit_routers(relu_model, tokens, steps=60)
    assert recall() > before
    assert not torch.equal(relu_model.ffns[0].router.weight, router_before)
    assert torch.equal(relu_model.ffns[0].w_in.weight, w_in_before)


def test_saved_moefied_model_loads_without_importing_the_ssd_package(tmp_path):
    import subprocess
    import sys

    torch.manual_seed(0)
    model = Transformer(relu_config(kind="moefied", mode="sparse"))
    model.save_pretrained(tmp_path / "m")
    code = ("import sys; from llm_dynamics_kit.model import Transformer; "
            f"m = Transformer.from_pretrained({str(tmp_path / 'm')!r}); "
            "assert 'llm_dynamics_kit.ssd.bench' not in sys.modules; print(type(m.ffns[0]).__name__, m.ffns[0].mode)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["MoEfiedFFN", "sparse"]


def test_moefy_with_a_new_expert_count_rewraps_the_same_weights(tokens):
    torch.manual_seed(0)
    model = Transformer(relu_config(kind="moefied"))
    reference = model(tokens).logits
    w_in = model.ffns[0].w_in.weight
    moefy(model, n_experts=4, top_k=4, n_iter=5)
    assert all(f.n_experts == 4 and f.expert_size == 32 for f in model.ffns) and model.config.ffn.n_experts == 4
    assert model.ffns[0].w_in.weight is w_in
    assert torch.allclose(model(tokens).logits, reference, atol=1e-5)  # k = E


def test_router_cost_counted_only_in_sparse_mode_known_answer():
    # vocab 100, d=32, L=2, D=128, E=8 (m=16), top_k=2, seq 16; counted by hand:
    #   non-FFN = 2·100·32 + 2·(4·32² + 2·32) + 32 = 14_752; dense FFN = 2·(2·32·128) = 16_384; router = 2·(8·32)
    #   sparse FFN = 2·(2·32·(2·16) + 8·32) = 4_608 (brief §2.10: 2dD·k/E + dE per layer)
    #   matmul params = activated − 100·32 (embedding lookup) − (2·2·32 + 32) (norm gains)
    model = Transformer(relu_config(kind="moefied"))
    assert model.num_params() == 14_752 + 16_384 + 512
    assert model.activated_params() == 14_752 + 16_384  # dense mode never evaluates the router
    assert model.flops_per_token(16) == 6 * (31_136 - 3_360) + 6 * 2 * 16 * 32 == 172_800
    set_mode(model, "sparse")
    assert model.activated_params() == 14_752 + 4_608 == 19_360
    assert model.flops_per_token(16) == 6 * (19_360 - 3_360) + 6 * 2 * 16 * 32 == 102_144
    set_mode(model, "sparse", top_k=8)  # k = E: every weight, router included, is used
    assert model.activated_params() == model.num_params()
