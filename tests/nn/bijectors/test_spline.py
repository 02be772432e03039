"""Rational-quadratic splines (NSF) and the spline bijectors."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import jacobian_ladj
from dgm.nn.bijectors.coupling import ConvConditioner, MLPConditioner, checkerboard_mask, vector_mask
from dgm.nn.bijectors.spline import (
    AutoregressiveSpline,
    ElementwiseSpline,
    SplineCoupling,
    rq_spline,
    rq_spline_packed,
    spline_knots,
)
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip, perturbed

BOUND = 3.0


BINS = 6


def spline_params(n: int, scale: float, dtype=torch.float64, seed: int = 0, bins: int = BINS):
    """Random unnormalised widths, heights (n, K) and derivatives (n, K-1)."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(n, k, generator=gen, dtype=dtype) for k in (bins, bins, bins - 1))


def sample_points(dtype=torch.float64) -> torch.Tensor:
    """Interior points, both bounds exactly, points just inside/outside them, tails, |x| = 1e4."""
    b = BOUND
    special = [-1e4, -50.0, -b - 1e-3, -b, -b + 1e-6, 0.0, b - 1e-6, b, b + 1e-3, 50.0, 1e4]
    interior = torch.linspace(-b, b, 41, dtype=torch.float64)[1:-1].tolist()
    return torch.tensor(special + interior, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rq_spline_round_trip_on_bounds_tails_and_far_points(dtype):
    x = sample_points(dtype)
    scale = 1.0 if dtype == torch.float32 else 2.0  # float32: keep slopes where rounding stays small
    params = spline_params(len(x), scale, dtype)
    y, ladj = rq_spline(x, *params, bound=BOUND)
    assert y.dtype == dtype and bool(torch.isfinite(y).all() and torch.isfinite(ladj).all())
    x_back, ladj_back = rq_spline(y, *params, inverse=True, bound=BOUND)
    assert bool(torch.isfinite(x_back).all() and torch.isfinite(ladj_back).all())
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-9}
    torch.testing.assert_close(x_back, x, **tol)
    torch.testing.assert_close(ladj_back, -ladj, **tol)
    # and the other way round: inverse then forward
    z = torch.linspace(-BOUND - 1, BOUND + 1, len(x), dtype=dtype)
    x_of_z, ladj_inv = rq_spline(z, *params, inverse=True, bound=BOUND)
    z_back, ladj_fwd = rq_spline(x_of_z, *params, bound=BOUND)
    torch.testing.assert_close(z_back, z, **tol)
    torch.testing.assert_close(ladj_fwd, -ladj_inv, **tol)


def test_rq_spline_is_identity_in_the_tails_and_maps_bounds_to_bounds():
    x = sample_points()
    y, ladj = rq_spline(x, *spline_params(len(x), 2.0), bound=BOUND)
    outside = x.abs() > BOUND
    assert torch.equal(y[outside], x[outside]) and torch.equal(ladj[outside], torch.zeros_like(ladj[outside]))
    at_bounds = x.abs() == BOUND
    torch.testing.assert_close(y[at_bounds], x[at_bounds], rtol=0, atol=1e-12)
    assert not torch.allclose(y[~outside & ~at_bounds], x[~outside & ~at_bounds], atol=1e-2)


def test_rq_spline_derivative_matches_finite_difference_and_is_positive():
    x = torch.linspace(-BOUND - 0.5, BOUND + 0.5, 301, dtype=torch.float64)
    params = spline_params(len(x), 1.5)
    eps = 1e-6
    y_plus, _ = rq_spline(x + eps, *params, bound=BOUND)
    y_minus, _ = rq_spline(x - eps, *params, bound=BOUND)
    _, ladj = rq_spline(x, *params, bound=BOUND)
    torch.testing.assert_close(torch.exp(ladj), (y_plus - y_minus) / (2 * eps), rtol=1e-5, atol=1e-7)
    # the same spline on a grid is strictly increasing
    shared = tuple(p[:1].expand(len(x), -1) for p in params)
    y, _ = rq_spline(x, *shared, bound=BOUND)
    assert bool((y[1:] > y[:-1]).all())


def test_rq_spline_inverse_sends_knots_to_knots():
    params = spline_params(1, 2.0)
    knots_x, knots_y, _ = spline_knots(*params, bound=BOUND)
    k = BINS + 1
    x, _ = rq_spline(knots_y[0], *(p.expand(k, -1) for p in params), inverse=True, bound=BOUND)
    torch.testing.assert_close(x, knots_x[0], rtol=0, atol=1e-12)


def test_rq_spline_zero_parameters_are_the_identity():
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    y, ladj = rq_spline(x, *spline_params(len(x), 0.0), bound=BOUND)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj, torch.zeros_like(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inverse", [False, True])
def test_rq_spline_gradients_are_finite_everywhere(dtype, inverse):
    """Extreme parameters, bounds, tails and far points: no NaN/inf in values or gradients."""
    x = sample_points(dtype).requires_grad_()
    params = tuple(p.requires_grad_() for p in spline_params(len(x), 8.0, dtype))
    y, ladj = rq_spline(x, *params, inverse=inverse, bound=BOUND)
    (y.sum() + ladj.sum()).backward()
    for t in (y, ladj, x.grad, *(p.grad for p in params)):
        assert bool(torch.isfinite(t).all())


def test_rq_spline_broadcasts_shared_parameters_and_checks_counts():
    x = torch.randn(4, 3, dtype=torch.float64)
    w, h, d = spline_params(3, 1.0)  # one spline per column, shared over the batch
    y, _ = rq_spline(x, w, h, d, bound=BOUND)
    y_full, _ = rq_spline(x, *(p.expand(4, -1, -1) for p in (w, h, d)), bound=BOUND)
    torch.testing.assert_close(y, y_full)
    with pytest.raises(DataError, match="derivatives"):
        rq_spline(x, w, h, d[:, :-1], bound=BOUND)
    with pytest.raises(ConfigError, match="min_width"):
        rq_spline(x, w, h, d, bound=BOUND, min_width=0.5)


def test_elementwise_spline_density_integrates_to_one():
    """A 1-D flow: standard normal base and a random spline; trapezoid over [-10, 10]."""
    flow = perturbed(ElementwiseSpline(1, bins=BINS, bound=BOUND), scale=1.5)
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        z, ladj = flow(x)
    log_p = -0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi) + ladj
    mass = torch.trapezoid(log_p.exp(), x[:, 0])
    assert abs(float(mass) - 1.0) < 0.01
    assert not torch.allclose(z, x, atol=1e-2)


def make_spline_bijector(kind: str, num_classes: int | None = None):
    """A spline bijector with random parameters and a float64 input for it."""
    gen = torch.Generator().manual_seed(3)
    if kind == "elementwise":
        return perturbed(ElementwiseSpline(4, bins=BINS, bound=BOUND), scale=1.0), 1.5 * torch.randn(
            5, 4, generator=gen, dtype=torch.float64
        )
    if kind == "autoregressive":
        layer = AutoregressiveSpline(
            4, bins=BINS, bound=BOUND, hidden=(16, 16), order="random", num_classes=num_classes
        )
        return perturbed(layer), 1.5 * torch.randn(5, 4, generator=gen, dtype=torch.float64)
    if kind in ("coupling", "residual_coupling"):
        hidden = (16,) if kind == "coupling" else (16, 16)
        builder = partial(
            MLPConditioner, 4, hidden=hidden, num_classes=num_classes or 0, emb_dim=4, residual=kind != "coupling"
        )
        # the residual MLP adds up its layers' noise: half the noise gives raw parameters of the same size
        scale = 0.3 if kind == "coupling" else 0.15
        return perturbed(
            SplineCoupling(vector_mask(4), builder, bins=BINS, bound=BOUND), scale=scale
        ), 1.5 * torch.randn(5, 4, generator=gen, dtype=torch.float64)
    builder = partial(ConvConditioner, 2, hidden=8, num_classes=num_classes or 0)
    layer = SplineCoupling(checkerboard_mask(2, 2), builder, bins=BINS, bound=BOUND)
    return perturbed(layer), 1.5 * torch.randn(2, 2, 2, 2, generator=gen, dtype=torch.float64)


SPLINE_KINDS = ["elementwise", "autoregressive", "coupling", "residual_coupling", "image_coupling"]


@pytest.mark.parametrize("kind", SPLINE_KINDS)
def test_spline_bijectors_invert_and_match_autograd_ladj(kind):
    bijector, x = make_spline_bijector(kind)
    x = torch.cat([x, torch.full_like(x[:1], BOUND), torch.full_like(x[:1], 1e4)])  # bound and far tail
    assert_round_trip(bijector, x)
    assert_ladj_matches_autograd(bijector, x)


@pytest.mark.parametrize("kind", ["autoregressive", "coupling"])
def test_conditional_spline_bijectors(kind):
    bijector, x = make_spline_bijector(kind, num_classes=3)
    cond = torch.tensor([0, 1, 2, 0, 1])
    assert_round_trip(bijector, x, cond)
    assert_ladj_matches_autograd(bijector, x, cond)
    z_other, _ = bijector(x, (cond + 1) % 3)
    assert not torch.allclose(bijector(x, cond)[0], z_other, atol=1e-4)


def test_autoregressive_spline_jacobian_is_triangular_in_its_order():
    layer = perturbed(AutoregressiveSpline(5, bins=4, hidden=(16,), order="random", seed=2))
    x = torch.randn(5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x)  # (D, D)
    order = layer.conditioner.order
    permuted = jac[order][:, order]  # rows and columns in the order of transformation
    assert torch.equal(permuted.triu(1), torch.zeros_like(permuted))
    assert bool((permuted.tril(-1).abs() > 1e-8).any())


@pytest.mark.parametrize("kind", SPLINE_KINDS)
def test_spline_bijectors_in_float32_stay_finite_far_out(kind):
    bijector, x = make_spline_bijector(kind)
    bijector = bijector.float()
    x = torch.cat([x.float(), torch.full_like(x[:1], -1e4).float(), torch.full_like(x[:1], BOUND).float()])
    z, ladj = bijector(x)
    x_back, ladj_back = bijector.inverse(z)
    assert bool(torch.isfinite(z).all() and torch.isfinite(ladj).all() and torch.isfinite(x_back).all())
    torch.testing.assert_close(x_back, x, rtol=1e-3, atol=1e-3)
    # float32 rounding of z near a narrow boundary bin moves the summed log-slopes by ~1e-3
    torch.testing.assert_close(ladj_back, -ladj, rtol=1e-3, atol=1e-2)


def test_autoregressive_spline_matches_jacobian_with_few_passes():
    """D = 1 and hidden=() (a single masked linear layer) still invert exactly."""
    for layer in (AutoregressiveSpline(1, bins=3, bound=BOUND), AutoregressiveSpline(3, bins=3, hidden=())):
        layer = perturbed(layer)
        x = torch.randn(4, layer.dim, dtype=torch.float64)
        z, ladj = layer(x)
        torch.testing.assert_close(layer.inverse(z)[0], x)
        torch.testing.assert_close(ladj, jacobian_ladj(layer, x))


@pytest.mark.parametrize("inverse", [False, True])
def test_rq_spline_gradients_match_finite_differences(inverse):
    """The hand-written backward of the forward spline (and autograd's inverse) w.r.t. x and parameters."""
    gen = torch.Generator().manual_seed(5)
    x = torch.tensor([-7.0, -2.9, -1.3, -0.2, 0.4, 1.7, 2.95, 4.0], dtype=torch.float64).requires_grad_()
    params = (1.5 * torch.randn(8, 3 * BINS - 1, generator=gen, dtype=torch.float64)).requires_grad_()

    def spline(x, params):
        return rq_spline_packed(x, params, BINS, inverse=inverse, bound=BOUND)

    assert torch.autograd.gradcheck(spline, (x, params))
    # shared parameters broadcast over a batch: the gradient sums over it
    shared = params[:1].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(spline, (x, shared))
