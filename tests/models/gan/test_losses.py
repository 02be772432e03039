"""The adversarial losses and the tricks on their targets, against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.models.gan import losses, tricks

LOGITS_REAL = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
LOGITS_FAKE = torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _mean(values) -> float:
    return sum(values) / len(values)


R, F = LOGITS_REAL.tolist(), LOGITS_FAKE.tolist()
BY_HAND = {
    "minimax": (
        _mean([-math.log(_sig(r)) for r in R]) + _mean([-math.log(1 - _sig(f)) for f in F]),
        _mean([math.log(1 - _sig(f)) for f in F]),
    ),
    "non-saturating": (
        _mean([-math.log(_sig(r)) for r in R]) + _mean([-math.log(1 - _sig(f)) for f in F]),
        _mean([-math.log(_sig(f)) for f in F]),
    ),
    "wasserstein-gp": (_mean(F) - _mean(R), -_mean(F)),
    "hinge": (_mean([max(0, 1 - r) for r in R]) + _mean([max(0, 1 + f) for f in F]), -_mean(F)),
    "least-squares": (
        _mean([0.5 * (r - 1) ** 2 for r in R]) + _mean([0.5 * f**2 for f in F]),
        _mean([0.5 * (f - 1) ** 2 for f in F]),
    ),
}


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_each_loss_matches_its_formula_on_fixed_logits(kind):
    d_expected, g_expected = BY_HAND[kind]
    assert losses.discriminator_loss(kind, LOGITS_REAL, LOGITS_FAKE).item() == pytest.approx(d_expected, rel=1e-12)
    assert losses.generator_loss(kind, LOGITS_FAKE).item() == pytest.approx(g_expected, rel=1e-12)


def test_targets_enter_the_cross_entropy_and_least_squares_losses_as_given():
    t_real = torch.tensor([0.9, 0.0, 0.9], dtype=torch.float64)
    t_fake = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    bce = _mean(
        [-(t * math.log(_sig(r)) + (1 - t) * math.log(1 - _sig(r))) for r, t in zip(R, t_real.tolist(), strict=True)]
    )
    bce += _mean(
        [-(t * math.log(_sig(f)) + (1 - t) * math.log(1 - _sig(f))) for f, t in zip(F, t_fake.tolist(), strict=True)]
    )
    got = losses.discriminator_loss("minimax", LOGITS_REAL, LOGITS_FAKE, t_real, t_fake)
    assert got.item() == pytest.approx(bce, rel=1e-12)
    lsq = _mean([0.5 * (r - t) ** 2 for r, t in zip(R, t_real.tolist(), strict=True)])
    lsq += _mean([0.5 * (f - t) ** 2 for f, t in zip(F, t_fake.tolist(), strict=True)])
    got = losses.discriminator_loss("least-squares", LOGITS_REAL, LOGITS_FAKE, t_real, t_fake)
    assert got.item() == pytest.approx(lsq, rel=1e-12)
    with pytest.raises(ValueError, match="no targets"):
        losses.discriminator_loss("hinge", LOGITS_REAL, LOGITS_FAKE, t_real, t_fake)


def test_an_unknown_loss_is_refused_with_the_list():
    with pytest.raises(ValueError, match="non-saturating"):
        losses.generator_loss("wgan", LOGITS_FAKE)


def _normal_log_pdf(x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))


@pytest.mark.parametrize(("mu_q", "sigma_q"), [(0.0, 1.0), (1.0, 1.0), (3.0, 0.5), (-2.0, 2.0)])
def test_at_the_optimal_discriminator_the_minimax_value_is_minus_log_4_plus_twice_js(mu_q, sigma_q):
    """Goodfellow et al. 2014, Theorem 1: V(D*, G) = -log 4 + 2 JS(p || q), by quadrature."""
    x = torch.linspace(-14, 14, 200_001, dtype=torch.float64)
    log_p, log_q = _normal_log_pdf(x, 0.0, 1.0), _normal_log_pdf(x, mu_q, sigma_q)
    p, q = log_p.exp(), log_q.exp()
    logit = log_p - log_q  # D* = p / (p + q) = sigmoid(log p - log q)
    on_real, on_fake = losses.discriminator_terms("minimax", logit, logit)  # -log D*, -log(1 - D*)
    value = -(torch.trapezoid(p * on_real, x) + torch.trapezoid(q * on_fake, x))
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    kl_pm = torch.trapezoid(p * (log_p - log_m), x)
    kl_qm = torch.trapezoid(q * (log_q - log_m), x)
    js = 0.5 * (kl_pm + kl_qm)
    assert value.item() == pytest.approx(-math.log(4) + 2 * js.item(), abs=1e-7)
    # no discriminator does better than D* (the value is a maximum over D)
    for shift in (-0.5, 0.5):
        on_real, on_fake = losses.discriminator_terms("minimax", logit + shift, logit + shift)
        assert -(torch.trapezoid(p * on_real, x) + torch.trapezoid(q * on_fake, x)) < value


def test_the_non_saturating_generator_keeps_its_gradient_where_the_minimax_one_vanishes():
    """Goodfellow et al.'s reason for -log D(G(z)): early on D rejects the samples (logit << 0)."""
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(losses.generator_loss("minimax", fake), fake)
    (g_ns,) = torch.autograd.grad(losses.generator_loss("non-saturating", fake), fake)
    assert abs(g_minimax.item()) < 1e-3 < 0.99 < abs(g_ns.item())
    assert g_minimax.item() < 0 and g_ns.item() < 0  # both push the logit up


def test_the_gradient_penalty_equals_a_hand_written_autograd_version():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    real, fake = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64) + 2

    def score(h):
        return critic(h).squeeze(1)

    got = losses.gradient_penalty(score, real, fake, torch.Generator().manual_seed(5))
    e = torch.rand((16, 1), generator=torch.Generator().manual_seed(5)).double()
    expected = 0.0
    for i in range(16):
        x_hat = (e[i] * real[i] + (1 - e[i]) * fake[i]).requires_grad_(True)
        (grad,) = torch.autograd.grad(score(x_hat[None]).sum(), x_hat)
        expected += (grad.norm() - 1) ** 2 / 16
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)
    # it trains the critic: differentiable in its parameters
    (g,) = torch.autograd.grad(got, critic[0].weight)
    assert g.abs().sum() > 0


def test_label_smoothing_is_one_sided_and_flipping_swaps_at_the_given_rate():
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(tricks.real_targets(4, smoothing=0.1), torch.full((4,), 0.9))
    assert torch.equal(tricks.fake_targets(4), torch.zeros(4))
    n, p = 200_000, 0.05
    real = tricks.real_targets(n, smoothing=0.1, flip_p=p, generator=gen)
    fake = tricks.fake_targets(n, flip_p=p, generator=gen)
    assert torch.allclose(real.unique(), torch.tensor([0.1, 0.9]))  # a flipped 0.9 becomes 0.1
    se = math.sqrt(p * (1 - p) / n)
    rate_real = (real < 0.5).double().mean().item()
    rate_fake = (fake > 0.5).double().mean().item()
    assert abs(rate_real - p) < 4 * se and abs(rate_fake - p) < 4 * se


def test_instance_noise_falls_linearly_to_zero_and_stays_there():
    assert tricks.instance_noise_std(0.5, 0, 100) == 0.5
    assert tricks.instance_noise_std(0.5, 50, 100) == pytest.approx(0.25)
    assert tricks.instance_noise_std(0.5, 100, 100) == 0.0
    assert tricks.instance_noise_std(0.5, 1000, 100) == 0.0
    x = torch.zeros(100_000)
    noisy = tricks.add_noise(x, 0.3, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.3, rel=0.02)
    assert tricks.add_noise(x, 0.0) is x
