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
    over bins), a ``gather`` of each element's bin and the slopes of that bin's two knots
    only. The forward map has a hand-written backward (:class:`_RQSplineForward`, for speed;
    first derivatives only); the inverse uses autograd.

    Any memory layout of ``params`` is used as it is (see :func:`_grouped`): the MLP and MADE
    conditioners hand over their outputs parameter-major, a (3K-1, B) block per dimension,
    where the softmax and cumulative sum over the bins run across contiguous rows of the batch.
    """
    _check_spline_args(params, bins, min_width, min_height)
    if params.shape[:-1] != x.shape:
        params = params.expand(*x.shape, params.shape[-1])
    xg, pg, restore = _grouped(x, params)
    c = _constants(bins, bound, min_width, min_height, min_derivative, pg.dtype, pg.device)
    if not inverse:
        y, ladj = _RQSplineForward.apply(xg, pg, c)
        return restore(y), restore(ladj)
    knots = _knots(pg, c)
    outside, yc, _, bin_ = _locate(xg, pg, knots, c, inverse=True)
    x_in, ladj = _rq_inverse(yc, *bin_[:6])
    return restore(torch.where(outside, xg, x_in)), restore(torch.where(outside, c.zero, ladj))


def _grouped(x: Tensor, params: Tensor):
    """``x`` (...) and ``params`` (..., P) as ``xg`` (G, M) and ``pg`` (G, P, M), without copying params.

    The element dimensions are put in memory order (largest stride first) and split where the
    parameter dimension sits among them: G counts the elements of the dimensions outside it, M
    those inside. Standard contiguous ``params`` give (N, P, 1); the conditioners' parameter-major
    outputs, (B, D, P) views of (D, P, B) memory, give (D, P, B). Views of both tensors when
    the strides allow (a copy otherwise, of ``x`` usually: N numbers). ``restore`` maps a (G, M)
    result back to the shape of ``x``.
    """
    if params.dim() == 3 and params.stride(0) == 1 and params.stride(2) == params.shape[0]:
        # parameter-major (B, D, P): (D, P, B); x made contiguous (N numbers) for the element-wise ops
        return x.t().contiguous(), params.permute(1, 2, 0), Tensor.t
    lead = params.dim() - 1
    strides = params.stride()
    order = sorted(range(lead), key=lambda i: strides[i], reverse=True)  # stable: ties keep their order
    split = sum(strides[i] > strides[-1] for i in range(lead))
    groups = math.prod(params.shape[i] for i in order[:split])
    inner = math.prod(params.shape[i] for i in order[split:])
    pg = params.permute(*order[:split], lead, *order[split:]).reshape(groups, params.shape[-1], inner)
    if order == list(range(lead)):  # x in its own order: plain views
        return x.reshape(groups, inner), pg, lambda t: t.view(x.shape)
    xp = x.permute(*order)
    back = [0] * lead
    for position, i in enumerate(order):
        back[i] = position
    return xp.reshape(groups, inner), pg, lambda t: t.view(xp.shape).permute(*back)


def _check_spline_args(params: Tensor, bins: int, min_width: float, min_height: float) -> None:
    if params.shape[-1] != 3 * bins - 1:
        raise DataError(f"a spline of {bins} bins needs {3 * bins - 1} parameters, got {params.shape[-1]}")
    if min_width * bins >= 1 or min_height * bins >= 1:
        raise ConfigError(f"min_width and min_height must be below 1/bins = {1 / bins}")


class _Constants(NamedTuple):
    """The numbers of a spline family as tensors of the parameters' dtype and device.

    A Python number in an operation costs as much as the operation itself on the small
    tensors of a spline layer (it is wrapped into a tensor every time), so they are made once.
    ``minimum`` and ``scale`` map the softmax to bin sizes (0-dim, or (2, 1, 1) for widths and
    heights when they differ).
    """

    bins: int
    bound: Tensor
    neg_bound: Tensor
    two_bound: Tensor
    minimum: Tensor
    scale: Tensor
    slope_offset: Tensor  # c with min_derivative + softplus(c) = 1: all-zero parameters give the identity
    min_derivative: Tensor
    zero: Tensor
    one: Tensor
    slope_rows: Tensor  # (2, 1) long: row of d_k in the parameters is 2K - 1 + k, of d_k+1 2K + k
    fixed_rows: Tensor  # (2, 1) long: rows that mean d_0 and d_K, which are 1
    last_row: Tensor  # 0-dim long: 3K - 2


@functools.lru_cache(maxsize=64)
def _constants(
    bins: int, bound: float, min_width: float, min_height: float, min_derivative: float, dtype, device
) -> _Constants:
    def const(*values):
        return torch.tensor(values, dtype=dtype, device=device).squeeze(0)

    minimum = const([[2 * bound * min_width]], [[2 * bound * min_height]])  # (2, 1, 1)
    scale = const([[2 * bound * (1 - min_width * bins)]], [[2 * bound * (1 - min_height * bins)]])
    if min_width == min_height:
        minimum, scale = minimum[0, 0, 0], scale[0, 0, 0]
    rows = torch.tensor([[2 * bins - 1], [2 * bins]], device=device)
    return _Constants(
        bins, const(bound), const(-bound), const(2 * bound), minimum, scale,
        const(math.log(math.expm1(1.0 - min_derivative))), const(min_derivative), const(0.0), const(1.0),
        rows, rows + torch.tensor([[0], [bins - 1]], device=device), torch.tensor(3 * bins - 2, device=device),
    )  # fmt: skip


class _Knots(NamedTuple):
    """The bins of G x M splines, from :func:`_knots` (parameters (G, 3K-1, M)).

    ``soft`` (G, 2, K, M): the softmax of the raw widths (row 0) and heights (row 1);
    ``sizes`` (G, 2, K, M): the bin widths and heights, ``minimum + scale * soft``; ``ends``
    (G, 2, K, M): their cumulative sums, the right knots ``x_{k+1} + B`` and ``y_{k+1} + B``
    (the last exactly 2B). The slopes are computed for each element's bin only (:func:`_locate`).
    """

    soft: Tensor
    sizes: Tensor
    ends: Tensor


def _knots(pg: Tensor, c: _Constants) -> _Knots:
    """The bins of the splines with parameters ``pg`` (G, 3K-1, M); differentiable."""
    groups, _, inner = pg.shape
    raw = pg[:, : 2 * c.bins].view(groups, 2, c.bins, inner)  # (G, 2, K, M): widths and heights, a view
    soft = torch.softmax(raw, dim=2)
    sizes = torch.addcmul(c.minimum, soft, c.scale)  # (G, 2, K, M), each at least the minimum, summing to 2B
    ends = torch.cumsum(sizes, dim=2)
    ends.select(2, -1).fill_(c.two_bound)  # the last knot is B exactly, not a rounded sum
    return _Knots(soft, sizes, ends)


def _locate(x: Tensor, pg: Tensor, knots: _Knots, c: _Constants, inverse: bool):
    """Outside mask, clamped input, bin index (G, 1, M) and the numbers of each element's bin.

    ``x`` is (G, M) and ``pg`` the parameters (G, 3K-1, M). The bin is the number of interior
    knots ``<= x`` (0..K-1, so ``x = bound`` is in the last bin). The bin's numbers, each (G, M):
    ``x_k, y_k, d_k, x_k+1, y_k+1, d_k+1`` and the width and height recomputed from the knots,
    ``x_{k+1} - x_k`` (so that ``ξ`` and ``1 - ξ`` add up to one as closely as rounding
    allows); then, for the backward, the summed right knots + B and sizes (G, 2, 1, M), the
    shifted raw derivatives of both slopes (G, 2, M), the rows of ``pg`` they came from and which
    of the two are the boundary slopes 1. Slopes: ``min_derivative + softplus(raw + c)``.
    """
    xc = torch.clamp(x, c.neg_bound, c.bound)  # the tails are evaluated at the bound: finite, masked out later
    outside = xc != x  # True for NaN, which then passes through
    interior = knots.ends[:, 1 if inverse else 0, :-1]  # (G, K-1, M): x_1..x_{K-1} (or y) + B
    k = ((xc + c.bound).unsqueeze(1) >= interior).sum(1, keepdim=True)  # (G, 1, M)
    k2 = k.unsqueeze(1).expand(-1, 2, -1, -1)  # (G, 2, 1, M): the same bin for x and y
    sizes, ends = knots.sizes.gather(2, k2), knots.ends.gather(2, k2)  # (G, 2, 1, M)
    right = ends.squeeze(2) - c.bound  # (G, 2, M): x_k+1, y_k+1
    left = right - sizes.squeeze(2)  # x_k, y_k
    rows = k + c.slope_rows  # (G, 2, M): the rows of d_k and d_k+1 in pg
    fixed = rows == c.fixed_rows  # d_0 and d_K (whose row is a height's, or past the end)
    rows = torch.minimum(rows, c.last_row)
    raw_slopes = pg.gather(1, rows) + c.slope_offset
    slopes = (F.softplus(raw_slopes) + c.min_derivative).masked_fill_(fixed, c.one)
    (x0, y0), (x1, y1), (w, h), (d0, d1) = left.unbind(1), right.unbind(1), (right - left).unbind(1), slopes.unbind(1)
    return outside, xc, k, (x0, y0, d0, x1, y1, d1, w, h, ends, sizes, raw_slopes, rows, fixed)


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
    c = _constants(bins, bound, min_width, min_height, min_derivative, params.dtype, params.device)
    knots = _knots(params.reshape(-1, 3 * bins - 1, 1), c)
    xy = F.pad(knots.ends[..., 0], (1, 0)) - bound  # (N, 2, K+1), x_0 = y_0 = -B
    slopes = F.pad(F.softplus(derivatives + c.slope_offset) + min_derivative, (1, 1), value=1.0)
    lead = params.shape[:-1]
    return xy[:, 0].reshape(*lead, bins + 1), xy[:, 1].reshape(*lead, bins + 1), slopes


def _params_backward(k: Tensor, grads: tuple[Tensor, ...], soft: Tensor, saved: tuple[Tensor, ...], c: _Constants):
    """The gradient (G, 3K-1, M) of the parameters from those of each element's bin, by hand.

    ``k`` (G, 1, M) are the bins; ``grads`` are the gradients (each (G, M)) of ``x``, ``y``
    (that is, of ``x_k`` and ``x_k+1`` moved together, and likewise in ``y``), of ``x_k`` and
    ``y_k``, and of the slopes ``d_k`` and ``d_k+1``; ``soft`` the softmax of the forward pass
    and ``saved`` the bin's summed knots and sizes, raw slopes, their rows and boundary mask.

    The right knot ``x_k+1`` is ``-B + Σ_{j<=k} w_j`` and ``x_k = x_k+1 - w_k``, so a bin's
    knots move with the sizes ``j <= k`` and the gap between them with ``w_k`` alone. The
    spline is unchanged when the input and both knots move together, so the gradient of the
    right knot is ``-(g(x) + g(x_k))`` and the sizes get ``∂/∂w_j = -g(x) 1[j <= k] - g(x_k)
    1[j = k]`` (heights alike, with ``y`` moving with its knots). With ``w = minimum + scale
    soft``, the softmax's backward ``soft ⊙ (g - Σ_j g_j soft_j)`` needs ``Σ_{j<=k} soft_j``
    and ``soft_k``, which are the bin's summed knot and size (``(x_k+1 + B - (k+1) minimum) /
    scale`` and ``(w_k - minimum) / scale``): no sum over the bins. The slopes' gradients go
    through softplus, whose derivative is the sigmoid, to the two raw derivatives of the bin.
    """
    g_x, g_y, g_x0, g_y0, g_d0, g_d1 = grads
    ends, sizes, raw_slopes, rows, fixed = saved  # ends and sizes (G, 2, 1, M)
    groups, _, bins, inner = soft.shape
    pos, k = _arange(bins, k.device), k.unsqueeze(1)  # (K, 1): 0..K-1, and the bins (G, 1, 1, M)
    # minus the gradient of the sizes: g_knot 1[j <= k] + g_size 1[j = k], each (G, 2, 1, M)
    g_knot, g_size = torch.stack((g_x, g_y.neg()), 1).unsqueeze(2), torch.stack((g_x0, g_y0), 1).unsqueeze(2)
    knot_sums = torch.addcmul(ends, (k + 1).to(soft.dtype), c.minimum, value=-1)  # scale Σ_{j<=k} soft_j
    total = torch.addcmul(g_knot * knot_sums, g_size, sizes - c.minimum)  # scale Σ_j g_j soft_j
    below = total - g_knot.mul_(c.scale)  # the softmax's backward at j < k, over soft_j
    at = below - g_size.mul_(c.scale)  # and at j = k
    g_raw = torch.where(pos < k, below, torch.where(pos == k, at, total))  # (G, 2, K, M)
    g_params = soft.new_empty(groups, 3 * bins - 1, inner)
    torch.mul(g_raw, soft, out=g_params[:, : 2 * bins].view(groups, 2, bins, inner))
    g_slopes = torch.stack((g_d0, g_d1), 1).mul_(torch.sigmoid(raw_slopes)).masked_fill_(fixed, c.zero)
    g_params[:, 2 * bins :].zero_()
    return g_params.scatter_add_(1, rows, g_slopes)  # a boundary slope adds its zero to a height or the last slope


@functools.lru_cache(maxsize=64)
def _arange(n: int, device: torch.device) -> Tensor:
    """``0, 1, ..., n-1`` (long) on ``device`` as a column (n, 1), made once."""
    return torch.arange(n, device=device).view(n, 1)


class _RQSplineForward(torch.autograd.Function):
    """The forward spline (NSF eq. 4-5), knots included, with its backward written out.

    Autograd would record ~45 small nodes per call (knots and formula), and replaying them
    dominates the cost of a spline flow on CPU batches. Here the forward runs without a graph
    and the backward is reverse mode by hand (:func:`_rq_backward`, then
    :func:`_params_backward`). First derivatives only (``once_differentiable``).
    Inputs ``x`` (G, M), parameters (G, 3K-1, M) (see :func:`_grouped`) and :func:`_constants`.
    """

    @staticmethod
    def forward(ctx, x, pg, c):
        knots = _knots(pg, c)
        outside, xc, k, (x0, y0, d0, x1, y1, d1, w, h, *bin_saved) = _locate(x, pg, knots, c, inverse=False)
        s = h / w
        xi, omx = (xc - x0) / w, (x1 - xc) / w  # ξ and 1 - ξ, each computed without cancellation
        t, xi2, omx2, s2 = xi * omx, xi * xi, omx * omx, s + s
        sigma = d0 + d1 - s2
        denom = torch.addcmul(s, sigma, t)  # s + (d0 + d1 - 2s) ξ(1-ξ)
        p = torch.addcmul(s * xi2, d0, t)  # s ξ² + d0 ξ(1-ξ)
        inner = torch.addcmul(torch.addcmul(s2 * t, d1, xi2), d0, omx2)  # d1 ξ² + 2s ξ(1-ξ) + d0 (1-ξ)²
        q = s / denom
        y = torch.where(outside, x, torch.addcdiv(y0, h * p, denom))
        ladj = torch.log(inner * q * q).masked_fill_(outside, c.zero)
        terms = (xi, omx, t, xi2, omx2, w, h, s, s2, sigma, d0, d1, denom, p, inner)
        ctx.save_for_backward(outside, k, knots.soft, *bin_saved, *terms)
        ctx.constants = c
        return y, ladj

    @staticmethod
    @once_differentiable
    def backward(ctx, g_y: Tensor, g_l: Tensor):
        outside, k, soft, *saved = ctx.saved_tensors
        c = ctx.constants
        gy, gl = g_y.masked_fill(outside, c.zero), g_l.masked_fill(outside, c.zero)
        grads = _rq_backward(gy, gl, *saved[5:])
        g_params = _params_backward(k, grads, soft, saved[:5], c)
        return torch.where(outside, g_y, grads[0]), g_params, None  # identity outside


def _rq_backward(gy, gl, xi, omx, t, xi2, omx2, w, h, s, s2, sigma, d0, d1, denom, p, inner):
    """Reverse mode through :class:`_RQSplineForward` by hand.

    From the gradients ``gy``, ``gl`` of ``y = y0 + h p / denom`` and
    ``ladj = log inner + 2 log s - 2 log denom`` (zero outside the bound), returns the gradients
    of ``x``, ``y``, ``x_k``, ``y_k``, ``d_k`` and ``d_k+1``, each (G, M), where ``x_k`` and
    ``y_k`` move alone and ``x``, ``y`` move with both knots of their bin (the input of
    :func:`_params_backward`). Moving ``x`` with both its knots leaves ``ξ`` and the spline
    unchanged, so the gradient of the right knot is ``-(g(x) + g(x_k))``; moving the ``y``
    knots shifts ``y`` and nothing else, so that of ``y_k+1`` is ``gy - g(y_k)``.
    """
    a = gy / denom
    g_p, g_h, g_inner, gl2 = a * h, a * p, gl / inner, gl + gl
    gi2 = g_inner + g_inner
    m = torch.addcmul(gl2, g_p, p).div_(denom)  # minus the gradient of denom = s + sigma t
    # through denom, p = s ξ² + d0 t and inner = d1 ξ² + 2 s t + d0 (1-ξ)²; 1 - 2t = ξ² + (1-ξ)²
    g_s = (gl2 / s).addcmul_(g_p, xi2).addcmul_(gi2, t).sub_(m * (xi2 + omx2))
    g_d0 = torch.addcmul((g_p - m).mul_(t), g_inner, omx2)
    g_d1 = (g_inner * xi2).sub_(m * t)
    g_t = torch.addcmul(g_p * d0, gi2, s).sub_(m * sigma)
    g_xi = torch.addcmul(g_p * s2, gi2, d1).mul_(xi).addcmul_(g_t, omx)
    g_omx = (gi2 * d0).mul_(omx).addcmul_(g_t, xi)
    # ξ = (x - x0) / w, 1 - ξ = (x1 - x) / w, s = h / w, w = x1 - x0, h = y1 - y0
    g_x = (g_xi - g_omx).div_(w)
    g_s_w = g_s.div_(w)
    g_x0 = (g_s_w * s).sub_(omx * g_x)  # (s g_s - (1-ξ)(g_ξ - g_(1-ξ))) / w
    g_y0 = (gy - g_h).sub_(g_s_w)
    return g_x, gy, g_x0, g_y0, g_d0, g_d1


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
    (``num_classes`` labels or ``context_features`` vectors). The MADE's output layer starts at
    zero, so the layer starts as the identity.

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
        self.conditioner = MADEConditioner(
            dim, 3 * bins - 1, hidden, order, seed, num_classes, context_features, param_major=True
        )
        # a zero output layer: the layer starts as the identity, like a spline coupling (its MLP's last
        # layer is zero too); from a random start, training on the toy 2-D protocol ends 0.01-0.07 nats worse
        nn.init.zeros_(self.conditioner.out.weight)
        nn.init.zeros_(self.conditioner.out.bias)

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

    param_major = True  # the spline's softmax and cumulative sum run over contiguous rows

    def __init__(self, mask: Tensor, conditioner: ConditionerBuilder, bins: int = 8, bound: float = DEFAULT_BOUND):
        check_bins(bins, bound)
        super().__init__(mask, conditioner, out_per_dim=3 * bins - 1)
        self.bins, self.bound = bins, bound

    def transform(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_packed(x, params, self.bins, bound=self.bound)

    def untransform(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rq_spline_packed(y, params, self.bins, inverse=True, bound=self.bound)
