"""The contractive penalty is the squared Frobenius norm of the encoder's Jacobian, exactly."""

from __future__ import annotations

import torch

import dgm
from dgm.models.latent.cae import jacobian_frobenius_sq, sigmoid_layer_jacobian_sq


def autograd_frobenius_sq(fn, x):
    return torch.stack([torch.autograd.functional.jacobian(lambda v: fn(v[None])[0], xi).square().sum() for xi in x])


def test_batched_penalty_equals_the_autograd_jacobian_of_a_conv_encoder():
    torch.manual_seed(0)
    cae = dgm.build("cae", data=dgm.DataInfo((1, 8, 8), "discrete", 17), latent_dim=3, hidden=(16,), channels=4)
    cae = cae.double()
    x = torch.randint(0, 17, (3, 1, 8, 8)).double()
    x_in = cae.encoder_input(x)
    fn = lambda v: cae.code_head(cae.features(v, None))  # noqa: E731
    z, frob = jacobian_frobenius_sq(fn, x_in)
    assert torch.allclose(z, cae.encode(x))
    assert torch.allclose(frob, autograd_frobenius_sq(fn, x_in), rtol=1e-10)


def test_the_penalty_is_trained_and_weighted_by_lambda():
    torch.manual_seed(1)
    info = dgm.DataInfo((6,), "continuous")
    x = torch.randn(5, 6)
    losses = {}
    for lam in (0.0, 2.0):
        torch.manual_seed(2)
        cae = dgm.build("cae", data=info, latent_dim=2, hidden=(8,), contraction=lam)
        out = cae.loss(x)
        losses[lam] = out
    assert torch.allclose(losses[2.0]["loss"] - losses[0.0]["loss"], losses[2.0]["contraction"])
    torch.manual_seed(2)
    cae = dgm.build("cae", data=info, latent_dim=2, hidden=(8,), contraction=2.0)
    cae.loss(x)["loss"].backward()
    first_layer = next(cae.encoder.parameters())
    assert first_layer.grad is not None and first_layer.grad.abs().sum() > 0


def test_sigmoid_closed_form_equals_the_batched_jacobian():
    g = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(4, 7, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64)
    _, frob = jacobian_frobenius_sq(lambda v: torch.sigmoid(v @ weight.t() + bias), x)
    assert torch.allclose(sigmoid_layer_jacobian_sq(x, weight, bias), frob, rtol=1e-12)
