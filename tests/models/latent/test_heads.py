"""Observation heads: normalised over their support, samples in it, the right head for the data."""

from __future__ import annotations

import itertools

import pytest
import torch

from dgm.data.info import DataInfo
from dgm.errors import DataError
from dgm.models.discrete import discretized_logistic_log_prob
from dgm.models.heads import (
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    LogisticMixtureHead,
    head_name,
    make_head,
)


@pytest.mark.parametrize("levels", [2, 5, 256])
def test_discretized_logistic_sums_to_one_over_the_levels(levels):
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(7, 1, generator=g, dtype=torch.float64)
    log_scale = torch.tensor([-8.0, -4.0, -2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64).unsqueeze(1)
    x = torch.arange(levels, dtype=torch.float64).unsqueeze(0)
    p = discretized_logistic_log_prob(x, mean, log_scale, levels).exp()  # (7, L)
    assert torch.allclose(p.sum(1), torch.ones(7, dtype=torch.float64), atol=1e-4)


def test_a_sharp_discretized_logistic_puts_its_mass_on_the_nearest_level():
    levels = 17
    mean = torch.tensor([[2 * 5 / 16 - 1]])  # the centre of level 5
    log_p = discretized_logistic_log_prob(
        torch.arange(levels).float().unsqueeze(0), mean, torch.tensor([[-7.0]]), levels
    )
    assert log_p.argmax().item() == 5 and log_p[0, 5].exp() > 0.99


@pytest.mark.parametrize(
    "head, levels",
    [(BernoulliHead(), 2), (CategoricalHead(3), 3), (LogisticMixtureHead(4, mixtures=2), 4)],
)
def test_discrete_heads_sum_to_one_over_a_small_space(head, levels):
    dim = 3
    g = torch.Generator().manual_seed(1)
    params = 2 * torch.randn(1, dim, head.params_per_dim, generator=g, dtype=torch.float64)
    space = torch.tensor(list(itertools.product(range(levels), repeat=dim)), dtype=torch.float64)  # (L^D, D)
    log_p = head.log_prob(params.expand(len(space), -1, -1), space)
    assert torch.allclose(torch.logsumexp(log_p, 0), torch.zeros((), dtype=torch.float64), atol=1e-5)
    x = head.sample(params.expand(500, -1, -1), torch.Generator().manual_seed(2))
    assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= levels - 1
    mean = head.mean(params)
    expected = (log_p.exp().unsqueeze(1) * space).sum(0)  # E[x] from the probabilities
    if not isinstance(head, LogisticMixtureHead):  # its mean is the continuous mixture's, documented
        assert torch.allclose(mean[0], expected, atol=1e-6)


@pytest.mark.parametrize("sigma", [None, 0.5])
def test_the_gaussian_head_integrates_to_one(sigma):
    head = GaussianHead(1, sigma).double()
    if sigma is None:
        with torch.no_grad():
            head.log_sigma.fill_(-0.7)
    grid = torch.linspace(-10, 10, 20001, dtype=torch.float64).unsqueeze(1)
    params = torch.full((len(grid), 1, 1), 0.3, dtype=torch.float64)
    density = head.log_prob(params, grid).exp()
    assert torch.allclose(torch.trapezoid(density, grid[:, 0]), torch.ones((), dtype=torch.float64), atol=1e-6)


def test_auto_heads_follow_the_data_and_wrong_ones_name_the_fix():
    assert head_name(DataInfo((4,), "binary", 2)) == "bernoulli"
    assert head_name(DataInfo((4,), "discrete", 17)) == "categorical"
    assert head_name(DataInfo((4,), "discrete", 256)) == "logistic"
    assert head_name(DataInfo((4,), "continuous")) == "gaussian"
    assert make_head(DataInfo((3, 16, 16), "discrete", 256)).params_per_dim == 9  # not 256 logits
    with pytest.raises(DataError, match="--transform binarize"):
        make_head(DataInfo((4,), "discrete", 17), "bernoulli")
    with pytest.raises(DataError, match="dequantize"):
        make_head(DataInfo((4,), "discrete", 17), "gaussian")
