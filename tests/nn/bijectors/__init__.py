"""Shared property checks for bijector tests: random parameters, round trips, autograd log-dets."""

from __future__ import annotations

import torch
from torch import nn

from dgm.nn.bijectors.base import Bijector, jacobian_ladj


def perturbed(module: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    """``module`` in float64 with noise added to every parameter, so no layer is the identity.

    Zero-initialised output layers would otherwise make every coupling the identity, and a
    test on the identity proves nothing about inverses or log-dets.
    """
    module = module.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def assert_round_trip(bijector: Bijector, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
    """inverse(forward(x)) = x, forward(inverse(z)) = z, inverse ladj = -forward ladj, and not the identity."""
    z, ladj = bijector(x, cond)
    assert z.numel() == x.numel() and ladj.shape == (x.shape[0],)
    if z.shape == x.shape:
        assert not torch.allclose(z, x, atol=1e-3), "the bijector is the identity: the test proves nothing"
    x_back, ladj_back = bijector.inverse(z, cond)
    torch.testing.assert_close(x_back, x, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(ladj_back, -ladj, rtol=1e-7, atol=1e-9)

    z0 = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=z.dtype)
    x0, _ = bijector.inverse(z0, cond)
    torch.testing.assert_close(bijector(x0, cond)[0], z0, rtol=1e-7, atol=1e-9)


def assert_ladj_matches_autograd(bijector: Bijector, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
    """The forward ladj equals log|det| of autograd's Jacobian at ``x``, and the inverse's at ``z``."""
    z, ladj = bijector(x, cond)
    torch.testing.assert_close(ladj, jacobian_ladj(bijector, x, cond), rtol=1e-7, atol=1e-8)
    _, ladj_inv = bijector.inverse(z, cond)
    torch.testing.assert_close(ladj_inv, jacobian_ladj(bijector.inv(), z, cond), rtol=1e-7, atol=1e-8)


def gaussian(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Standard normal draws of ``shape`` from their own seeded generator."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
