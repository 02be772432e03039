"""On a linear-Gaussian model, where log p(x) is known in closed form, the ELBO is below it and the
importance-weighted estimate climbs towards it as k grows (Burda et al. 2016, theorem 1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dgm
from dgm.models.latent.gaussian import gaussian_log_prob


@pytest.fixture(scope="module")
def linear_gaussian():
    """A VAE whose decoder is linear with a fixed-variance Gaussian head: z ~ N(0, I),
    x | z ~ N(Wz + b, σ² I), so x ~ N(b, W Wᵀ + σ² I); its encoder is a random network."""
    torch.manual_seed(0)
    vae = dgm.build("vae", data=dgm.DataInfo((3,), "continuous"), latent_dim=2, hidden=(16,), sigma=0.5).double()
    vae.decoder = nn.Linear(2, 3).double()  # p(x | z) = N(Wz + b, 0.25 I), exactly
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(0.3 * torch.randn_like(p))
    w, b = vae.decoder.weight, vae.decoder.bias
    cov = w @ w.t() + 0.25 * torch.eye(3, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64) @ torch.linalg.cholesky(cov).t() + b
    exact = torch.distributions.MultivariateNormal(b, cov).log_prob(x).detach()
    return vae.eval(), x.detach(), exact


def test_elbo_is_below_the_exact_log_likelihood(linear_gaussian):
    vae, x, exact = linear_gaussian
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = vae.elbo(x.repeat(4000, 1), generator=g).view(4000, 4)
    elbo, se = draws.mean(0), draws.std(0) / 4000**0.5
    assert (elbo + 4 * se < exact).all(), (elbo, exact)


def test_importance_weighted_estimate_increases_with_k_towards_log_p(linear_gaussian):
    vae, x, exact = linear_gaussian
    g = torch.Generator().manual_seed(2)
    means = []
    with torch.no_grad():
        for k in (1, 10, 100, 1000):
            repeats = 2000 // k + 20
            means.append(vae.log_prob(x.repeat(repeats, 1), k=k, generator=g).view(repeats, 4).mean(0))
    gaps = [(exact - m).mean().item() for m in means]
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps  # tighter with every k
    assert gaps[-1] > -0.01 and gaps[-1] < 0.1 * gaps[0], gaps  # still a bound, and close


def test_with_the_exact_posterior_the_elbo_is_the_log_likelihood(linear_gaussian):
    """q(z | x) = p(z | x) = N(A (x - b), (I + WᵀW/σ²)⁻¹), A = Σ Wᵀ/σ²: the gap KL(q ‖ p(z|x)) is 0."""
    vae, x, exact = linear_gaussian
    w, b = vae.decoder.weight.detach(), vae.decoder.bias.detach()
    post_cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + w.t() @ w / 0.25)
    post_mean = (x - b) @ (post_cov @ w.t() / 0.25).t()  # (4, 2)
    z = torch.distributions.MultivariateNormal(post_mean, post_cov).sample((20000,))  # (20000, 4, 2)
    log_q = torch.distributions.MultivariateNormal(post_mean, post_cov).log_prob(z)
    zero = torch.zeros(2, dtype=torch.float64)
    log_joint = vae.reconstruction_log_prob(x, z) + gaussian_log_prob(z, zero, zero)
    weights = log_joint - log_q  # constant = log p(x) for the exact posterior
    assert torch.allclose(weights, exact.expand_as(weights), atol=1e-8)
