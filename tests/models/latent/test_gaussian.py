"""The Gaussian pieces of a VAE: analytic KL against Monte Carlo, reparameterized gradients."""

from __future__ import annotations

import torch

from dgm.models.latent.gaussian import gaussian_kl, gaussian_log_prob, reparameterize, std_normal_log_prob


def test_analytic_kl_equals_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 4, generator=g, dtype=torch.float64)
    log_var = 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    z = reparameterize(mean, log_var, g, k=200_000)  # (k, 3, 4)
    mc = (gaussian_log_prob(z, mean, log_var) - std_normal_log_prob(z)).mean(0)
    se = (gaussian_log_prob(z, mean, log_var) - std_normal_log_prob(z)).std(0) / 200_000**0.5
    analytic = gaussian_kl(mean, log_var)
    assert ((mc - analytic).abs() < 5 * se).all(), (mc, analytic)
    assert (analytic > 0).all()


def test_kl_is_zero_only_at_the_prior():
    zero = torch.zeros(2, 5)
    assert torch.equal(gaussian_kl(zero, zero), torch.zeros(2))
    assert (gaussian_kl(zero + 0.1, zero) > 0).all() and (gaussian_kl(zero, zero - 0.1) > 0).all()


def test_gaussian_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mean, log_var, z = torch.randn(3, 2, 5, generator=g).unbind(0)
    expected = torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_prob(z, mean, log_var), expected, atol=1e-5)


def test_reparameterized_draws_have_the_moments_and_the_gradients():
    mean = torch.tensor([[1.0, -2.0]], requires_grad=True)
    log_var = torch.tensor([[0.0, 2 * torch.log(torch.tensor(3.0)).item()]], requires_grad=True)
    z = reparameterize(mean, log_var, torch.Generator().manual_seed(2), k=100_000)
    assert torch.allclose(z.mean((0, 1)), mean.detach()[0], atol=0.05)
    assert torch.allclose(z.std((0, 1)), torch.tensor([1.0, 3.0]), atol=0.05)
    z.mean().backward()
    assert mean.grad is not None and torch.allclose(mean.grad, torch.full((1, 2), 0.5))
    assert log_var.grad is not None and log_var.grad.abs().sum() > 0
