"""A Gaussian mixture: the shallow generative baseline with an exact density.

    p(x) = sum_k pi_k N(x; mu_k, Sigma_k),   Sigma_k = L_k L_k^T,
    log p(x) = logsumexp_k [log pi_k + log N(x; mu_k, Sigma_k)],
    log N(x; mu, L L^T) = -|z|^2 / 2 - sum_d log L_dd - (D / 2) log(2 pi),   z = L^{-1} (x - mu),

with K components, mixture weights pi = softmax(logits), means mu_k and a scale factor L_k
per component: diagonal (``covariance="diag"``, L_k = diag(s_k)) or lower-triangular
(``covariance="full"``). Every diagonal entry is ``softplus(raw) + min_scale``, so no scale is
the exp of an unbounded number and the density stays bounded, p(x) <= (2 pi)^{-D/2}
min_scale^{-D}; the strictly-lower part of L_k is free. Sampling is exact and ancestral:
k ~ Categorical(pi), x = mu_k + L_k eps with eps ~ N(0, I).

It is trained like any other model, by maximum likelihood with the optimiser of the training
engine (not by EM). Gradient descent on a mixture depends on where it starts, so the first
training-mode :meth:`GMM.loss` call initialises it from its batch: means on K points of the
batch spread out by k-means++ seeding, scales on the batch's per-dimension standard deviation
shrunk by K^(1/D) (the K components share the data's volume), zero correlations, equal
weights. A persistent buffer records that this happened, so a saved, reloaded or resumed
model is not initialised again. (With uniformly drawn means and unshrunk scales, 3 000 Adam
steps at lr 1e-3 leave KL 0.36 nats on toy2d:gmm8, against 0.001 with this start.)

With ``conditional=True`` the components are shared and each class has its own mixture
weights: p(x | y) = sum_k softmax(logits_y)_k N(x; mu_k, Sigma_k).

Size: K (1 + D + D) parameters with diagonal covariances, K (1 + D + D (D + 1) / 2) with full
ones: 60 for K = 10 on 2-D points, 21 450 on dequantized ``digits`` (D = 64), 3.09 million
on dequantized ``mnist5k`` (D = 784), which is still fast enough on a CPU.

>>> import dgm
>>> model = dgm.build("gmm", data=dgm.DataInfo((2,), "continuous"), components=3)
>>> model.log_prob(torch.zeros(4, 2)).shape
torch.Size([4])
>>> model.sample(5, generator=torch.Generator().manual_seed(0)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm import rng
from dgm.errors import ConfigError
from dgm.models.base import GenerativeModel, ModelConfig, as_batch
from dgm.registry import register

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class GMMConfig(ModelConfig):
    """Configuration of :class:`GMM`.

    Ten full-covariance components, the shallow baseline of the lecture notes: enough for the
    eight modes of ``toy2d:gmm8``, and about 3 million parameters on 784-pixel images.
    ``min_scale`` is in data units: below the width of a dequantization bin (1) and of a
    256-level grey scale mapped to [0, 1] (1/256 = 0.004).
    """

    components: int = 10  # K, the number of Gaussians
    covariance: Literal["diag", "full"] = "full"  # diagonal or full (Cholesky) covariances
    min_scale: float = 1e-3  # lower bound of every diagonal entry of the scale factors L_k


def inverse_softplus(y: Tensor) -> Tensor:
    """The r with softplus(r) = log(1 + e^r) = y, for y > 0: r = y + log(1 - e^{-y}),
    written with expm1 so that it is accurate for small and for large y."""
    return y + torch.log(-torch.expm1(-y))


def kmeans_pp_seeds(x: Tensor, k: int) -> Tensor:
    """Indices (k,) of k rows of x (B, D), B >= k, drawn by k-means++ seeding (Arthur &
    Vassilvitskii 2007): the first uniformly, each next one with probability proportional to
    its squared distance to the nearest row already drawn, so the seeds spread over the data
    (and are distinct rows unless x has fewer than k distinct rows)."""
    chosen = [int(torch.randint(len(x), ()))]
    d2 = (x - x[chosen[0]]).pow(2).sum(-1)  # (B,) squared distance to the nearest seed
    for _ in range(k - 1):
        # a tiny floor keeps the draw defined when every row coincides with a seed
        i = int(torch.multinomial(d2.clamp(min=1e-30), 1))
        chosen.append(i)
        d2 = torch.minimum(d2, (x - x[i]).pow(2).sum(-1))
    return torch.tensor(chosen, device=x.device)


def diag_gaussian_log_prob(x: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    """log N(x; mu_k, diag(s_k^2)) for x (B, D), means and scales (K, D) -> (B, K).

    = -sum_d [((x_d - mu_kd) / s_kd)^2 / 2 + log s_kd] - (D / 2) log(2 pi).
    """
    z = (x.unsqueeze(1) - means) / scales  # (B, K, D)
    return -0.5 * z.pow(2).sum(-1) - scales.log().sum(-1) - 0.5 * x.shape[-1] * LOG_2PI


def tril_gaussian_log_prob(x: Tensor, means: Tensor, scale_tril: Tensor) -> Tensor:
    """log N(x; mu_k, L_k L_k^T) for x (B, D), means (K, D), lower-triangular L (K, D, D) -> (B, K).

    = -|z_k|^2 / 2 - sum_d log L_kdd - (D / 2) log(2 pi), with z_k = L_k^{-1} (x - mu_k) found by
    a triangular solve (no inverse, no determinant).
    """
    diff = (x.unsqueeze(0) - means.unsqueeze(1)).transpose(1, 2)  # (K, D, B)
    z = torch.linalg.solve_triangular(scale_tril, diff, upper=False)  # (K, D, B)
    log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
    return (-0.5 * z.pow(2).sum(1) - log_det.unsqueeze(1)).T - 0.5 * x.shape[-1] * LOG_2PI


@register("gmm")
class GMM(GenerativeModel):
    """Mixture of K Gaussians (diagonal or full covariance): the shallow baseline with an exact density."""

    family = "baseline"
    density = "exact"
    can_condition = True
    supports = frozenset({"continuous"})
    Config = GMMConfig

    def __init__(self, config: GMMConfig):
        super().__init__(config)
        if config.components < 1:
            raise ConfigError(f"config key 'components' must be at least 1, got {config.components}")
        if not config.min_scale > 0:
            raise ConfigError(f"config key 'min_scale' must be positive, got {config.min_scale}")
        k, d = config.components, config.data.dim
        tables = config.data.num_classes if config.conditional else 1
        self.logits = nn.Parameter(torch.zeros(tables, k))  # (tables, K) mixture logits
        self.means = nn.Parameter(torch.randn(k, d))  # (K, D); replaced by data at the first step
        # (K, D) raw diagonal of L_k, softplus(raw) + min_scale = 1 to start
        self.raw_scales = nn.Parameter(inverse_softplus(torch.full((k, d), 1.0 - config.min_scale)))
        if config.covariance == "full":
            rows, cols = torch.tril_indices(d, d, offset=-1)
            self.register_buffer("tril_rows", rows, persistent=False)
            self.register_buffer("tril_cols", cols, persistent=False)
            self.off_diagonal = nn.Parameter(torch.zeros(k, len(rows)))  # (K, D (D - 1) / 2)
        # persistent, so that reloading or resuming a trained model does not initialise it again
        self.register_buffer("initialised", torch.tensor(False))

    @classmethod
    def shrink_hints(cls, config: GMMConfig) -> tuple[str, ...]:
        """Fewer components, and diagonal instead of full covariances."""
        hints = [f"use fewer components with --set components=... (now {config.components})"]
        if config.covariance == "full":
            d = config.data.dim
            saved = config.components * d * (d - 1) // 2
            hints.append(f"use diagonal covariances with --set covariance=diag ({saved:,} fewer parameters)")
        return tuple(hints)

    # ----- parameters -----------------------------------------------------------------------
    def scales(self) -> Tensor:
        """Diagonal of the scale factors L_k, softplus(raw) + min_scale: (K, D)."""
        return F.softplus(self.raw_scales) + self.config.min_scale

    def scale_tril(self) -> Tensor:
        """Lower-triangular scale factors L_k with Sigma_k = L_k L_k^T: (K, D, D)."""
        scale_tril = torch.diag_embed(self.scales())  # (K, D, D)
        if self.config.covariance == "full":
            scale_tril[:, self.tril_rows, self.tril_cols] = self.off_diagonal
        return scale_tril

    def log_weights(self, cond: Tensor | None, n: int) -> Tensor:
        """log pi_k for ``n`` examples (the row of each label for a conditional model): (n, K)."""
        log_pi = torch.log_softmax(self.logits, dim=-1)
        return log_pi[0].expand(n, -1) if cond is None else log_pi[cond]

    @torch.no_grad()
    def set_components(self, means: Tensor, scale_tril: Tensor, weights: Tensor | None = None) -> None:
        """Set the means (K, D), scale factors and (optionally) the weights (K,) or (tables, K).

        ``scale_tril`` is (K, D) for diagonal covariances (standard deviations) or (K, D, D)
        lower-triangular for full ones; its diagonal entries must exceed ``min_scale``. E.g. from
        scikit-learn: ``set_components(gm.means_, torch.linalg.cholesky(gm.covariances_), gm.weights_)``.
        """
        means, scale_tril = torch.as_tensor(means).to(self.means), torch.as_tensor(scale_tril).to(self.means)
        diag = scale_tril if scale_tril.dim() == 2 else scale_tril.diagonal(dim1=-2, dim2=-1)
        if not bool((diag > self.config.min_scale).all()):
            raise ConfigError(f"every scale must exceed min_scale = {self.config.min_scale}")
        self.means.copy_(means)
        self.raw_scales.copy_(inverse_softplus(diag - self.config.min_scale))
        if self.config.covariance == "full":
            full = torch.diag_embed(diag) if scale_tril.dim() == 2 else scale_tril
            self.off_diagonal.copy_(full[:, self.tril_rows, self.tril_cols])
        if weights is not None:
            self.logits.copy_(torch.as_tensor(weights).to(self.logits).log().expand_as(self.logits))

    # ----- data-dependent initialisation ----------------------------------------------------
    @torch.no_grad()
    def init_from_batch(self, x: Tensor) -> None:
        """Means on K points of ``x`` (B, D) by :func:`kmeans_pp_seeds` (drawn with replacement
        and jittered when B < K, since identical components get identical gradients forever),
        scales on the per-dimension standard deviation / K^(1/D), no correlations, equal weights."""
        k, (b, d) = self.config.components, x.shape
        std = x.std(0) if b > 1 else torch.ones_like(x[0])
        scale = (std / k ** (1.0 / d)).clamp(min=2 * self.config.min_scale)  # (D,)
        if b >= k:
            means = x[kmeans_pp_seeds(x, k)]
        else:
            means = x[torch.randint(b, (k,), device=x.device)] + 0.1 * scale * torch.randn(k, d, device=x.device)
        self.set_components(means, scale.expand(k, d), torch.ones(k))
        self.initialised.fill_(True)
        broadcast_from_first_process(self)

    # ----- the contract ---------------------------------------------------------------------
    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """-mean log p(x) (maximum likelihood); the first call in training mode first
        initialises the model from the batch (see :meth:`init_from_batch`)."""
        if self.training and not bool(self.initialised):
            self.init_from_batch(self.flat_x(as_batch(batch).x))
        return super().loss(batch, part)

    def component_log_prob(self, x: Tensor) -> Tensor:
        """log N(x; mu_k, Sigma_k) for every component, x (B, D) -> (B, K)."""
        if self.config.covariance == "diag":
            return diag_gaussian_log_prob(x, self.means, self.scales())
        return tril_gaussian_log_prob(x, self.means, self.scale_tril())

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) (or log p(x | cond)) in nats, (B,)."""
        x = self.flat_x(x)  # (B, D)
        cond = self.check_cond(cond, x.shape[0])
        return torch.logsumexp(self.log_weights(cond, x.shape[0]) + self.component_log_prob(x), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` examples (n, *data.shape): k ~ Categorical(pi), then x = mu_k + L_k eps."""
        cond = self.check_cond(cond, n)
        k = rng.categorical(self.log_weights(cond, n), generator)  # (n,)
        eps = rng.randn((n, self.config.data.dim), generator, self.device).to(self.dtype)  # (n, D)
        if self.config.covariance == "diag":
            return (self.means[k] + self.scales()[k] * eps).reshape(n, *self.config.data.shape)
        scale_tril, x = self.scale_tril(), self.means[k]  # (K, D, D), (n, D)
        for j in k.unique().tolist():  # one product per component: L[k] would be (n, D, D)
            rows = k == j
            x[rows] += eps[rows] @ scale_tril[j].T
        return x.reshape(n, *self.config.data.shape)


def broadcast_from_first_process(module: nn.Module) -> None:
    """Copy the parameters and buffers of process 0 to every process of a distributed run
    (data-parallel processes must start from the same weights); nothing without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for tensor in [*module.parameters(), *module.buffers()]:
            torch.distributed.broadcast(tensor.data, src=0)
