"""The independent (fully factorised) baseline."""

from __future__ import annotations

import itertools

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.baseline.independent import Independent, IndependentConfig


def perturbed(info: DataInfo, conditional: bool = False) -> Independent:
    model = Independent(IndependentConfig(data=info, conditional=conditional))
    with torch.no_grad():
        model.table.copy_(torch.randn(model.table.shape, generator=torch.Generator().manual_seed(0)))
    return model


def every_x(info: DataInfo) -> torch.Tensor:
    rows = list(itertools.product(range(info.levels or 2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float32).view(-1, *info.shape)


@pytest.mark.parametrize(
    "info",
    [DataInfo((2, 2), "binary"), DataInfo((3,), "discrete", levels=3), DataInfo((3,), "binary", num_classes=2)],
)
def test_probabilities_sum_to_one(info):
    conditional = info.num_classes > 0
    model = perturbed(info, conditional)
    x = every_x(info)
    for label in range(max(info.num_classes, 1)):
        cond = torch.full((len(x),), label) if conditional else None
        assert abs(model.log_prob(x, cond).exp().sum().item() - 1.0) < 1e-5


def test_log_prob_is_the_sum_of_the_marginals():
    model = perturbed(DataInfo((3,), "binary"))
    p = torch.sigmoid(model.table[0])
    x = torch.tensor([[1.0, 0.0, 1.0]])
    expected = torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(p[2])
    assert model.log_prob(x).item() == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("info", [DataInfo((4,), "binary"), DataInfo((2,), "discrete", levels=5)])
def test_samples_are_reproducible_and_follow_the_marginals(info):
    model = perturbed(info)
    n = 20000
    x = model.sample(n, generator=torch.Generator().manual_seed(1))
    assert x.shape == (n, *info.shape)
    assert torch.equal(x, model.sample(n, generator=torch.Generator().manual_seed(1)))
    probs = torch.sigmoid(model.table[0]) if info.support == "binary" else torch.softmax(model.table[0], -1)
    freq = x.mean(0) if info.support == "binary" else torch.nn.functional.one_hot(x.long(), info.levels).float().mean(0)
    assert torch.allclose(freq, probs, atol=0.02)


def fit_full_batch(model, x, steps: int, lr: float = 0.05) -> None:
    """Maximum likelihood by Adam on the whole of ``x``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model.loss(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_training_reaches_the_empirical_frequencies():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(1000, 3, generator=gen) < torch.tensor([0.2, 0.5, 0.9])).float()
    model = dgm.build("independent", data=DataInfo((3,), "binary"))
    fit_full_batch(model, x, steps=300)
    assert torch.allclose(torch.sigmoid(model.table[0]), x.mean(0), atol=0.01)


def test_conditional_tables_and_errors():
    info = DataInfo((3,), "binary", num_classes=2)
    model = perturbed(info, conditional=True)
    x = every_x(info)
    assert not torch.allclose(model.log_prob(x, torch.zeros(8)), model.log_prob(x, torch.ones(8)))
    assert model.sample(3, cond=torch.tensor([0, 1, 1])).shape == (3, 3)
    with pytest.raises(ConfigError):
        model.log_prob(x)
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(DataError, match="levels"):
        Independent(IndependentConfig(data=DataInfo((3,), "discrete")))


def test_gaussian_density_on_continuous_data_matches_torch_distributions():
    model = perturbed(DataInfo((2, 3), "continuous"))
    mean, log_std = model.table[0].unbind(-1)
    x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(1))
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(x.view(5, -1)).sum(-1)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-5)
    draws = model.sample(20000, generator=torch.Generator().manual_seed(2)).view(20000, -1)
    assert torch.allclose(draws.mean(0), mean, atol=0.1 * log_std.exp().max().item())
    assert torch.allclose(draws.std(0).log(), log_std, atol=0.03)


def test_gaussian_training_reaches_the_sample_mean_and_standard_deviation():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, generator=gen) * torch.tensor([0.5, 2.0]) + torch.tensor([1.0, -3.0])
    model = dgm.build("independent", data=DataInfo((2,), "continuous"))
    fit_full_batch(model, x, steps=600)
    mean, log_std = model.table[0].detach().unbind(-1)
    assert torch.allclose(mean, x.mean(0), atol=0.02)
    assert torch.allclose(log_std.exp(), x.std(0), rtol=0.02)
