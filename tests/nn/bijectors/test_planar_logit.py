"""Planar and radial flows, the Logit pre-processing bijector and the Log (log-normal) bijector."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.errors import ConfigError
from dgm.nn.bijectors.base import Inverse, jacobian_ladj
from dgm.nn.bijectors.logit import Log, Logit
from dgm.nn.bijectors.planar import Planar, Radial, planar_map, planar_solve, planar_u_hat, radial_map
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip, gaussian, perturbed

DIM = 4


def planar_with(wu: float, seed: int = 0) -> Planar:
    """A planar flow with random w, b and a random u whose raw wᵀu is ``wu`` (before the constraint)."""
    flow = perturbed(Planar(DIM), seed=seed, scale=1.0)
    with torch.no_grad():
        w = flow.w
        flow.u.add_((wu - w @ flow.u) * w / (w @ w))
    return flow


@pytest.mark.parametrize("wu", [-8.0, -1.5, -1.0, 0.3, 4.0])
def test_planar_constraint_makes_the_map_invertible(wu):
    """wᵀû > -1 even when the raw wᵀu < -1, so det > 0 and both directions invert each other."""
    flow = planar_with(wu)
    assert torch.isclose(flow.w @ flow.u, torch.tensor(wu, dtype=torch.float64))
    assert float((flow.w @ planar_u_hat(flow.u, flow.w)).detach()) > -1
    z = 2 * gaussian(64, DIM)
    x, ladj = flow.inverse(z)
    assert bool(torch.isfinite(ladj).all())
    z_back, ladj_back = flow(x)
    torch.testing.assert_close(z_back, z, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ladj_back, -ladj, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("wu", [-3.0, 0.5])
def test_planar_ladj_matches_autograd_in_both_directions(wu):
    flow = planar_with(wu, seed=1)
    x = gaussian(5, DIM, seed=1)
    assert_round_trip(flow, x)
    assert_ladj_matches_autograd(flow, x)  # forward: the numerical solve has the right gradient


def test_planar_generative_direction_is_the_closed_form():
    """``inverse`` is f(z) = z + û tanh(wᵀz + b); Inverse(Planar) exposes it as ``forward``."""
    flow = planar_with(-2.0, seed=2)
    z = gaussian(3, DIM, seed=3)
    u_hat = planar_u_hat(flow.u, flow.w)
    expected = z + u_hat * torch.tanh(z @ flow.w + flow.b)[:, None]
    torch.testing.assert_close(flow.inverse(z)[0], expected)
    torch.testing.assert_close(Inverse(flow)(z)[0], expected)
    torch.testing.assert_close(Inverse(flow)(z)[1], jacobian_ladj(Inverse(flow), z))


def test_planar_nearly_singular_stays_finite_in_float32():
    """With wᵀu → -∞, wᵀû → -1 and det → tanh²: the log-det must stay finite, not log(0)."""
    flow = planar_with(-60.0).float()
    z = gaussian(32, DIM, dtype=torch.float32)
    x, ladj = flow.inverse(z)
    z_back, ladj_back = flow(x)
    for t in (x, ladj, z_back, ladj_back):
        assert bool(torch.isfinite(t).all())


def test_planar_per_example_parameters():
    """Amortised flows: (B, D) parameters give the same result as one flow per example."""
    z, u, w, b = gaussian(3, DIM), gaussian(3, DIM, seed=1), gaussian(3, DIM, seed=2), gaussian(3, seed=3)
    x, ladj = planar_map(z, u, w, b)
    for i in range(3):
        xi, li = planar_map(z[i : i + 1], u[i], w[i], b[i])
        torch.testing.assert_close(x[i : i + 1], xi)
        torch.testing.assert_close(ladj[i : i + 1], li)
    torch.testing.assert_close(planar_solve(x, u, w, b)[0], z)


@pytest.mark.parametrize("beta_raw", [-6.0, 0.0, 2.0])
def test_radial_inverts_and_ladj_matches_autograd(beta_raw):
    """β = -α + softplus(β_raw) ≥ -α: contracting (β < 0) and expanding flows invert."""
    flow = perturbed(Radial(DIM), seed=4, scale=1.0)
    with torch.no_grad():
        flow.beta_raw.fill_(beta_raw)
    x = gaussian(6, DIM, seed=5)
    assert_round_trip(flow, x)
    assert_ladj_matches_autograd(flow, x)
    z = gaussian(6, DIM, seed=6)
    x_of_z, ladj = radial_map(z, flow.z0, flow.alpha_raw, flow.beta_raw)
    torch.testing.assert_close(ladj, jacobian_ladj(Inverse(flow), z))
    torch.testing.assert_close(flow(x_of_z)[0], z)


def test_radial_float32_at_the_centre_and_far_away():
    flow = perturbed(Radial(DIM), seed=7, scale=1.0).float()
    with torch.no_grad():
        flow.beta_raw.fill_(-10.0)
    z = torch.cat([flow.z0.detach()[None], 1e4 * torch.ones(1, DIM), gaussian(4, DIM, dtype=torch.float32)])
    x, ladj = flow.inverse(z)
    z_back, ladj_back = flow(x)
    for t in (x, ladj, z_back, ladj_back):
        assert bool(torch.isfinite(t).all())
    torch.testing.assert_close(z_back, z, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logit_is_finite_at_zero_and_one_and_inverts(dtype):
    logit = Logit(0.05)
    x = torch.tensor([[0.0, 1e-8, 0.5, 1 - 1e-7, 1.0], [0.3, 0.7, 0.0, 1.0, 0.99]], dtype=dtype)
    z, ladj = logit(x)
    assert bool(torch.isfinite(z).all() and torch.isfinite(ladj).all())
    torch.testing.assert_close(z[0, 0], torch.tensor(math.log(0.05 / 0.95), dtype=dtype))
    torch.testing.assert_close(z[0, -1], torch.tensor(math.log(0.95 / 0.05), dtype=dtype))
    x_back, ladj_back = logit.inverse(z)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=2e-7 if dtype == torch.float32 else 1e-12)
    torch.testing.assert_close(ladj_back, -ladj)
    # the inverse (a sigmoid) is finite for any real input
    x_far, ladj_far = logit.inverse(torch.tensor([[-1e4, 1e4]], dtype=dtype))
    assert bool(torch.isfinite(x_far).all() and torch.isfinite(ladj_far).all())


def test_logit_ladj_matches_autograd_on_images():
    logit = Logit(0.1)
    x = torch.rand(3, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z, ladj = logit(x)
    torch.testing.assert_close(ladj, jacobian_ladj(logit, x))
    torch.testing.assert_close(logit.inverse(z)[1], jacobian_ladj(logit.inv(), z))
    # alpha = 0: the plain logit, whose inverse is the sigmoid
    torch.testing.assert_close(Inverse(Logit(0.0))(z)[0], torch.sigmoid(z))
    with pytest.raises(ConfigError, match="alpha"):
        Logit(0.5)


def test_log_flow_gives_the_log_normal_density():
    """Lecture notes: x = exp(z), z ~ N(0, 1); data -> base is log, and p(x) = N(log x) / x."""
    x = torch.linspace(0.01, 8.0, 50, dtype=torch.float64)[:, None]
    z, ladj = Log()(x)
    log_p = -0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi) + ladj
    closed_form = -torch.log(x[:, 0]) - 0.5 * math.log(2 * math.pi) - 0.5 * torch.log(x[:, 0]) ** 2
    torch.testing.assert_close(log_p, closed_form)
    torch.testing.assert_close(log_p, torch.distributions.LogNormal(0.0, 1.0).log_prob(x[:, 0]))
    torch.testing.assert_close(ladj, jacobian_ladj(Log(), x))
    x_back, ladj_back = Log().inverse(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(ladj_back, -ladj)
    grid = torch.linspace(1e-6, 200.0, 400001, dtype=torch.float64)
    log_p_grid = -0.5 * torch.log(grid) ** 2 - 0.5 * math.log(2 * math.pi) + Log()(grid[:, None])[1]
    assert abs(float(torch.trapezoid(log_p_grid.exp(), grid)) - 1.0) < 0.01
