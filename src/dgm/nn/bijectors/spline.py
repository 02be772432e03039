"""Monotonic rational-quadratic splines and the neural spline flows built on them.

Durkan, Bekasov, Murray & Papamakarios (2019), "Neural Spline Flows" (NeurIPS). On
``[-B, B]`` a spline of ``K`` bins maps knots ``(x_k, y_k)`` to each other with positive slopes
``d_k`` at the knots; in bin ``k``, with ``ξ = (x - x_k) / w_k``, ``w_k = x_{k+1} - x_k``,
``h_k = y_{k+1} - y_k`` and ``s_k = h_k / w_k`` (eq. 4):

    y = y_k + h_k [s_k ξ² + d_k ξ(1-ξ)] / [s_k + (d_{k+1} + d_k - 2 s_k) ξ(1-ξ)],

a strictly increasing map of bin ``k`` onto ``[y_k, y_{k+1}]`` with derivative (eq. 5)

    dy/dx = s_k² [d_{k+1} ξ² + 2 s_k ξ(1-ξ) + d_k (1-ξ)²] / [s_k + (d_{k+1} + d_k - 2 s_k) ξ(1-ξ)]².

The boundary slopes are 1, so with the identity outside ``[-B, B]`` ("linear tails") the whole
map is a C¹ bijection of the real line. The inverse solves the quadratic of appendix A for ξ.

:func:`rq_spline` is the pure function (unnormalised parameters in, values and elementwise
log-derivatives out); :class:`AutoregressiveSpline` (NSF-AR), :class:`SplineCoupling`
(NSF-C) and :class:`ElementwiseSpline` are the bijectors.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.autoregressive import MADEConditioner, OrderName, check_vectors
from dgm.nn.bijectors.base import Bijector, sum_except_batch
from dgm.nn.bijectors.coupling import ConditionerBuilder, Coupling

DEFAULT_BOUND = 5.0  # data standardised to unit variance lies almost surely inside [-5, 5]


def rq_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    inverse: bool = False,
    bound: float = DEFAULT_BOUND,
    min_width: float = 1e-3,
    min_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Monotonic rational-quadratic spline on ``[-bound, bound]``, identity outside (NSF eq. 4-6).

    From unnormalised parameters: bin widths ``min_width + (1 - K min_width) softmax(widths)``
    of the interval (heights likewise), interior slopes ``min_derivative + softplus(derivatives
    + c)`` with ``c`` such that a raw 0 is a slope of 1, and boundary slopes 1: all-zero
    parameters (a zero-initialised conditioner) give the identity. ``inverse=True`` evaluates
    the inverse map (appendix A).

    Shapes: ``x`` (...), ``widths`` and ``heights`` (..., K), ``derivatives`` (..., K-1) with the
    leading dimensions equal to (or broadcastable to) ``x.shape``. Returns ``y`` (...) and the
    elementwise ``log |dy/dx|`` (...) of the direction evaluated (0 in the tails).

    >>> x = torch.linspace(-6, 6, 5, dtype=torch.float64)
    >>> w, h, d = torch.randn(3, 5, 4, dtype=torch.float64).unbind(0)
    >>> y, ladj = rq_spline(x, w, h, d[:, :3])
    >>> torch.allclose(rq_spline(y, w, h, d[:, :3], inverse=True)[0], x)
    True

    The inverse is as accurate as its conditioning allows: a bin with slope ``s`` amplifies the
    rounding of ``y`` by ``1 / s``, which matters in float32 when parameters are extreme.
    The forward direction has a hand-written backward and supports first derivatives only
    (no gradient penalties through it); the inverse is plain autograd.
    """
    bins = widths.shape[-1]
    if heights.shape[-1] != bins or derivatives.shape[-1] != bins - 1:
        raise DataError(
            f"a spline of {bins} bins needs {bins} heights and {bins - 1} derivatives, "
            f"got {heights.shape[-1]} and {derivatives.shape[-1]}"
        )
    batch = torch.broadcast_shapes(widths.shape[:-1], heights.shape[:-1], derivatives.shape[:-1])
    params = torch.cat([t.expand(*batch, t.shape[-1]) for t in (widths, heights, derivatives)], dim=-1)
    return rq_spline_packed(x, params, bins, inverse, bound, min_width, min_height, min_derivative)


def rq_spline_packed(
    x: Tensor,
    params: Tensor,
    bins: int,
    inverse: bool = False,
    bound: float = DEFAULT_BOUND,
    min_width: float = 1e-3,
    min_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """:func:`rq_spline` with its parameters packed as network outputs: ``params`` (..., 3K-1).

    ``params[..., :K]`` are the widths, ``[K:2K]`` the heights, ``[2K:]`` the derivatives (the
    layout of :func:`split_spline_params`); the conditioners' outputs are used as they are.

    Evaluation: bin sizes by a softmax and knots by a cumulative sum over the K bins, the bin
    index as the number of interior knots ``<= x`` (a comparison and a sum, no Python loop
    over bins), and a ``gather`` of each element's bin. The forward map has a hand-written
    backward (:class:`_RQSplineForward`, for speed; first derivatives only); the inverse uses
    autograd.
    """
    _check_spline_args(params, bins, min_width, min_height)
    consts = (bins, bound, min_width, min_height, min_derivative)
    if params.shape[:-1] != x.shape:
        params = params.expand(*x.shape, params.shape[-1])
    if not inverse:
        return _RQSplineForward.apply(x, params, *consts)
    knots = _knots(params, *consts)
    inside, yc, _, bin_ = _locate(x, knots, bound, inverse=True)
    x_in, ladj = _rq_inverse(yc, *bin_)
    return torch.where(inside, x_in, x), torch.where(inside, ladj, 0.0)


def _check_spline_args(params: Tensor, bins: int, min_width: float, min_height: float) -> None:
    if params.shape[-1] != 3 * bins - 1:
        raise DataError(f"a spline of {bins} bins needs {3 * bins - 1} parameters, got {params.shape[-1]}")
    if min_width * bins >= 1 or min_height * bins >= 1:
        raise ConfigError(f"min_width and min_height must be below 1/bins = {1 / bins}")


class _Knots(NamedTuple):
    """A spline's bins, from :func:`_knots`.

    ``sizes`` (..., 2, K): bin widths (row 0) and heights (row 1); ``ends`` (..., 2, K): their
    cumulative sums, the right knots ``x_{k+1} + B`` and ``y_{k+1} + B`` (the last exactly 2B);
    ``slopes`` (..., K+1): ``d_0 .. d_K``, ``d_0 = d_K = 1``. ``soft``, ``raw_slopes`` and
    ``scale`` are what the hand-written backward needs: the softmax (..., 2, K), the shifted raw
    derivatives (..., K-1) and the factor from softmax to size (float, or (2, 1)).
    """

    sizes: Tensor
    ends: Tensor
    slopes: Tensor
    soft: Tensor
    raw_slopes: Tensor
    scale: float | Tensor


def _knots(params: Tensor, bins: int, bound: float, min_width: float, min_height: float, min_derivative: float):
    """Bin sizes, knots and slopes of the splines with parameters ``params`` (..., 3K-1)."""
    raw = params[..., : 2 * bins].unflatten(-1, (2, bins))  # (..., 2, K): widths and heights, a view
    scale, minimum = 2 * bound * (1 - min_width * bins), 2 * bound * min_width
    if min_width != min_height:
        scale = params.new_tensor([[2 * bound * (1 - min_width * bins)], [2 * bound * (1 - min_height * bins)]])
        minimum = params.new_tensor([[2 * bound * min_width], [2 * bound * min_height]])
    soft = torch.softmax(raw, dim=-1)
    sizes = soft * scale + minimum  # (..., 2, K), each at least the minimum, summing to 2B
    ends = torch.cumsum(sizes, dim=-1)
    ends[..., -1] = 2 * bound  # the last knot is B exactly, not a rounded sum
    # the offset makes a raw derivative of 0 a slope of 1: all-zero parameters give the identity
    raw_slopes = params[..., 2 * bins :] + math.log(math.expm1(1.0 - min_derivative))
    slopes = F.pad(F.softplus(raw_slopes) + min_derivative, (1, 1), value=1.0)
    return _Knots(sizes, ends, slopes, soft, raw_slopes, scale)


def _locate(x: Tensor, knots: _Knots, bound: float, inverse: bool):
    """Inside mask, clamped input, bin index (..., 1) and the six numbers of each element's bin.

    The bin is the number of interior knots ``<= x`` (0..K-1, so ``x = bound`` is in the last
    bin); the six numbers are ``x_k, y_k, d_k, x_k+1, y_k+1, d_k+1``, each (...).
    """
    xc = x.clamp(-bound, bound)  # the tails are evaluated at the bound: finite, masked out later
    inside = xc == x  # False for NaN, which then passes through
    interior = knots.ends[..., 1 if inverse else 0, :-1]  # (..., K-1): x_1..x_{K-1} (or y) + B
    k = ((xc + bound).unsqueeze(-1) >= interior).sum(-1, keepdim=True)  # (..., 1)
    k2 = k.unsqueeze(-2).expand(*k.shape[:-1], 2, 1)  # (..., 2, 1): the same bin for x and y
    w, h = knots.sizes.gather(-1, k2).squeeze(-1).unbind(-1)
    x1, y1 = (knots.ends.gather(-1, k2).squeeze(-1) - bound).unbind(-1)
    d0, d1 = knots.slopes.gather(-1, k + _arange(2, k.device)).unbind(-1)
    return inside, xc, k, (x1 - w, y1 - h, d0, x1, y1, d1)


def spline_knots(
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float = DEFAULT_BOUND,
    min_width: float = 1e-3,
    min_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor, Tensor]:
    """The knots ``x_0..x_K``, ``y_0..y_K`` and slopes ``d_0..d_K`` of :func:`rq_spline`, each (..., K+1).

    ``x_0 = y_0 = -bound`` and ``x_K = y_K = bound`` exactly; ``d_0 = d_K = 1``.
    """
    bins = widths.shape[-1]
    params = torch.cat([widths, heights, derivatives], -1)
    _check_spline_args(params, bins, min_width, min_height)
    knots = _knots(params, bins, bound, min_width, min_height, min_derivative)
    xy = F.pad(knots.ends, (1, 0)) - bound  # (..., 2, K+1)
    return xy[..., 0, :], xy[..., 1, :], knots.slopes


def _params_backward(k: Tensor, grads: tuple[Tensor, ...], soft: Tensor, raw_slopes: Tensor, scale) -> Tensor:
    """The gradient (..., 3K-1) of the parameters from those of each element's bin numbers, by hand.

    ``grads`` are those of ``x_k, y_k, d_k, x_k+1, y_k+1, d_k+1`` (each (...)) and ``k`` (..., 1)
    the bins. Knot ``i`` is ``-B + Σ_{j<i} size_j``, so ``∂/∂size_j = g(x_k) 1[j < k] +
    g(x_k+1) 1[j <= k]``; that counts the constant last knot ``x_K = -B + Σ_j size_j`` too,
    which is harmless: a gradient equal on every size is annihilated by the softmax's backward
    ``soft ⊙ (g - Σ g ⊙ soft)``, since the sizes always sum to 2B. The slopes' gradients go
    through softplus, whose derivative is the sigmoid. All on (..., 2, K) arrays, no scatter.
    """
    gx0, gy0, gd0, gx1, gy1, gd1 = grads
    pos = _arange(soft.shape[-1], k.device)  # 0..K-1
    before, upto = (pos < k).to(soft.dtype).unsqueeze(-2), (pos <= k).to(soft.dtype).unsqueeze(-2)  # (..., 1, K)
    g_lo, g_hi = torch.stack((gx0, gy0), -1).unsqueeze(-1), torch.stack((gx1, gy1), -1).unsqueeze(-1)  # (..., 2, 1)
    g_soft = torch.addcmul(g_lo * before, g_hi, upto) * scale  # (..., 2, K)
    g_raw = soft * (g_soft - (g_soft * soft).sum(-1, keepdim=True))
    # interior slope m = 0..K-2 is d_{m+1}: it is d_k when m + 1 = k and d_k+1 when m = k
    is_lo, is_hi = (pos[1:] == k).to(soft.dtype), (pos[:-1] == k).to(soft.dtype)  # (..., K-1)
    g_slopes = torch.addcmul(gd0.unsqueeze(-1) * is_lo, gd1.unsqueeze(-1), is_hi) * torch.sigmoid(raw_slopes)
    return torch.cat([g_raw.flatten(-2), g_slopes], dim=-1)


@functools.lru_cache(maxsize=64)
def _arange(n: int, device: torch.device) -> Tensor:
    """``0, 1, ..., n-1`` (long) on ``device``, made once."""
    return torch.arange(n, device=device)


class _RQSplineForward(torch.autograd.Function):
    """The forward spline (NSF eq. 4-5), knots included, with its backward written out.

    Autograd would record ~45 small nodes per call (knots and formula), and replaying them
    dominates the cost of a spline flow on CPU batches. Here the forward runs without a graph
    and the backward is reverse mode by hand (:func:`_rq_backward`, then
    :func:`_params_backward`). First derivatives only (``once_differentiable``).
    """

    @staticmethod
    def forward(ctx, x, params, bins, bound, min_width, min_height, min_derivative):
        knots = _knots(params, bins, bound, min_width, min_height, min_derivative)
        inside, xc, k, (x0, y0, d0, x1, y1, d1) = _locate(x, knots, bound, inverse=False)
        w, h = x1 - x0, y1 - y0
        s = h / w
        xi, omx = (xc - x0) / w, (x1 - xc) / w  # ξ and 1 - ξ, each computed without cancellation
        t, xi2, omx2, s2 = xi * omx, xi * xi, omx * omx, s + s
        sigma = d0 + d1 - s2
        denom = torch.addcmul(s, sigma, t)  # s + (d0 + d1 - 2s) ξ(1-ξ)
        p = xi * torch.addcmul(s * xi, d0, omx)  # s ξ² + d0 ξ(1-ξ)
        inner = torch.addcmul(torch.addcmul(s2 * t, d1, xi2), d0, omx2)  # d1 ξ² + 2s ξ(1-ξ) + d0 (1-ξ)²
        q = s / denom
        outside = ~inside
        y = torch.where(inside, torch.addcdiv(y0, h * p, denom), x)
        ladj = torch.log(inner * q * q).masked_fill_(outside, 0.0)
        terms = (xi, omx, t, xi2, omx2, w, h, s, s2, sigma, d0, d1, denom, p, inner)
        ctx.save_for_backward(outside, k, knots.soft, knots.raw_slopes, *terms)
        ctx.scale = knots.scale
        return y, ladj

    @staticmethod
    @once_differentiable
    def backward(ctx, g_y: Tensor, g_l: Tensor):
        outside, k, soft, raw_slopes, *saved = ctx.saved_tensors
        gy, gl = g_y.masked_fill(outside, 0.0), g_l.masked_fill(outside, 0.0)
        g_x, grads = _rq_backward(gy, gl, *saved)
        g_params = _params_backward(k, grads, soft, raw_slopes, ctx.scale)
        return torch.where(outside, g_y, g_x), g_params, None, None, None, None, None  # identity outside


def _rq_backward(gy, gl, xi, omx, t, xi2, omx2, w, h, s, s2, sigma, d0, d1, denom, p, inner):
    """Reverse mode through :class:`_RQSplineForward` by hand.

    From the gradients ``gy``, ``gl`` of ``y = y0 + h p / denom`` and
    ``ladj = log inner + 2 log s - 2 log denom`` (zero outside the bound), returns the gradient
    of ``x`` and those of ``(x_k, y_k, d_k, x_k+1, y_k+1, d_k+1)``, in the order of the gather.
    """
    a = gy / denom
    g_p, g_h, g_inner, gl2 = a * h, a * p, gl / inner, gl + gl
    gi2 = g_inner + g_inner
    m = (g_p * p + gl2) / denom  # minus the gradient of denom = s + sigma t
    # through denom, p = s ξ² + d0 t and inner = d1 ξ² + 2 s t + d0 (1-ξ)²; 1 - 2t = ξ² + (1-ξ)²
    g_s = torch.addcmul(torch.addcmul(gl2 / s, g_p, xi2), gi2, t) - m * (xi2 + omx2)
    g_d0 = torch.addcmul((g_p - m) * t, g_inner, omx2)
    g_d1 = torch.addcmul(g_inner * xi2, m, t, value=-1)
    g_t = torch.addcmul(torch.addcmul(g_p * d0, gi2, s), m, sigma, value=-1)
    g_xi = torch.addcmul(xi * torch.addcmul(g_p * s2, gi2, d1), g_t, omx)
    g_omx = torch.addcmul(gi2 * d0 * omx, g_t, xi)
    # ξ = (x - x0) / w, 1 - ξ = (x1 - x) / w, s = h / w, w = x1 - x0, h = y1 - y0
    g_w = -(g_xi * xi + g_omx * omx + g_s * s) / w
    g_h = g_h + g_s / w
    g_xi_w, g_omx_w = g_xi / w, g_omx / w
    return g_xi_w - g_omx_w, (-g_xi_w - g_w, gy - g_h, g_d0, g_omx_w + g_w, g_h, g_d1)


def _rq_inverse(y: Tensor, x0: Tensor, y0: Tensor, d0: Tensor, x1: Tensor, y1: Tensor, d1: Tensor):
    """NSF appendix A inside the bins: ``x`` and ``log dx/dy``, each (...).

    ξ is the root in [0, 1] of ``a ξ² + b ξ + c = 0`` (eq. 29-32), taken as ``2c / (-b - √(b²-4ac))``.
    With ``u = (y - y_k) / h`` and ``q = d_k (1-u) - d_{k+1} u`` the terms are
    ``-b / h = -(q + 2 s u)``, ``2c / h = -2 s u`` and ``(b² - 4ac) / h² = q² + 4 s² u (1-u)``,
    a sum of non-negative terms, so the discriminant needs no clamp and does not cancel (the
    textbook ``b² - 4ac`` loses all its digits at the bin edges when ``s ≫ d``). Then

        ξ = 2 s u / (2 s u + φ),   1 - ξ = φ / (2 s u + φ),   φ = q + √(q² + 4 s² u (1-u)),

    with ``φ`` written as ``4 s² u (1-u) / (√(·) - q)`` when ``q < 0``: no subtraction of nearly
    equal numbers anywhere, and ``ξ = 1`` exactly at ``y = y_{k+1}``.
    """
    w, h = x1 - x0, y1 - y0
    s = h / w
    u, omu = (y - y0) / h, (y1 - y) / h  # u and 1 - u, each >= 0
    q = d0 * omu - d1 * u
    r = 4 * s * s * u * omu
    root = torch.sqrt(q * q + r)
    phi = torch.where(q < 0, r / (root - q).clamp_min(torch.finfo(y.dtype).tiny), q + root)
    two_su = 2 * s * u
    total = two_su + phi  # > 0: phi = 2 d_k at u = 0
    xi, omx = two_su / total, phi / total
    return torch.addcmul(x0, xi, w), -_rq_log_slope(xi, omx, s, d0, d1)


def _rq_log_slope(xi: Tensor, omx: Tensor, s: Tensor, d0: Tensor, d1: Tensor) -> Tensor:
    """``log dy/dx`` of NSF eq. 5 at ``ξ`` (with ``1 - ξ`` given separately, for precision)."""
    t = xi * omx
    denom = torch.addcmul(s, d0 + d1 - 2 * s, t)
    inner = d1 * xi * xi + 2 * s * t + d0 * omx * omx
    return torch.log(inner * (s / denom) ** 2)


def split_spline_params(params: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split (..., 3K-1) network outputs into widths (..., K), heights (..., K), derivatives (..., K-1)."""
    if params.shape[-1] != 3 * bins - 1:
        raise DataError(f"a spline of {bins} bins needs {3 * bins - 1} parameters, got {params.shape[-1]}")
    return params[..., :bins], params[..., bins : 2 * bins], params[..., 2 * bins :]


def check_bins(bins: int, bound: float) -> None:
    """Raise a :class:`ConfigError` for fewer than 1 bin or a non-positive bound."""
    if bins < 1 or not bound > 0:
        raise ConfigError(f"a spline needs bins >= 1 and bound > 0, got bins={bins}, bound={bound}")


# ----- bijectors --------------------------------------------------------------------------------


class ElementwiseSpline(Bijector):
    """A learned RQ spline per element of the event, the same for every example.

    Parameters (*shape, 3K-1) start at zero, i.e. at the identity. A learnable monotone
    marginal transform; with ``shape=1`` it is a complete 1-D flow.

    Shapes: ``x`` (B, *shape) -> ``z`` (B, *shape), ``ladj`` (B,).

    >>> z, ladj = ElementwiseSpline(2)(torch.randn(5, 2))
    >>> z.shape, ladj.shape
    (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, shape: int | tuple[int, ...], bins: int = 8, bound: float = DEFAULT_BOUND):
        super().__init__()
        check_bins(bins, bound)
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.bins, self.bound = bins, bound
        self.params = nn.Parameter(torch.zeros(*self.shape, 3 * bins - 1))

    def _spline(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.shape:
            raise DataError(f"ElementwiseSpline expects inputs of shape (B, {self.shape}), got {tuple(x.shape)}")
        y, log_deriv = rq_spline_packed(x, self.params, self.bins, inverse, self.bound)
        return y, sum_except_batch(log_deriv)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._spline(x, inverse=False)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._spline(z, inverse=True)


class AutoregressiveSpline(Bijector):
    """NSF-AR (Durkan et al. 2019, section 3.2): an RQ spline per dimension, MADE-conditioned.

    A :class:`~dgm.nn.bijectors.autoregressive.MADEConditioner` gives ``3K-1`` parameters for
    every dimension ``d`` from ``x_<d`` (in the ordering ``order``), and

        z_d = RQS(x_d; θ_d(x_<d)),        ladj = Σ_d log RQS'(x_d; θ_d),

    identity outside ``[-bound, bound]``. Data -> base is one pass; base -> data is D passes
    (one dimension of the ordering fixed per pass). Conditioning as in the MADE conditioner
    (``num_classes`` labels or ``context_features`` vectors).

    Shapes: ``x`` (B, D) -> ``z`` (B, D), ``ladj`` (B,).

    >>> nsf = AutoregressiveSpline(3, bins=4, hidden=(16,))
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(nsf.inverse(nsf(x)[0])[0], x, atol=1e-4)
    True
    """

    def __init__(
        self,
        dim: int,
        bins: int = 8,
        bound: float = DEFAULT_BOUND,
        hidden: tuple[int, ...] = (64, 64),
        order: OrderName | Tensor = "natural",
        seed: int = 0,
        num_classes: int | None = None,
        context_features: int | None = None,
    ):
        super().__init__()
        check_bins(bins, bound)
        self.dim, self.bins, self.bound = dim, bins, bound
        self.conditioner = MADEConditioner(dim, 3 * bins - 1, hidden, order, seed, num_classes, context_features)

    def _spline(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return rq_spline_packed(x, params, self.bins, inverse, self.bound)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(x, self.dim, type(self).__name__)
        z, log_deriv = self._spline(x, self.conditioner(x, cond), inverse=False)
        return z, log_deriv.sum(dim=1)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(z, self.dim, type(self).__name__)
        weights = self.conditioner.masked_weights()
        x, log_deriv = torch.zeros_like(z), torch.zeros_like(z)
        for _ in range(self.dim):  # pass k fixes the k-th dimension of the ordering
            x, log_deriv = self._spline(z, self.conditioner(x, cond, weights), inverse=True)
        return x, log_deriv.sum(dim=1)


class SplineCoupling(Coupling):
    """NSF-C (Durkan et al. 2019, section 3.2): a coupling layer whose ``τ`` is an RQ spline.

    ``z = b ⊙ x + (1 - b) ⊙ RQS(x; θ(b ⊙ x, cond))`` with ``3K-1`` parameters per transformed
    dimension from the conditioner built by ``conditioner(3K-1)`` (e.g.
    ``partial(MLPConditioner, D)`` for vectors, ``partial(ConvConditioner, C)`` for images; see
    :mod:`dgm.nn.bijectors.coupling` for masks and conditioners). A zero-initialised
    conditioner makes the layer start at the identity.

    Shapes: ``x`` (B, *event) -> ``z`` (B, *event), ``ladj`` (B,).

    >>> from functools import partial
    >>> from dgm.nn.bijectors.coupling import MLPConditioner, vector_mask
    >>> layer = SplineCoupling(vector_mask(4), partial(MLPConditioner, 4, hidden=(16,)), bins=4)
    >>> z, ladj = layer(torch.randn(8, 4))
    >>> z.shape, ladj.shape
    (torch.Size([8, 4]), torch.Size([8]))
    """

    def __init__(self, mask: Tensor, conditioner: ConditionerBuilder, bins: int = 8, bound: float = DEFAULT_BOUND):
        check_bins(bins, bound)
        super().__init__(mask, conditioner, out_per_dim=3 * bins - 1)
        self.bins, self.bound = bins, bound

    def transform(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_packed(x, params, self.bins, bound=self.bound)

    def untransform(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_packed(y, params, self.bins, inverse=True, bound=self.bound)
