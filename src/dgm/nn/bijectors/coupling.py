"""Coupling layers (NICE, RealNVP), their binary masks and conditioner networks.

A coupling layer splits the input with a binary mask ``b``: the masked part passes through
unchanged and parameterises an elementwise bijection ``τ`` of the rest,

    z = b ⊙ x + (1 - b) ⊙ τ(x; θ),        θ = NN(b ⊙ x, cond),

so the Jacobian is triangular and ``log |det ∂z/∂x| = Σ_{i: b_i = 0} log |τ'(x_i; θ_i)|``
(Dinh, Krueger & Bengio 2015, "NICE", section 3.2; Dinh, Sohl-Dickstein & Bengio 2017,
"Density estimation using Real NVP", eq. 6-9). The inverse recomputes ``θ`` from ``b ⊙ z = b ⊙ x``.

Masks are boolean tensors broadcastable to the event shape; **True marks the dimensions that
pass through** (and condition), False the ones that are transformed:

- :func:`vector_mask` alternates dimensions of a vector, (D,);
- :func:`checkerboard_mask` alternates pixels, (1, H, W);
- :func:`channel_mask` splits channels in halves, (C, 1, 1).

Conditioners are plain modules ``conditioner(x_masked, cond) -> params`` with ``params`` of shape
(B, *event, out_per_dim): ``out_per_dim`` numbers for every dimension (only those of
transformed dimensions are used). A coupling takes a *builder* ``out_per_dim -> conditioner``,
because the coupling, not the user, knows how many parameters its ``τ`` needs (1 additive,
2 affine, 3K - 1 for a K-bin spline):

>>> from functools import partial
>>> layer = AffineCoupling(vector_mask(4), partial(MLPConditioner, 4, hidden=(16,)))
>>> z, ladj = layer(torch.randn(8, 4))
>>> z.shape, ladj.shape
(torch.Size([8, 4]), torch.Size([8]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Bijector, sum_except_batch

ConditionerBuilder = Callable[[int], nn.Module]
"""A callable ``out_per_dim -> conditioner module``, e.g. ``partial(MLPConditioner, dim)``."""


# ----- masks ------------------------------------------------------------------------------------


def _check_parity(parity: int) -> None:
    if parity not in (0, 1):
        raise ConfigError(f"mask parity must be 0 or 1, got {parity}")


def vector_mask(dim: int, parity: int = 0) -> Tensor:
    """Alternating mask of a vector: ``b_i = (i mod 2 == parity)``, bool (dim,)."""
    _check_parity(parity)
    if dim < 2:
        raise ConfigError(f"a coupling needs at least 2 dimensions, got dim={dim}")
    return torch.arange(dim) % 2 == parity


def checkerboard_mask(h: int, w: int, parity: int = 0) -> Tensor:
    """Checkerboard mask of an image: ``b_ij = ((i + j) mod 2 == parity)``, bool (1, h, w).

    The same pattern on every channel (RealNVP, section 3.4, figure 3).
    """
    _check_parity(parity)
    if h * w < 2:
        raise ConfigError(f"a checkerboard coupling needs at least 2 pixels, got {h}x{w}")
    i, j = torch.arange(h)[:, None], torch.arange(w)[None, :]
    return ((i + j) % 2 == parity)[None]  # (1, h, w)


def channel_mask(c: int, parity: int = 0) -> Tensor:
    """Channel-wise mask: parity 0 passes the first ``c // 2`` channels through, parity 1 the rest.

    Bool (c, 1, 1) (RealNVP, section 3.4, figure 3).
    """
    _check_parity(parity)
    if c < 2:
        raise ConfigError(f"a channel coupling needs at least 2 channels, got {c}")
    first = torch.arange(c) < c // 2
    return (first if parity == 0 else ~first)[:, None, None]  # (c, 1, 1)


def transformed_slice(mask: Tensor) -> slice | None:
    """The transformed dimensions of a vector mask (D,) as a slice, when they are evenly spaced.

    ``vector_mask(D, p)`` gives ``slice(1 - p, D, 2)``; a coupling then evaluates ``τ`` on those
    dimensions only. None for image masks, irregular masks and masks that transform nothing.
    """
    if mask.dim() != 1 or mask.numel() < 2 or mask.is_meta:  # meta: a model built only to count its parameters
        return None
    idx = (~mask).nonzero().flatten().tolist()
    if not idx:
        return None
    step = idx[1] - idx[0] if len(idx) > 1 else 1
    if idx != list(range(idx[0], idx[-1] + 1, step)):
        return None
    return slice(idx[0], idx[-1] + 1, step)


# ----- conditioners -----------------------------------------------------------------------------


def _embed(embedding: nn.Embedding | None, cond: Tensor | None, batch: int) -> Tensor | None:
    """Class embeddings (B, E) of the labels ``cond`` (B,); None for an unconditional network.

    Unconditional networks ignore ``cond``, so one label tensor can be passed through a whole
    flow whose layers are only partly conditional.
    """
    if embedding is None:
        return None
    if cond is None:
        raise DataError(
            f"this conditioner is class-conditional ({embedding.num_embeddings} classes): pass cond, a LongTensor (B,) of labels"
        )
    if cond.dtype.is_floating_point or cond.dtype.is_complex or tuple(cond.shape) != (batch,):
        raise DataError(f"cond must be integer class labels of shape ({batch},), got {cond.dtype} {tuple(cond.shape)}")
    return embedding(cond.long())


def _zero_(layer: nn.Module) -> None:
    """Zero a layer's weight and bias so the coupling starts as the identity (Glow, section 3.3)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


def parameter_major(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A conditioner's output layer transposed: ``W h^T + b``, (out_features, B) for ``h`` (B, in).

    The numbers of ``F.linear(h, weight, bias).t()``, laid out so that each output feature (a
    spline's bin width, say) is a contiguous row over the batch. Element-wise transforms that
    reduce over the parameters of one dimension (a softmax over K bins) then work on whole rows
    instead of K-long strided slices; :func:`dgm.nn.bijectors.spline.rq_spline_packed` takes
    this layout as it is.
    """
    if bias is None:
        return weight @ h.t()
    return torch.addmm(bias.unsqueeze(1), weight, h.t())


class MLPConditioner(nn.Module):
    """An MLP ``(x_masked, cond) -> params``, for couplings on vectors (or any flattened event).

    ``x_masked`` (B, *shape) is flattened, the class embedding (B, emb_dim) of ``cond`` is
    concatenated to it when ``num_classes > 0``, then Linear-ReLU layers of sizes ``hidden``
    and a last Linear give ``params`` (B, *shape, out_per_dim). With ``zero_init`` the last
    layer starts at zero, so a coupling built on it starts as the identity.

    With ``residual`` every hidden layer after the first whose width equals its input's adds
    its input, ``h_{l+1} = h_l + ReLU(W_l h_l + b_l)`` (Durkan et al. 2019 condition their
    splines on residual networks): the same parameters, trained faster; on the toy 2-D protocol
    NSF reaches a lower KL in the same steps (docs/flows.md).
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        out_per_dim: int = 1,
        hidden: Sequence[int] = (64, 64),
        num_classes: int = 0,
        emb_dim: int = 16,
        zero_init: bool = True,
        residual: bool = False,
    ):
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.out_per_dim = out_per_dim
        self.residual = residual
        dim = math.prod(self.shape)
        self.embedding = nn.Embedding(num_classes, emb_dim) if num_classes > 0 else None
        sizes = [dim + (emb_dim if num_classes > 0 else 0), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]  # a linear output is not needed by its backward
        last = nn.Linear(sizes[-1], dim * out_per_dim)
        if zero_init:
            _zero_(last)
        self.net = nn.Sequential(*layers, last)

    def forward(
        self, x_masked: Tensor, cond: Tensor | None = None, dims: slice | None = None, param_major: bool = False
    ) -> Tensor:
        """(B, *shape), labels (B,) or None -> params (B, *shape, out_per_dim).

        For a vector shape (D,), ``dims`` (a slice of 0..D-1) asks for the parameters of those
        dimensions only, (B, D', out_per_dim): the same numbers, from the rows of the last layer
        that give them (a coupling needs those of the dimensions it transforms, half of them).
        With ``param_major`` the params are a view of parameter-major memory (*shape,
        out_per_dim, B) (see :func:`parameter_major`), the layout a spline wants.
        """
        batch = x_masked.shape[0]
        h = x_masked.reshape(batch, -1)  # (B, D)
        emb = _embed(self.embedding, cond, batch)
        if emb is not None:
            h = torch.cat([h, emb.to(h.dtype)], dim=1)  # (B, D + E)
        *linears, last = list(self.net)[::2]  # Linear, ReLU, ..., Linear
        # the functions, not the modules: a module call costs as much as the product
        for i, layer in enumerate(linears):
            out = torch.relu_(F.linear(h, layer.weight, layer.bias))
            h = out + h if self.residual and i > 0 and out.shape == h.shape else out
        weight, bias, shape = last.weight, last.bias, self.shape
        if dims is not None:
            if len(shape) != 1:
                raise ConfigError(f"dims selects dimensions of vectors, not of events of shape {shape}")
            start, stop, step = dims.indices(shape[0])
            shape, per = (len(range(start, stop, step)),), self.out_per_dim
            if step == 1 or shape[0] == 1:  # consecutive dimensions: a block of rows
                rows = slice(start * per, (start + shape[0]) * per)
                weight, bias = weight[rows], bias[rows]
            else:
                weight = weight.view(self.shape[0], per, -1)[dims].reshape(shape[0] * per, -1)  # (D' * P, H)
                bias = bias.view(self.shape[0], per)[dims].reshape(-1)
        if not param_major:
            return F.linear(h, weight, bias).view(batch, *shape, self.out_per_dim)
        out = parameter_major(h, weight, bias).view(*shape, self.out_per_dim, batch)
        return out.permute(-1, *range(len(shape) + 1))  # (B, *shape, out_per_dim)


class ConvConditioner(nn.Module):
    """A small conv net ``(x_masked, cond) -> params`` for couplings on images (Glow's NN()).

    3x3 conv (channels -> hidden), ReLU, 1x1 conv (hidden -> hidden), ReLU, 3x3 conv
    (hidden -> channels * out_per_dim), zero-initialised when ``zero_init`` (Kingma & Dhariwal
    2018, section 3.3). With ``num_classes > 0`` the class embedding (B, hidden) is added to
    the first layer's output as a per-channel bias. Shape-preserving padding, so any H, W.

    Shapes: ``x_masked`` (B, C, H, W), labels (B,) -> ``params`` (B, C, H, W, out_per_dim).
    """

    def __init__(
        self,
        channels: int,
        out_per_dim: int = 1,
        hidden: int = 64,
        num_classes: int = 0,
        zero_init: bool = True,
    ):
        super().__init__()
        self.channels = channels
        self.out_per_dim = out_per_dim
        self.embedding = nn.Embedding(num_classes, hidden) if num_classes > 0 else None
        self.conv_in = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv_mid = nn.Conv2d(hidden, hidden, 1)
        self.conv_out = nn.Conv2d(hidden, channels * out_per_dim, 3, padding=1)
        if zero_init:
            _zero_(self.conv_out)

    def forward(self, x_masked: Tensor, cond: Tensor | None = None) -> Tensor:
        """(B, C, H, W), labels (B,) or None -> params (B, C, H, W, out_per_dim)."""
        b, c, h, w = x_masked.shape
        hid = self.conv_in(x_masked)  # (B, hidden, H, W)
        emb = _embed(self.embedding, cond, b)
        if emb is not None:
            hid = hid + emb.to(hid.dtype)[:, :, None, None]
        hid = torch.relu(self.conv_mid(torch.relu(hid)))
        out = self.conv_out(hid)  # (B, C * P, H, W)
        return out.view(b, c, self.out_per_dim, h, w).permute(0, 1, 3, 4, 2)  # (B, C, H, W, P)


# ----- couplings --------------------------------------------------------------------------------


class Coupling(Bijector):
    """A coupling layer with an elementwise transform ``τ`` left to subclasses.

    ``mask`` is a boolean tensor broadcastable to the event shape (True = pass through);
    ``conditioner`` a builder called once as ``conditioner(out_per_dim)``. Subclasses set
    ``out_per_dim`` and implement :meth:`transform` and :meth:`untransform`, the elementwise
    ``τ`` and ``τ⁻¹`` with their elementwise log-derivatives; masking, the conditioner call and
    the sum of log-derivatives over transformed dimensions happen here.
    """

    mask: Tensor
    zero: Tensor
    # whether τ wants its parameters parameter-major (see parameter_major) from an MLP conditioner
    param_major: bool = False

    def __init__(self, mask: Tensor, conditioner: ConditionerBuilder, out_per_dim: int):
        super().__init__()
        # Structure rebuilt from the config, like MaskedLinear's masks: not saved.
        self.register_buffer("mask", mask.to(torch.bool), persistent=False)
        self.register_buffer("zero", torch.zeros(()), persistent=False)  # a Python 0.0 would be wrapped every call
        self.out_per_dim = out_per_dim
        self.conditioner = conditioner(out_per_dim)
        # vectors: τ runs on the transformed dimensions only, and an MLP computes only their parameters
        self.transformed = transformed_slice(self.mask)
        self.selects = self.transformed is not None and isinstance(self.conditioner, MLPConditioner)

    def params(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The conditioner's output for the pass-through part of ``x``: (B, *event, out_per_dim)."""
        return self._params(x, cond, None)

    def _params(self, x: Tensor, cond: Tensor | None, dims: slice | None) -> Tensor:
        """:meth:`params`, of the vector dimensions ``dims`` only when given: (B, D', out_per_dim)."""
        event = tuple(x.shape[1:])
        fits = self.mask.dim() == len(event) and all(m in (1, e) for m, e in zip(self.mask.shape, event, strict=True))
        if not fits:
            raise DataError(
                f"coupling mask of shape {tuple(self.mask.shape)} does not fit inputs of shape {tuple(x.shape)}"
            )
        x_masked = torch.where(self.mask, x, self.zero)
        if dims is None:
            params = self.conditioner(x_masked, cond)
        else:
            params = self.conditioner(x_masked, cond, dims, self.param_major)
            event = (len(range(*dims.indices(event[0]))),)
        if tuple(params.shape) != (x.shape[0], *event, self.out_per_dim):
            raise ConfigError(
                f"conditioner returned {tuple(params.shape)}, expected {(x.shape[0], *event, self.out_per_dim)}: "
                "build it for this event shape with out_per_dim outputs per dimension"
            )
        return params

    def transform(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """Elementwise ``τ``: (y, log|τ'(x)|), both shaped like ``x``."""
        raise NotImplementedError

    def untransform(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """Elementwise ``τ⁻¹``: (x, log|(τ⁻¹)'(y)|), both shaped like ``y``."""
        raise NotImplementedError

    def _couple(self, x: Tensor, cond: Tensor | None, fn) -> tuple[Tensor, Tensor]:
        part = self.transformed
        if part is not None and x.dim() == 2:  # vectors: τ on the transformed dimensions only
            params = self._params(x, cond, part) if self.selects else self.params(x, cond)[:, part]
            y, log_deriv = fn(x[:, part], params)  # (B, D')
            return self._merge(x, y, part), log_deriv.sum(dim=1)
        params = self.params(x, cond)
        # τ sees zeros on pass-through dimensions, so nothing non-finite can come from them.
        y, log_deriv = fn(torch.where(self.mask, 0.0, x), params)
        return torch.where(self.mask, x, y), sum_except_batch(torch.where(self.mask, 0.0, log_deriv))

    @staticmethod
    def _merge(x: Tensor, y: Tensor, part: slice) -> Tensor:
        """``x`` (B, D) with its dimensions ``part`` replaced by ``y`` (B, D')."""
        start, stop, step = part.indices(x.shape[1])
        if step == 1 or y.shape[1] == 1:  # a block: concatenate (one op, a cheap backward)
            stop = start + y.shape[1]
            pieces = [x[:, :start]] if start else []
            return torch.cat([*pieces, y, x[:, stop:]] if stop < x.shape[1] else [*pieces, y], dim=1)
        out = x.clone()
        out[:, part] = y
        return out

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, cond, self.transform)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(z, cond, self.untransform)


class AdditiveCoupling(Coupling):
    """NICE's additive coupling: ``z = b ⊙ x + (1 - b) ⊙ (x + t(b ⊙ x, cond))``, ``ladj = 0``.

    Dinh, Krueger & Bengio (2015), eq. 5. Volume-preserving; pair it with a scaling layer
    (:class:`~dgm.nn.bijectors.elementwise.ElementwiseAffine`) as NICE does.
    Shapes: ``x`` (B, *event) -> ``z`` (B, *event), ``ladj`` (B,).
    """

    def __init__(self, mask: Tensor, conditioner: ConditionerBuilder):
        super().__init__(mask, conditioner, out_per_dim=1)

    def transform(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return x + params[..., 0], torch.zeros_like(x)

    def untransform(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return y - params[..., 0], torch.zeros_like(y)


def soft_clamp(raw: Tensor, bound: float) -> Tensor:
    """``bound * tanh(raw / bound)``: ≈ ``raw`` near 0, smoothly limited to (-bound, bound)."""
    return bound * torch.tanh(raw / bound)


class AffineCoupling(Coupling):
    """RealNVP's affine coupling: ``z = b ⊙ x + (1 - b) ⊙ (x ⊙ exp(s) + t)``, ``ladj = Σ (1 - b) ⊙ s``.

    Dinh, Sohl-Dickstein & Bengio (2017), eq. 7-9, with ``(s_raw, t) = NN(b ⊙ x, cond)`` (the
    conditioner's parameters 0 and 1 per dimension). The log-scale is soft-clamped,
    ``s = c tanh(s_raw / c)`` with ``c = scale_bound``: a bare ``exp(s_raw)`` of an unbounded
    network output overflows early in training or on outliers, and unlike Glow's
    ``sigmoid(s_raw + 2)`` the clamp is symmetric, so both directions are bounded by ``e^c``
    per layer and the inverse never divides by a vanishing scale.
    Shapes: ``x`` (B, *event) -> ``z`` (B, *event), ``ladj`` (B,).
    """

    def __init__(self, mask: Tensor, conditioner: ConditionerBuilder, scale_bound: float = 2.0):
        super().__init__(mask, conditioner, out_per_dim=2)
        self.scale_bound = scale_bound

    def _scale_shift(self, params: Tensor) -> tuple[Tensor, Tensor]:
        return soft_clamp(params[..., 0], self.scale_bound), params[..., 1]

    def transform(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        log_s, t = self._scale_shift(params)
        return x * torch.exp(log_s) + t, log_s

    def untransform(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        log_s, t = self._scale_shift(params)
        return (y - t) * torch.exp(-log_s), -log_s
