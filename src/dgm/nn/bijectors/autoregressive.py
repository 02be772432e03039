"""Masked autoregressive bijectors: the MADE conditioner, MAF and (as its inverse) IAF.

An autoregressive bijector transforms dimension ``d`` with parameters that depend only on the
dimensions before ``d`` in an ordering, so its Jacobian is triangular in that ordering and its
log-det is the sum of the elementwise log-derivatives. The parameters of all dimensions come
from one masked network (MADE; Germain et al. 2015, built from :mod:`dgm.nn.masked`):

- data -> base (``forward``, the density direction) takes **one** pass: every ``x_<d`` is known;
- base -> data (``inverse``, sampling) takes **D** sequential passes: pass ``k`` fixes the
  ``k``-th dimension of the ordering.

:class:`MaskedAffineAutoregressive` is MAF (Papamakarios, Pavlakou & Murray 2017): fast density,
slow sampling. IAF (Kingma et al. 2016) is the same transform used the other way round,
``iaf = Inverse(MaskedAffineAutoregressive(...))``: sampling, ``iaf.inverse(z)`` (base -> data),
is MAF's one-pass ``forward`` applied to the noise, ``x = (z - mu(z)) * exp(-alpha(z))``, and
returns its log-det at no extra cost, which is what a VAE posterior needs; the density of an
arbitrary point, ``iaf(x)``, is MAF's D-pass ``inverse``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Bijector
from dgm.nn.bijectors.coupling import parameter_major, soft_clamp
from dgm.nn.masked import MaskedLinear, made_degrees, made_masks, random_order

OrderName = Literal["natural", "reversed", "random"]


def make_order(dim: int, order: OrderName | Tensor = "natural", seed: int = 0) -> Tensor:
    """The ordering of ``dim`` dimensions: ``order[i]`` is the dimension transformed at step ``i``.

    ``"natural"`` is 0..D-1, ``"reversed"`` D-1..0 (alternate the two between stacked layers),
    ``"random"`` a permutation drawn from ``seed``; a tensor is checked to be a permutation.
    Returns a long tensor (D,).
    """
    if isinstance(order, Tensor):
        perm = order.detach().to(device="cpu", dtype=torch.long).flatten()
        if perm.numel() != dim or not torch.equal(perm.sort().values, torch.arange(dim)):
            raise ConfigError(f"order must be a permutation of 0..{dim - 1}, got {order.tolist()}")
        return perm
    if order == "natural":
        return torch.arange(dim)
    if order == "reversed":
        return torch.arange(dim - 1, -1, -1)
    if order == "random":
        return random_order(dim, torch.Generator().manual_seed(seed))
    raise ConfigError(f"unknown order {order!r}; use 'natural', 'reversed', 'random' or a permutation tensor")


class MADEConditioner(nn.Module):
    """A MADE network giving ``params_per_dim`` parameters for each of ``dim`` dimensions.

    ``params[:, d]`` depends only on the inputs before ``d`` in the ordering (Germain et al.
    2015, eq. 12-13): masked ReLU layers with degrees from :func:`dgm.nn.masked.made_degrees`,
    and an output layer whose mask rows are repeated ``params_per_dim`` times. With
    ``hidden=()`` it is a single masked linear map (strictly triangular).

    Conditioning adds a vector to the first hidden layer (the output when there is none), which
    keeps the autoregressive property since labels are not data dimensions:
    ``num_classes`` embeds integer labels ``cond`` (B,); ``context_features`` maps a float
    context ``cond`` (B, C) linearly (e.g. the encoder features of an IAF posterior).

    The ordering and hidden degrees are drawn from ``seed`` at construction; the masks are not
    saved in the state dict but rebuilt identically from the constructor arguments.

    With ``param_major`` the output is a view of parameter-major memory (D, params_per_dim, B)
    (see :func:`~dgm.nn.bijectors.coupling.parameter_major`), the layout a spline wants, and
    when the first dimension of the ordering is a large part of the output (D <= 4) its
    parameters, which see no input, are the bias without a product.

    Shapes: ``x`` (B, D) -> (B, D, params_per_dim).

    >>> net = MADEConditioner(4, 2, hidden=(16,))
    >>> net(torch.randn(3, 4)).shape
    torch.Size([3, 4, 2])
    """

    order: Tensor

    def __init__(
        self,
        dim: int,
        params_per_dim: int,
        hidden: tuple[int, ...] = (64, 64),
        order: OrderName | Tensor = "natural",
        seed: int = 0,
        num_classes: int | None = None,
        context_features: int | None = None,
        param_major: bool = False,
    ):
        super().__init__()
        if dim < 1 or params_per_dim < 1 or any(h < 1 for h in hidden):
            raise ConfigError(f"MADEConditioner needs positive sizes, got dim={dim}, {params_per_dim=}, {hidden=}")
        if num_classes is not None and context_features is not None:
            raise ConfigError("MADEConditioner takes num_classes (labels) or context_features (vectors), not both")
        self.dim, self.params_per_dim, self.hidden = dim, params_per_dim, tuple(hidden)
        self.param_major = param_major
        sizes = (dim, *self.hidden)
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = MaskedLinear(sizes[-1], dim * params_per_dim)
        first = self.hidden[0] if self.hidden else dim * params_per_dim
        self.embed: nn.Module | None = None
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, first)
        elif context_features is not None:
            self.embed = nn.Linear(context_features, first)
        with torch.device("cpu"):  # drawn on the CPU even when the model is built on the meta device
            self.register_buffer("order", make_order(dim, order, seed), persistent=False)
        self._set_masks(torch.Generator().manual_seed(seed))

    def _set_masks(self, generator: torch.Generator) -> None:
        """Draw the hidden degrees and put the MADE masks into the masked layers."""
        with torch.device("cpu"):  # masks are built on the CPU, also for a model on the meta device
            masks = made_masks(made_degrees(self.order.cpu(), self.hidden, generator))
        # (D, H) -> (D * P, H): rows d*P .. d*P + P - 1 are the parameters of dimension d
        masks[-1] = masks[-1].repeat_interleave(self.params_per_dim, dim=0)
        for layer, mask in zip(self.masked_layers(), masks, strict=True):
            layer.set_mask(mask)
        live = live_rows(masks[-1]) if self.param_major and self.dim <= 4 else None
        self.live_out = live  # the rows computed by a product (see forward); None: all of them
        self.live_full = live is not None and bool(masks[-1][live].all())  # and they need no mask

    @property
    def conditional(self) -> bool:
        """Whether the network takes ``cond``."""
        return self.embed is not None

    def masked_layers(self) -> list[MaskedLinear]:
        """The masked layers, bottom to top (hidden layers, then the output layer)."""
        return [*self.layers, self.out]

    def masked_weights(self) -> list[Tensor]:
        """``W * M`` of every masked layer, to compute once for the D passes of an inversion."""
        return [layer.masked_weight() for layer in self.masked_layers()]

    def forward(self, x: Tensor, cond: Tensor | None = None, weights: list[Tensor] | None = None) -> Tensor:
        """Parameters (B, D, P) of every dimension from ``x`` (B, D) (and ``cond`` if conditional)."""
        weights = weights if weights is not None else [None] * (len(self.layers) + 1)
        shift = self._cond_shift(cond, x.shape[0])
        h = x
        for i, layer in enumerate(self.layers):
            h = layer.forward(h, weights[i])  # not the module call, whose overhead is that of the product
            if i == 0 and shift is not None:
                h = h + shift
            h = torch.relu_(h)  # in place: the linear output is not needed by its backward
        if not self.param_major:
            out = self.out.forward(h, weights[-1])
            if not self.layers and shift is not None:
                out = out + shift
            return out.view(x.shape[0], self.dim, self.params_per_dim)  # (B, D, P)
        live = self.live_out
        if live is None:
            weight = self.out.masked_weight() if weights[-1] is None else weights[-1]
            out = parameter_major(h, weight, self.out.bias)  # (D * P, B)
        else:  # the first dimension of the ordering sees no input: its parameters are the bias
            if weights[-1] is not None:
                weight = weights[-1][live]
            else:  # the rows that see something often see everything (D = 2): no mask to apply
                weight = self.out.weight[live] if self.live_full else self.out.masked_weight()[live]
            out = parameter_major(h, weight, self.out.bias[live])
            first = self.out.bias[: live.start] if live.start else self.out.bias[live.stop :]
            first = first.unsqueeze(1).expand(-1, x.shape[0])
            out = torch.cat([first, out] if live.start else [out, first])  # (D * P, B)
        if not self.layers and shift is not None:
            out = out + shift.t()
        return out.view(self.dim, self.params_per_dim, x.shape[0]).permute(2, 0, 1)  # (B, D, P), a view

    def _cond_shift(self, cond: Tensor | None, batch: int) -> Tensor | None:
        """The conditioning vector added to the first layer, (B, H); None when unconditional."""
        if self.embed is None:
            return None
        if cond is None:
            raise DataError("this conditional MADE needs cond (class labels or context vectors), got None")
        if cond.shape[0] != batch:
            raise DataError(f"cond has {cond.shape[0]} rows for a batch of {batch}")
        if isinstance(self.embed, nn.Embedding):
            return self.embed(cond.long().reshape(batch))
        return self.embed(cond.reshape(batch, -1).to(self.embed.weight.dtype))


def live_rows(mask: Tensor) -> slice | None:
    """The rows of an output mask (out, in) that see some input, as a slice, when the others
    form one block at the start or at the end (a MADE's first dimension in its ordering sees
    nothing: its outputs are the bias, and the layer's product need not compute them).
    None when every row sees something, or the dead rows are elsewhere or everywhere."""
    live = mask.any(dim=1).nonzero().flatten().tolist()
    if not live or len(live) == mask.shape[0] or live != list(range(live[0], live[-1] + 1)):
        return None
    if live[0] != 0 and live[-1] != mask.shape[0] - 1:
        return None
    return slice(live[0], live[-1] + 1)


def check_vectors(x: Tensor, dim: int, name: str) -> None:
    """Raise a :class:`DataError` unless ``x`` has shape (B, dim)."""
    if x.dim() != 2 or x.shape[1] != dim:
        raise DataError(f"{name} expects inputs of shape (B, {dim}), got {tuple(x.shape)}")


class MaskedAffineAutoregressive(Bijector):
    """MAF layer (Papamakarios et al. 2017, eq. 4): an affine autoregressive bijector.

    Data -> base in one pass, with ``(mu, alpha) = MADE(x)``:

        z_d = (x_d - mu_d(x_<d)) * exp(-alpha_d(x_<d)),     ladj = -sum_d alpha_d,

    and ``alpha = max_log_scale * tanh(raw / max_log_scale)`` (:func:`soft_clamp`), so that no
    step scales by more than ``exp(max_log_scale)``. Base -> data inverts one dimension per pass
    in the ordering: ``x_d = z_d * exp(alpha_d) + mu_d``, D passes in total.

    IAF (Kingma et al. 2016, eq. 10-11) is ``Inverse(MaskedAffineAutoregressive(...))``: its
    ``inverse`` (base -> data) is this class's one-pass ``forward``, so it samples in one pass
    and gives the log-det of its samples, as a VAE posterior needs (see the module docstring).

    Stack layers with alternating ``order`` ("natural", "reversed", or "random" with different
    seeds) so that every dimension gets to depend on every other.

    Shapes: ``x`` (B, D) -> ``z`` (B, D), ``ladj`` (B,).

    >>> maf = MaskedAffineAutoregressive(3, hidden=(16,))
    >>> x = torch.randn(4, 3)
    >>> z, ladj = maf(x)
    >>> torch.allclose(maf.inverse(z)[0], x, atol=1e-5)
    True
    """

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...] = (64, 64),
        order: OrderName | Tensor = "natural",
        seed: int = 0,
        num_classes: int | None = None,
        context_features: int | None = None,
        max_log_scale: float = 3.0,
    ):
        super().__init__()
        if max_log_scale <= 0:
            raise ConfigError(f"max_log_scale must be positive, got {max_log_scale}")
        self.dim, self.max_log_scale = dim, max_log_scale
        self.conditioner = MADEConditioner(dim, 2, hidden, order, seed, num_classes, context_features)

    def _shift_log_scale(self, x: Tensor, cond: Tensor | None, weights: list[Tensor] | None = None):
        """``(mu, alpha)``, each (B, D), from the conditioner at ``x``."""
        params = self.conditioner(x, cond, weights)  # (B, D, 2)
        return params[..., 0], soft_clamp(params[..., 1], self.max_log_scale)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(x, self.dim, type(self).__name__)
        mu, alpha = self._shift_log_scale(x, cond)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(dim=1)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(z, self.dim, type(self).__name__)
        weights = self.conditioner.masked_weights()
        x = torch.zeros_like(z)
        alpha = x
        # after pass k the first k dimensions of the ordering are exact; alpha of the last pass
        # was computed from an x exact on the first D-1, so it is the exact alpha of the result
        for _ in range(self.dim):
            mu, alpha = self._shift_log_scale(x, cond, weights)
            x = z * torch.exp(alpha) + mu
        return x, alpha.sum(dim=1)
