"""Sample-quality metrics against closed forms and on sets with known overlap."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.errors import DgmError
from dgm.eval.sample_quality import (
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
)


def gaussian(n, dim, seed, mean=0.0, std=1.0):
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(n, dim, generator=g, dtype=torch.float64)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = gaussian(500, 8, 0) @ torch.randn(8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_between_gaussians():
    # N(0, I) vs N(m, s^2 I) in d dims: FD = |m|^2 d + d (1 - s)^2, up to sampling error.
    d, n = 4, 200_000
    real, fake = gaussian(n, d, 0), gaussian(n, d, 1, mean=0.5, std=2.0)
    expected = d * 0.5**2 + d * (1 - 2.0) ** 2
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_grows_with_the_shift():
    real = gaussian(2000, 6, 0)
    values = [frechet_distance(real, gaussian(2000, 6, 1, mean=m)) for m in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.1 < values[-1]


def test_kid_of_two_samples_of_one_distribution_is_zero_on_average_and_positive_under_a_shift():
    g = torch.Generator().manual_seed(0)
    mean, std = kernel_inception_distance(gaussian(2000, 16, 0), gaussian(2000, 16, 1), 50, 200, g)
    assert abs(mean) < 3 * std / math.sqrt(50)
    shifted, _ = kernel_inception_distance(gaussian(2000, 16, 0), gaussian(2000, 16, 2, mean=0.5), 50, 200, g)
    assert shifted > 10 * std / math.sqrt(50)


def test_unbiased_mmd_can_be_negative_but_is_exactly_zero_in_expectation():
    vals = torch.stack([mmd2_unbiased(gaussian(50, 3, 2 * s), gaussian(50, 3, 2 * s + 1)) for s in range(200)])
    assert (vals < 0).any()  # unbiasedness shows as negative values
    assert abs(float(vals.mean())) < 3 * float(vals.std()) / math.sqrt(200)


def clusters(n_per, centres, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([c + 0.1 * torch.randn(n_per, 2, generator=g, dtype=torch.float64) for c in centres])


CENTRES = [
    torch.tensor([4.0 * math.cos(a), 4.0 * math.sin(a)], dtype=torch.float64)
    for a in (2 * math.pi * k / 8 for k in range(8))
]


def test_identical_distributions_give_high_precision_recall_and_coverage():
    real, fake = clusters(200, CENTRES, 0), clusters(200, CENTRES, 1)
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr["precision"] > 0.9 and pr["recall"] > 0.9
    assert dc["coverage"] > 0.9 and 0.8 < dc["density"] < 1.2


def test_dropping_half_the_modes_lowers_recall_and_coverage_but_not_precision():
    real, fake = clusters(200, CENTRES, 0), clusters(400, CENTRES[:4], 1)
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr["precision"] > 0.9
    assert 0.4 < pr["recall"] < 0.6 and 0.4 < dc["coverage"] < 0.6


def test_samples_off_the_data_have_low_precision_and_density():
    real, fake = clusters(200, CENTRES, 0), gaussian(800, 2, 3, std=0.5)  # a blob at the centre
    assert precision_recall(real, fake)["precision"] < 0.05
    assert density_coverage(real, fake)["density"] < 0.05


def test_bad_feature_arrays_are_refused():
    with pytest.raises(DgmError, match="features must be"):
        frechet_distance(torch.zeros(5), torch.zeros(5))
    with pytest.raises(DgmError, match="need more than 3 points"):
        precision_recall(torch.zeros(10, 2), torch.zeros(3, 2), k=3)


def test_manifold_radii_are_the_distance_to_the_kth_other_point():
    # Real points at x = 0..9 on a line: the 3rd neighbour of x = 0 is at distance 3, so a fake
    # point at x = -2.5 is inside its ball and one at x = -3.5 is not.
    real = torch.stack([torch.arange(10.0), torch.zeros(10)], dim=1)
    near, far = torch.tensor([[-2.5, 0.0]]).repeat(5, 1), torch.tensor([[-3.5, 0.0]]).repeat(5, 1)
    assert precision_recall(real, near, k=3)["precision"] == 1.0
    assert precision_recall(real, far, k=3)["precision"] == 0.0
    # density: x = -2.5 lies only in the ball of x = 0 (k = 3), so density = 1 / k
    assert density_coverage(real, near, k=3)["density"] == pytest.approx(1 / 3)
    assert density_coverage(real, near, k=3)["coverage"] == pytest.approx(1 / 10)
