"""Linear bijectors on the feature / channel axis: permutations, LU linear maps, 1x1 convolutions.

All act on dim 1 of the input: the features of a vector (B, D) or the channels of an image
(B, C, H, W), the same map at every pixel. For a matrix ``W`` applied at each of ``H W``
positions, ``log |det ∂z/∂x| = H W log |det W|`` (Kingma & Dhariwal 2018, "Glow", eq. 9);
permutations have ``|det| = 1``.

- :class:`Reverse` reverses the order (RealNVP, Glow's "reverse" baseline);
- :class:`RandomPermutation` applies a fixed random permutation (Glow's "shuffle");
- :class:`LULinear` and :class:`InvConv1x1` learn ``W``; with the LU parameterisation
  ``W = P L (U + diag(s))`` the log-det is ``Σ log |s_i|`` and the inverse two triangular
  solves (Glow, section 3.2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Bijector


def _check_features(x: Tensor, size: int, name: str) -> None:
    if x.dim() < 2 or x.shape[1] != size:
        raise DataError(f"{name} acts on dim 1 of size {size}, got inputs of shape {tuple(x.shape)}")


def _zeros(x: Tensor) -> Tensor:
    return x.new_zeros(x.shape[0])  # (B,)


class Reverse(Bijector):
    """Reverse the order of dim 1 (features or channels); ``ladj = 0``. Its own inverse."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.flip(1), _zeros(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z.flip(1), _zeros(z)


class RandomPermutation(Bijector):
    """A fixed random permutation of dim 1 drawn from ``seed``: ``z[:, i] = x[:, perm[i]]``; ``ladj = 0``.

    ``perm`` is a persistent buffer, so a saved model keeps its permutation even if the
    random number generator changes between torch versions.
    """

    perm: Tensor

    def __init__(self, dim: int, seed: int = 0):
        super().__init__()
        if dim < 1:
            raise ConfigError(f"RandomPermutation needs dim >= 1, got {dim}")
        self.dim = dim
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("perm", torch.randperm(dim, generator=generator))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(x, self.dim, "RandomPermutation")
        return x[:, self.perm], _zeros(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(z, self.dim, "RandomPermutation")
        return z[:, torch.argsort(self.perm)], _zeros(z)


def random_rotation(dim: int, seed: int = 0) -> Tensor:
    """A random orthogonal (dim, dim) matrix, Glow's initial ``W``: Q of the QR of a Gaussian matrix."""
    generator = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(dim, dim, generator=generator))[0]


def _apply(weight: Tensor, x: Tensor) -> Tensor:
    """``W`` (C, C) applied to dim 1 of ``x`` (B, C, *spatial) at every position."""
    return torch.einsum("ij,bj...->bi...", weight.to(x.dtype), x)


class _ChannelLinear(Bijector):
    """``z = W x`` on dim 1 at every position; subclasses give ``W``, ``W⁻¹`` and ``log |det W|``."""

    def __init__(self, size: int):
        super().__init__()
        if size < 1:
            raise ConfigError(f"{type(self).__name__} needs a size >= 1, got {size}")
        self.size = size

    def weight(self) -> Tensor:
        """``W``, (C, C)."""
        raise NotImplementedError

    def inverse_weight(self) -> Tensor:
        """``W⁻¹``, (C, C)."""
        raise NotImplementedError

    def logabsdet(self) -> Tensor:
        """``log |det W|``, a scalar."""
        raise NotImplementedError

    def _ladj(self, x: Tensor) -> Tensor:
        return (math.prod(x.shape[2:]) * self.logabsdet()).to(x.dtype).expand(x.shape[0])  # (B,)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(x, self.size, type(self).__name__)
        return _apply(self.weight(), x), self._ladj(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(z, self.size, type(self).__name__)
        return _apply(self.inverse_weight(), z), -self._ladj(z)


class LULinear(_ChannelLinear):
    """A learned invertible linear map ``W = P L (U + diag(s))`` on dim 1 (Glow, section 3.2).

    ``P`` is a fixed permutation (buffer ``perm``: ``(P v)_i = v[perm[i]]``), ``L`` unit lower
    triangular, ``U`` strictly upper triangular and ``s = sign ⊙ exp(log_abs_s)`` with the sign
    fixed, so ``W`` stays invertible and ``log |det W| = Σ log_abs_s``, O(C) instead of O(C^3).
    ``W⁻¹ = (U + diag(s))⁻¹ L⁻¹ Pᵀ`` takes two triangular solves. Initialised from the LU
    decomposition of a random rotation drawn from ``seed``.

    Shapes: ``x`` (B, dim) or (B, dim, *spatial) -> ``z`` same shape, ``ladj`` (B,)
    (``spatial`` size times ``Σ log_abs_s``).
    """

    perm: Tensor
    sign: Tensor

    def __init__(self, dim: int, seed: int = 0):
        super().__init__(dim)
        p, lower, upper = torch.linalg.lu(random_rotation(dim, seed))
        s = torch.diagonal(upper)
        # Fixed structure saved with the weights: a reloaded model must not depend on the RNG.
        self.register_buffer("perm", p.argmax(dim=1))
        self.register_buffer("sign", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(lower, -1))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_abs_s = nn.Parameter(torch.log(s.abs()))

    def _factors(self) -> tuple[Tensor, Tensor]:
        """``L`` (unit lower) and ``U + diag(s)`` (upper), each (C, C)."""
        eye = torch.eye(self.size, dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.log_abs_s))
        return lower, upper

    def weight(self) -> Tensor:
        lower, upper = self._factors()
        return (lower @ upper)[self.perm]  # rows permuted: P (L U)

    def inverse_weight(self) -> Tensor:
        lower, upper = self._factors()
        eye = torch.eye(self.size, dtype=lower.dtype, device=lower.device)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        lu_inv = torch.linalg.solve_triangular(upper, lower_inv, upper=True)  # (L U)^{-1}
        return lu_inv[:, self.perm]  # columns permuted: (L U)^{-1} Pᵀ

    def logabsdet(self) -> Tensor:
        return self.log_abs_s.sum()


class _DenseLinear(_ChannelLinear):
    """``W`` a dense learned matrix; ``log |det W|`` and ``W⁻¹`` by O(C^3) linear algebra."""

    def __init__(self, size: int, seed: int = 0):
        super().__init__(size)
        self.matrix = nn.Parameter(random_rotation(size, seed))

    def weight(self) -> Tensor:
        return self.matrix

    def inverse_weight(self) -> Tensor:
        return torch.linalg.inv(self.matrix)

    def logabsdet(self) -> Tensor:
        return torch.linalg.slogdet(self.matrix)[1]


class InvConv1x1(Bijector):
    """Glow's invertible 1x1 convolution: a learned ``W`` (C, C) applied to every pixel's channels.

    ``ladj = H W log |det W|`` (Kingma & Dhariwal 2018, eq. 9). With ``lu=True`` ``W`` is
    LU-parameterised as in :class:`LULinear` (log-det O(C), inverse by triangular solves);
    with ``lu=False`` it is a dense matrix (slogdet and inverse O(C^3)). Either way ``W`` starts
    as a random rotation drawn from ``seed``. Also accepts vectors (B, C) (H W = 1).

    Shapes: ``x`` (B, C, H, W) -> ``z`` (B, C, H, W), ``ladj`` (B,).
    """

    def __init__(self, channels: int, lu: bool = True, seed: int = 0):
        super().__init__()
        self.channels = channels
        self.linear = LULinear(channels, seed) if lu else _DenseLinear(channels, seed)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(x, self.channels, "InvConv1x1")
        return self.linear(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_features(z, self.channels, "InvConv1x1")
        return self.linear.inverse(z)
