import numpy as np
import pytest
import torch

from safety_kit.clickbait import losses as L
from safety_kit.clickbait.model import DebiasedClickbaitClassifier


def test_kl_terms_known_answers():
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    assert L.kl_to_standard_normal(mu, logvar).item() == pytest.approx(0.0)
    assert L.kl_to_standard_normal(torch.ones(4, 3), logvar).item() == pytest.approx(1.5)
    means = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    onehot = torch.tensor([[1.0, 0.0]] * 4)
    assert L.kl_to_environment_prior(torch.ones(4, 3), logvar, means, onehot).item() == pytest.approx(0.0)


def test_vrex_and_irm_penalties():
    env = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert L.vrex_penalty(torch.tensor([1.0, 1.0, 1.0, 1.0]), env).item() == pytest.approx(0.0)
    assert L.vrex_penalty(torch.tensor([1.0, 1.0, 3.0, 3.0]), env).item() == pytest.approx(1.0)  # var of (1, 3)
    # IRMv1 is zero at a logit scale that is already optimal in every environment: logits 0 with balanced labels
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    env_bal = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert L.irm_penalty(torch.tensor([2.0, -2.0, 2.0, -2.0]) * 0, y, env_bal).item() == pytest.approx(0.0, abs=1e-8)
    assert L.irm_penalty(torch.tensor([2.0, -2.0, -2.0, 2.0]), y, env_bal).item() > 0.01


def test_gradient_reversal_flips_and_scales():
    x = torch.ones(3, requires_grad=True)
    (L.grad_reverse(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_hsic_and_orthogonality():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=g).float()
    dependent = y.view(-1, 1) + 0.1 * torch.randn(200, 2, generator=g)
    independent = torch.randn(200, 2, generator=g)
    assert L.hsic(dependent, y) > 10 * L.hsic(independent, y)
    z = torch.randn(256, 4, generator=g)
    assert L.orthogonality([z, z]).item() > 0.2
    assert L.orthogonality([z, torch.randn(256, 4, generator=g)]).item() < 0.02


def _fitted(**kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = DebiasedClickbaitClassifier(fused_dim=16, group_dim=8, latent_dim=4, hidden_dim=16, max_epochs=3,
                                        warmup_epochs=1, n_environments=2, random_state=0, **kw).fit(X, y)
    return model, X, y, rng.integers(0, 2, size=120)


def _grads(model, term):
    model.network_.zero_grad()
    term.backward(retain_graph=True)
    net = model.network_
    norm = (lambda module: sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None))  # noqa
    return {"inv": norm(net.encoders["inv"]), "c": norm(net.encoders["c"]), "n": norm(net.encoders["n"]),
            "inv_head": norm(net.invariant_head), "probe": norm(net.environment_probe),
            "noise_head": norm(net.noise_head), "classifier": norm(net.classifier), "decoder": norm(net.decoder)}


def test_each_loss_term_reaches_only_its_modules():
    model, X, y, env = _fitted()
    terms = model.loss_terms(X, y, environments=env)
    assert set(terms) == {"cls", "aux", "rec", "kl", "inv", "env", "noise", "orth"}
    g = _grads(model, terms["inv"])  # V-REx on the invariant head: z_inv's encoder and w_inv only
    assert g["inv"] > 0 and g["inv_head"] > 0 and g["c"] == g["n"] == g["classifier"] == 0
    g = _grads(model, terms["env"])  # z_c carries the scenario
    assert g["c"] > 0 and g["probe"] > 0 and g["inv"] == g["n"] == 0
    g = _grads(model, terms["noise"])  # adversary on z_n
    assert g["n"] > 0 and g["noise_head"] > 0 and g["inv"] == g["c"] == 0
    g = _grads(model, terms["cls"])  # the classifier never reads z_n
    assert g["inv"] > 0 and g["c"] > 0 and g["n"] == 0
    g = _grads(model, terms["rec"])
    assert g["decoder"] > 0 and g["inv"] > 0 and g["n"] > 0


def test_noise_adversary_pushes_encoder_to_hide_the_label():
    """One step along the encoder's gradient of the GRL term makes the adversary's BCE go up, not down."""
    model, X, y, env = _fitted(lambda_noise=1.0)
    net = model.network_
    Xs = torch.from_numpy(model._standardise(X))
    y_t = torch.from_numpy(y.astype(np.float32))

    def head_bce():
        with torch.no_grad():
            z = net(Xs, sample=False)["mu_n"]
            return torch.nn.functional.binary_cross_entropy_with_logits(net.noise_head(z).squeeze(1), y_t).item()

    before = head_bce()
    net.train()
    net.zero_grad()
    model.loss_terms(X, y, environments=env)["noise"].backward()
    with torch.no_grad():
        for p in list(net.encoders["n"].parameters()) + list(net.projector.parameters()):
            if p.grad is not None:
                p -= 0.05 * p.grad
    assert head_bce() > before


@pytest.mark.parametrize("switch", ["lambda_inv", "lambda_env", "lambda_noise", "lambda_orth", "lambda_rec",
                                    "lambda_aux", "beta_kl"])
def test_zero_weight_switches_a_term_off(switch):
    name = {"lambda_inv": "inv", "lambda_env": "env", "lambda_noise": "noise", "lambda_orth": "orth",
            "lambda_rec": "rec", "lambda_aux": "aux", "beta_kl": "kl"}[switch]
    model, X, y, env = _fitted(**{switch: 0.0})
    terms = model.loss_terms(X, y, environments=env)
    assert name not in terms and "cls" in terms


def test_irm_and_hsic_variants_and_warmup():
    model, X, y, env = _fitted(invariance_penalty="irm", noise_penalty="hsic")
    terms = model.loss_terms(X, y, environments=env)
    assert terms["inv"].item() >= 0 and terms["noise"].item() >= 0
    warm = model.loss_terms(X, y, environments=env, warm=True)
    assert set(warm) == {"cls", "aux", "rec", "kl"}  # stage 1 of brief §2.4
