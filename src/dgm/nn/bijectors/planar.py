"""Planar and radial flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows").

Both are defined in the **sampling** direction, ``x = f(z)``, where their log-det is closed-form
and cheap (eq. 10-14); that is the direction a VAE posterior ``q(z_K | x)`` uses. In dgm's
convention (``forward`` = data -> base) this makes:

- ``inverse(z) -> (f(z), log|det ∂f/∂z|)``: the generative map, exact, one pass;
- ``forward(x) -> (f⁻¹(x), log|det ∂f⁻¹/∂x|)``: the inverse map, which has no closed form for
  the planar flow (a scalar monotone equation solved by safeguarded Newton iterations) and a
  closed form for the radial flow (a quadratic in the radius).

So in a VAE posterior either call ``flow.inverse(z0)``, or wrap the flow as
``Inverse(Planar(dim))`` to get a bijector whose ``forward`` is the sampling map.

Invertibility (appendix A.1) is enforced by reparameterising: planar flows use
``û = u + (m(wᵀu) - wᵀu) w / ||w||²`` with ``m(a) = -1 + softplus(a)``, so ``wᵀû > -1``;
radial flows use ``α = softplus(α_raw) > 0`` and ``β = -α + softplus(β_raw) ≥ -α``.

The pure functions take the parameters as tensors, per flow ((D,) and ()) or per example
((B, D) and (B,)) for amortised flows whose parameters come from an encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.nn.bijectors.autoregressive import check_vectors
from dgm.nn.bijectors.base import Bijector

# ----- planar -----------------------------------------------------------------------------------


def planar_u_hat(u: Tensor, w: Tensor) -> Tensor:
    """``û = u + (m(wᵀu) - wᵀu) w / ||w||²``, ``m(a) = -1 + softplus(a)`` (appendix A.1).

    Then ``wᵀû = m(wᵀu) > -1``, which makes the planar map invertible. Shapes (..., D).
    """
    wu = (w * u).sum(-1, keepdim=True)
    ww = (w * w).sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return u + (F.softplus(wu) - 1 - wu) * w / ww


def _planar_det(t: Tensor, softplus_wu: Tensor) -> Tensor:
    """``1 + tanh'(·) wᵀû`` written as ``t² + (1 - t²) softplus(wᵀu)`` with ``t = tanh(·)``.

    Equal since ``tanh' = 1 - t²`` and ``wᵀû = softplus(wᵀu) - 1``; this form is a sum of
    non-negative terms, so it never cancels to 0 or below when ``wᵀû`` approaches -1.
    """
    return t * t + (1 - t * t) * softplus_wu


def planar_map(z: Tensor, u: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """The planar flow ``x = z + û tanh(wᵀz + b)`` and ``log|det ∂x/∂z|`` (eq. 10-12).

    ``u`` is unconstrained (:func:`planar_u_hat` is applied here). Shapes: ``z`` (B, D), ``u``
    and ``w`` (D,) or (B, D), ``b`` () or (B,). Returns ``x`` (B, D) and ``ladj`` (B,).
    """
    t = torch.tanh((z * w).sum(-1) + b)  # (B,)
    x = z + planar_u_hat(u, w) * t.unsqueeze(-1)
    return x, torch.log(_planar_det(t, F.softplus((w * u).sum(-1))))


def planar_solve(x: Tensor, u: Tensor, w: Tensor, b: Tensor, max_iter: int = 100) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`planar_map`: ``z = f⁻¹(x)`` and ``log|det ∂z/∂x|``, (B, D) and (B,).

    With ``a = wᵀz`` the map gives ``wᵀx = a + m tanh(a + b)``, ``m = wᵀû > -1``: a strictly
    increasing scalar equation in ``a`` whose root lies in ``[wᵀx - |m|, wᵀx + |m|]``. It is
    solved by Newton steps kept inside a shrinking bracket (bisection when a step leaves it) to
    machine precision, then ``z = x - û tanh(a + b)``. The iterations run without autograd; one
    last Newton step with autograd gives the exact gradient (implicit function theorem).
    """
    u_hat = planar_u_hat(u, w)
    wx = (x * w).sum(-1)  # (B,)
    m = (w * u_hat).sum(-1).expand_as(wx)
    b = b.expand_as(wx)
    softplus_wu = F.softplus((w * u).sum(-1)).expand_as(wx)
    with torch.no_grad():
        root = _planar_root(wx, m, b, max_iter)
        slope = _planar_det(torch.tanh(root + b), softplus_wu)  # g'(root)
    # implicit function theorem: the value stays the root, the gradient is -∇g / g'(root)
    g = root + m * torch.tanh(root + b) - wx
    a = root - (g - g.detach()) / slope
    t = torch.tanh(a + b)
    z = x - u_hat * t.unsqueeze(-1)
    return z, -torch.log(_planar_det(t, softplus_wu))


def _planar_root(wx: Tensor, m: Tensor, b: Tensor, max_iter: int) -> Tensor:
    """The root ``a`` of ``g(a) = a + m tanh(a + b) - wx`` (all (B,)), ``m > -1``, by safeguarded Newton."""
    lo, hi = wx - m.abs(), wx + m.abs()  # g(lo) <= 0 <= g(hi) since |tanh| <= 1
    a = wx.clone()
    tol = 4 * torch.finfo(wx.dtype).eps
    for _ in range(max_iter):
        t = torch.tanh(a + b)
        g = a + m * t - wx
        lo, hi = torch.where(g < 0, a, lo), torch.where(g > 0, a, hi)
        step = a - g / (1 + m * (1 - t * t))  # Newton; leaves the bracket (and is replaced) if g' ~ 0
        new = torch.where((step > lo) & (step < hi), step, (lo + hi) / 2)
        done = bool(((new - a).abs() <= tol * (1 + a.abs())).all())
        a = new
        if done:
            break
    return a


class Planar(Bijector):
    """A planar flow ``f(z) = z + û tanh(wᵀz + b)`` (Rezende & Mohamed 2015, eq. 10).

    ``inverse`` is the generative map ``f`` (base -> data, closed-form ladj, what a VAE
    posterior uses); ``forward`` is ``f⁻¹`` (data -> base), solved numerically to machine
    precision by :func:`planar_solve`. ``u`` starts at 0 (the identity), ``w`` random.

    Shapes: (B, D) -> (B, D), ``ladj`` (B,).

    >>> flow = Planar(3)
    >>> _ = nn.init.normal_(flow.u)
    >>> x, ladj = flow.inverse(torch.randn(5, 3))
    >>> torch.allclose(flow(x)[1], -ladj, atol=1e-5)
    True
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.u = nn.Parameter(torch.zeros(dim))
        self.w = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(x, self.dim, "Planar")
        return planar_solve(x, self.u, self.w, self.b)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(z, self.dim, "Planar")
        return planar_map(z, self.u, self.w, self.b)


# ----- radial -----------------------------------------------------------------------------------


def radial_params(alpha_raw: Tensor, beta_raw: Tensor) -> tuple[Tensor, Tensor]:
    """``α = softplus(α_raw) > 0`` and ``α + β = softplus(β_raw) > 0``, i.e. ``β > -α`` (A.1)."""
    return F.softplus(alpha_raw), F.softplus(beta_raw)


def radial_map(z: Tensor, z0: Tensor, alpha_raw: Tensor, beta_raw: Tensor) -> tuple[Tensor, Tensor]:
    """The radial flow ``x = z + β (z - z0) / (α + r)``, ``r = ||z - z0||``, and its log-det (eq. 14).

    ``log|det| = (D-1) log(1 + β h) + log(1 + β h + β h' r)`` with ``h = 1 / (α + r)``, written as
    ``(D-1) log((r + α + β) / (α + r)) + log((r (r + 2α) + α (α + β)) / (α + r)²)``: sums of
    positive terms, so no cancellation as ``β`` approaches ``-α``.
    Shapes: ``z`` (B, D), ``z0`` (D,) or (B, D), ``alpha_raw`` and ``beta_raw`` () or (B,).
    """
    alpha, alpha_beta = radial_params(alpha_raw, beta_raw)
    diff = z - z0
    r = torch.linalg.vector_norm(diff, dim=-1)  # (B,)
    scale = (r + alpha_beta) / (alpha + r)  # 1 + β h > 0
    x = z0 + diff * scale.unsqueeze(-1)
    return x, _radial_ladj(r, alpha, alpha_beta, z.shape[-1])


def _radial_ladj(r: Tensor, alpha: Tensor, alpha_beta: Tensor, dim: int) -> Tensor:
    """``log|det ∂x/∂z|`` of the radial map at radius ``r = ||z - z0||``, (B,)."""
    log_scale = torch.log(r + alpha_beta) - torch.log(alpha + r)
    log_radial = torch.log(r * (r + 2 * alpha) + alpha * alpha_beta) - 2 * torch.log(alpha + r)
    return (dim - 1) * log_scale + log_radial


def radial_solve(x: Tensor, z0: Tensor, alpha_raw: Tensor, beta_raw: Tensor) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`radial_map`: ``z`` (B, D) and ``log|det ∂z/∂x|`` (B,), in closed form.

    The map keeps directions from ``z0`` and sends radius ``r`` to ``R = r (r + α + β) / (α + r)``,
    so ``r`` is the positive root of ``r² + p r - α R = 0``, ``p = α + β - R``, taken as
    ``2αR / (p + √(p² + 4αR))`` for ``p ≥ 0`` and ``(√(p² + 4αR) - p) / 2`` otherwise (no
    cancellation either way).
    """
    alpha, alpha_beta = radial_params(alpha_raw, beta_raw)
    diff = x - z0
    big_r = torch.linalg.vector_norm(diff, dim=-1)  # (B,)
    p = alpha_beta - big_r
    root = torch.sqrt(p * p + 4 * alpha * big_r)
    tiny = torch.finfo(x.dtype).tiny
    r = torch.where(p >= 0, 2 * alpha * big_r / (p + root).clamp_min(tiny), (root - p) / 2)
    z = z0 + diff * ((alpha + r) / (r + alpha_beta)).unsqueeze(-1)
    return z, -_radial_ladj(r, alpha, alpha_beta, x.shape[-1])


class Radial(Bijector):
    """A radial flow ``f(z) = z + β (z - z0) / (α + ||z - z0||)`` (Rezende & Mohamed 2015, eq. 14).

    ``inverse`` is the generative map ``f`` (base -> data); ``forward`` is ``f⁻¹`` (data ->
    base), also closed-form (:func:`radial_solve`). ``α = softplus(α_raw)``,
    ``β = -α + softplus(β_raw)``; all parameters start at 0, which is the identity.

    Shapes: (B, D) -> (B, D), ``ladj`` (B,).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.z0 = nn.Parameter(torch.zeros(dim))
        self.alpha_raw = nn.Parameter(torch.zeros(()))
        self.beta_raw = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(x, self.dim, "Radial")
        return radial_solve(x, self.z0, self.alpha_raw, self.beta_raw)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_vectors(z, self.dim, "Radial")
        return radial_map(z, self.z0, self.alpha_raw, self.beta_raw)
