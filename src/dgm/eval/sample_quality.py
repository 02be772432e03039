"""Sample-quality metrics computed between two sets of feature vectors (real and generated).

All functions take ``real`` (N, F) and ``fake`` (M, F) features and work in float64. They are
feature-space agnostic: dgm evaluates them in the features of a small digit classifier and
names the result after that space (e.g. "FD-digits"), never "FID".
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm.errors import DgmError


def _as64(x) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise DgmError(f"features must be a (N, F) array with N >= 2, got shape {tuple(x.shape)}")
    return x


def frechet_distance(real, fake) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017):

        FD = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2}).

    Tr((S_r S_f)^{1/2}) is computed as the sum of square roots of the eigenvalues of the
    symmetric matrix S_r^{1/2} S_f S_r^{1/2}, which has the same spectrum as S_r S_f.
    """
    real, fake = _as64(real), _as64(fake)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    s_r, s_f = torch.cov(real.T).reshape(real.shape[1], -1), torch.cov(fake.T).reshape(fake.shape[1], -1)
    evals, evecs = torch.linalg.eigh(s_r)
    sqrt_r = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    middle = sqrt_r @ s_f @ sqrt_r
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu_r - mu_f).pow(2).sum() + torch.trace(s_r) + torch.trace(s_f) - 2 * tr_sqrt
    return float(fd.clamp(min=0))


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (x·y / F + 1)^3, the kernel of KID (Bińkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor, kernel=polynomial_kernel) -> Tensor:
    """Unbiased estimate of MMD^2 between the samples x (m, F) and y (n, F):

    1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum k(x_i, y_j).
    """
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    sum_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    sum_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return sum_xx + sum_yy - 2 * k_xy.mean()


def kernel_inception_distance(
    real, fake, subsets: int = 100, subset_size: int = 1000, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """KID: the unbiased polynomial-kernel MMD^2 averaged over random subsets (Bińkowski et al. 2018).

    Returns (mean, standard deviation over subsets). Subsets hold min(subset_size, N, M) points.
    """
    real, fake = _as64(real), _as64(fake)
    size = min(subset_size, real.shape[0], fake.shape[0])
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(real.shape[0], generator=generator)[:size]]
        f = fake[torch.randperm(fake.shape[0], generator=generator)[:size]]
        values.append(mmd2_unbiased(r, f))
    values = torch.stack(values)
    return float(values.mean()), float(values.std()) if subsets > 1 else 0.0


def _kth_neighbour_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each point of x to its k-th nearest neighbour in x (itself excluded)."""
    if x.shape[0] <= k:
        raise DgmError(f"k-NN radii with k = {k} need more than {k} points, got {x.shape[0]}")
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (distance 0)


def precision_recall(real, fake, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    precision: fraction of fake points inside the real manifold (the union of balls around real
    points with radius the distance to their k-th real neighbour); recall: fraction of real points
    inside the fake manifold.
    """
    real, fake = _as64(real), _as64(fake)
    r_real, r_fake = _kth_neighbour_radii(real, k), _kth_neighbour_radii(fake, k)
    d = torch.cdist(fake, real)  # (M, N)
    precision = (d <= r_real[None, :]).any(dim=1).double().mean()
    recall = (d.T <= r_fake[None, :]).any(dim=1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real, fake, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), with real-sample k-NN balls:

    density  = 1/(k M) sum_j sum_i 1[d(f_j, r_i) <= rad_k(r_i)]
    coverage = 1/N sum_i 1[min_j d(r_i, f_j) <= rad_k(r_i)]
    """
    real, fake = _as64(real), _as64(fake)
    radii = _kth_neighbour_radii(real, k)
    inside = torch.cdist(fake, real) <= radii[None, :]  # (M, N)
    density = inside.double().sum() / (k * fake.shape[0])
    coverage = inside.any(dim=0).double().mean()
    return {"density": float(density), "coverage": float(coverage)}
