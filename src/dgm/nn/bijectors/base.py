"""The bijector interface: invertible maps that return their log-abs-det-Jacobian.

One direction everywhere: a bijector maps **data to base**. ``forward(x, cond) -> (z, ladj)``
with ``ladj = log |det ∂z/∂x|`` per example, shape (B,); ``inverse(z, cond) -> (x, ladj)`` maps
back with ``ladj = log |det ∂x/∂z|`` (the negative of the forward one at the matching point).
A flow's density is then the change of variables

    log p_x(x) = log p_z(f(x)) + log |det ∂f/∂x|,

and composition sums the log-dets (Dinh et al. 2017, eq. 2-3; zuko's ``Transform``).

Conditional bijectors take class labels (or any context tensor) ``cond``, shape (B, ...), and
pass it to their conditioner networks; unconditional ones ignore ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


class Bijector(nn.Module):
    """Base class: an invertible map from data ``x`` to base ``z`` with its log-abs-det.

    Subclasses implement :meth:`forward` and :meth:`inverse`; both return ``(output, ladj)``
    where ``ladj`` has shape (B,) and is float of the input's dtype.
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data -> base: ``(z, log|det ∂z/∂x|)``."""
        raise NotImplementedError

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Base -> data: ``(x, log|det ∂x/∂z|)``."""
        raise NotImplementedError

    def inv(self) -> Bijector:
        """The inverse bijector (directions swapped), sharing parameters with this one."""
        return Inverse(self)


class Inverse(Bijector):
    """``bijector`` with its directions swapped (e.g. an IAF from a MAF transform)."""

    def __init__(self, bijector: Bijector):
        super().__init__()
        self.bijector = bijector

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijector.inverse(x, cond)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijector.forward(z, cond)

    def inv(self) -> Bijector:
        return self.bijector


class Compose(Bijector):
    """Bijectors applied in order (data -> base); log-dets add up. ``inverse`` runs them backwards."""

    def __init__(self, bijectors: Iterable[Bijector]):
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for bijector in self.bijectors:
            x, ladj = bijector(x, cond)
            total = total + ladj
        return x, total

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(z.shape[0])
        for bijector in reversed(self.bijectors):
            z, ladj = bijector.inverse(z, cond)
            total = total + ladj
        return z, total


def sum_except_batch(t: Tensor) -> Tensor:
    """Sum over every dimension but the first: (B, ...) -> (B,)."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def jacobian_ladj(bijector: Bijector, x: Tensor, cond: Tensor | None = None) -> Tensor:
    """log|det ∂f/∂x| per example by autograd (for tests and checks; O(D) backward passes).

    ``x`` has shape (B, *event); returns (B,). Use float64 and small D.
    """
    out = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        ci = None if cond is None else cond[i : i + 1]

        def f(v, xi=xi, ci=ci):
            return bijector(v.reshape(xi.shape), ci)[0].reshape(-1)

        jac = torch.autograd.functional.jacobian(f, xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)
