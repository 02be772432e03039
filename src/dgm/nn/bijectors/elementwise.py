"""Elementwise affine bijectors: a learned per-dimension affine map and Glow's activation norm.

Both use the same parameterisation, a location and a *log*-scale, in the data -> base direction

    z = (x - loc) * exp(-log_scale),        log |det ∂z/∂x| = -Σ log_scale,

so ``loc`` and ``exp(log_scale)`` read as the mean and standard deviation the layer removes,
and the scale can never reach zero or change sign whatever the optimiser does.

- :class:`ElementwiseAffine` has one (loc, log_scale) per element of the event: the diagonal
  scaling layer of NICE (Dinh, Krueger & Bengio 2015, section 3.3).
- :class:`ActNorm` has one per *channel* (dim 1), shared over space, initialised from the
  first training batch so that its output has zero mean and unit variance per channel
  (Kingma & Dhariwal 2018, "Glow", section 3.1).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Bijector


def _event_shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise ConfigError(f"event shape must be non-empty with positive sizes, got {shape}")
    return shape


class ElementwiseAffine(Bijector):
    """A learned affine map per element: ``z = (x - loc) * exp(-log_scale)`` (NICE's scaling layer).

    ``shape`` is the event shape (``D`` or ``(C, H, W)``); ``loc`` and ``log_scale`` have that
    shape and start at zero (the identity). ``ladj = -Σ log_scale``, the same for every example.

    Shapes: ``x`` (B, *shape) -> ``z`` (B, *shape), ``ladj`` (B,).

    >>> layer = ElementwiseAffine(3)
    >>> z, ladj = layer(torch.randn(5, 3))
    >>> z.shape, ladj.shape
    (torch.Size([5, 3]), torch.Size([5]))
    """

    def __init__(self, shape: int | tuple[int, ...]):
        super().__init__()
        self.shape = _event_shape(shape)
        self.loc = nn.Parameter(torch.zeros(self.shape))
        self.log_scale = nn.Parameter(torch.zeros(self.shape))

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.shape:
            raise DataError(f"ElementwiseAffine expects inputs of shape (B, {self.shape}), got {tuple(x.shape)}")

    def _ladj(self, x: Tensor) -> Tensor:
        return (-self.log_scale.sum()).expand(x.shape[0])  # (B,)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        return (x - self.loc) * torch.exp(-self.log_scale), self._ladj(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(z)
        return z * torch.exp(self.log_scale) + self.loc, -self._ladj(z)


class ActNorm(Bijector):
    """Activation normalisation (Glow): a per-channel affine map with data-dependent init.

    ``z = (x - loc_c) * exp(-log_scale_c)`` on channel ``c`` = dim 1, for vectors (B, C) and
    images (B, C, H, W) alike; ``ladj = -(H W) Σ_c log_scale_c`` (spatial size 1 for vectors).

    Data-dependent initialisation (Kingma & Dhariwal 2018, section 3.1): the first ``forward``
    in training mode sets ``loc`` to the per-channel mean of the batch and ``exp(log_scale)``
    to its standard deviation plus ``eps`` (so a constant channel gives a finite log-scale),
    so that this first output has zero mean and unit variance per channel. Under
    ``torch.distributed`` the statistics are those of the union of every process's batch
    (all-reduced), so every DDP replica starts from the same parameters.

    With ``trainable=False`` loc and log_scale are buffers: fitted to the first batch, then
    fixed. A flow's input standardisation uses that, because loc and log_scale are in the
    data's own units, and an optimizer step of fixed size (Adam's is about the learning rate)
    on them moves a feature of tiny spread (a CSV column in kilometres of a few metres' spread)
    by many of its standard deviations.

    The flag ``initialized`` is a *persistent* buffer: it is saved in state dicts and
    checkpoints, so a reloaded or resumed model is not initialised a second time. ``inverse``
    and evaluation mode never initialise (sampling from a fresh model uses the identity).

    Shapes: ``x`` (B, C, *spatial) -> ``z`` same shape, ``ladj`` (B,).

    >>> norm = ActNorm(3)
    >>> z, _ = norm(5 + 2 * torch.randn(100, 3))
    >>> bool(z.mean(0).abs().max() < 1e-5)
    True
    """

    initialized: Tensor

    def __init__(self, num_features: int, eps: float = 1e-6, trainable: bool = True):
        super().__init__()
        if num_features < 1:
            raise ConfigError(f"ActNorm needs num_features >= 1, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        if trainable:
            self.loc = nn.Parameter(torch.zeros(num_features))
            self.log_scale = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_buffer("loc", torch.zeros(num_features))
            self.register_buffer("log_scale", torch.zeros(num_features))
        self.register_buffer("initialized", torch.tensor(False), persistent=True)

    def _check(self, x: Tensor) -> None:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise DataError(
                f"ActNorm({self.num_features}) expects inputs (B, {self.num_features}, ...), got {tuple(x.shape)}"
            )

    def _params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """loc and log_scale shaped to broadcast against ``x``: (1, C, 1, ..., 1) each."""
        shape = (1, -1, *([1] * (x.dim() - 2)))
        return self.loc.view(shape), self.log_scale.view(shape)

    def _ladj(self, x: Tensor) -> Tensor:
        spatial = math.prod(x.shape[2:])
        return (-spatial * self.log_scale.sum()).expand(x.shape[0])  # (B,)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set loc and log_scale from the batch ``x`` (B, C, ...) and mark the layer initialised."""
        mean, var = channel_moments(x)
        self.loc.copy_(mean)
        self.log_scale.copy_(torch.log(var.sqrt() + self.eps))
        self.initialized.fill_(True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        if self.training and not bool(self.initialized):
            self.initialize(x)
        loc, log_scale = self._params(x)
        return (x - loc) * torch.exp(-log_scale), self._ladj(x)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(z)
        loc, log_scale = self._params(z)
        return z * torch.exp(log_scale) + loc, -self._ladj(z)


def _all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over every process when torch.distributed is running; ``t`` itself otherwise."""
    if dist.is_available() and dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@torch.no_grad()
def channel_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (biased) variance of ``x`` (B, C, ...) over batch and space: (C,), (C,).

    Under ``torch.distributed`` the moments are those of all processes' batches together: the
    counts, sums and centred sums of squares are all-reduced (two passes, so a large mean does
    not cancel the variance away), which equals averaging when every process has the same
    batch size and weights processes by their batch otherwise.
    """
    flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1).double()  # (C, N)
    count = _all_reduce_sum(flat.new_tensor(float(flat.shape[1])))
    mean = _all_reduce_sum(flat.sum(dim=1)) / count  # (C,)
    var = _all_reduce_sum(((flat - mean[:, None]) ** 2).sum(dim=1)) / count  # (C,)
    return mean.to(x.dtype), var.to(x.dtype)
