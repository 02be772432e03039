"""Toy 2-D targets: moments, normalisation, entropies and split draws."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.data import get_target, load_dataset
from dgm.data.targets import TARGETS
from dgm.errors import DataError

DENSITY = ["gmm8", "grid25", "checkerboard", "rings"]


def _checkerboard_cov() -> torch.Tensor:
    centres = torch.tensor([(-3 + 2 * i, -3 + 2 * j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
    second = centres.double().T @ centres.double() / 8  # E[c c^T] over black squares
    return second + torch.eye(2, dtype=torch.float64) / 3  # + variance of U[0, 2) per axis


# Mean 0 for all; covariance from the recipes: sigma^2 I + mean of mu mu^T for mixtures.
COVARIANCE = {
    "gmm8": (0.25 + 16 / 2) * torch.eye(2, dtype=torch.float64),
    "grid25": (0.05**2 + 8.0) * torch.eye(2, dtype=torch.float64),
    "checkerboard": _checkerboard_cov(),
    "rings": ((1 + 4 + 9 + 16) / 4 + 0.15**2) / 2 * torch.eye(2, dtype=torch.float64),
}


@pytest.fixture(scope="module")
def draws() -> dict[str, torch.Tensor]:
    return {name: get_target(name).sample(200_000, torch.Generator().manual_seed(7)) for name in TARGETS}


@pytest.mark.parametrize("name", DENSITY)
def test_sample_moments_match_formulas(name, draws):
    x = draws[name].double()
    assert x.shape == (200_000, 2)
    cov = torch.cov(x.T)
    se = math.sqrt(2 / len(x)) * float(COVARIANCE[name].diagonal().max())
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=5 * math.sqrt(float(cov.max()) / len(x)))
    assert torch.allclose(cov, COVARIANCE[name], atol=6 * se)


@pytest.mark.parametrize(
    ("name", "half_width", "h"),
    [("gmm8", 7.0, 0.05), ("grid25", 4.4, 0.0125), ("checkerboard", 4.5, 0.05), ("rings", 5.0, 0.02)],
)
def test_log_prob_integrates_to_one(name, half_width, h):
    m = round(2 * half_width / h)
    axis = -half_width + h * (torch.arange(m, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(axis, axis)
    lp = get_target(name).log_prob(grid)
    assert lp.dtype == torch.float64 and lp.shape == (m * m,)
    total = float(lp.exp().sum()) * h * h
    assert abs(total - 1) < 1e-2


def test_checkerboard_entropy_is_log_32():
    t = get_target("checkerboard")
    assert t.entropy() == pytest.approx(math.log(32), abs=1e-12)
    assert "closed form" in t.entropy_method
    outside = torch.tensor([[-3.0, -1.0], [5.0, 0.0], [-4.0, -4.01]])  # white, off-board
    inside = torch.tensor([[-3.0, -3.0], [1.5, 0.5]])
    assert torch.isinf(t.log_prob(outside)).all()
    assert torch.allclose(t.log_prob(inside), torch.full((2,), -math.log(32), dtype=torch.float64))


@pytest.mark.parametrize("name", DENSITY)
def test_entropy_matches_monte_carlo(name, draws):
    t = get_target(name)
    lp = t.log_prob(draws[name])
    mc, se = float(-lp.mean()), float(lp.std()) / math.sqrt(len(lp))
    assert abs(t.entropy() - mc) < 5 * se + 1e-9
    assert "error" in t.entropy_method or "exact" in t.entropy_method


def test_gmm8_entropy_close_to_separated_limit():
    # Nearly separated components: H ~ log 8 + log(2 pi e sigma^2), a little less due to overlap.
    limit = math.log(8) + math.log(2 * math.pi * math.e * 0.25)
    assert limit - 0.02 < get_target("gmm8").entropy() < limit


@pytest.mark.parametrize("name", ["moons", "spirals"])
def test_no_density_targets(name, draws):
    t = get_target(name)
    assert not t.has_density
    x = draws[name]
    assert x.dtype == torch.float32 and x.abs().max() < 6
    with pytest.raises(DataError, match="no analytic density"):
        t.log_prob(x[:5])
    with pytest.raises(DataError, match="no analytic density"):
        t.entropy()


def test_sampling_is_reproducible_with_generator():
    t = get_target("rings")
    a = t.sample(100, torch.Generator().manual_seed(3))
    b = t.sample(100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert (a.norm(dim=1) > 0).all()


def test_toy2d_dataset_sizes_and_target():
    ds = load_dataset("toy2d:gmm8?n=5000&n_val=100&n_test=300")
    assert [ds.split(s).n for s in ("train", "val", "test")] == [5000, 100, 300]
    assert ds.split("train").y is None and ds.info.num_classes == 0
    assert ds.target is not None and ds.target.name == "gmm8"
    assert load_dataset("digits").target is None
    default = load_dataset("toy2d:moons")
    assert [default.split(s).n for s in ("train", "val", "test")] == [20000, 2000, 20000]
    assert not torch.equal(default.split("train").x[:2000], default.split("val").x)


def test_log_prob_rejects_wrong_shape():
    with pytest.raises(DataError, match=r"shape \(N, 2\)"):
        get_target("gmm8").log_prob(torch.zeros(3, 3))
