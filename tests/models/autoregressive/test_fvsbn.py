"""FVSBN: parameter count, autoregressive property, normalisation, sampling, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dgm
from dgm import rng
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.fvsbn import FVSBN, FVSBNConfig

BINARY = DataInfo((5,), "binary")
LABELLED = DataInfo((4,), "binary", num_classes=3)


def perturbed(config: FVSBNConfig, seed: int = 0, scale: float = 1.0) -> FVSBN:
    """An FVSBN with every parameter redrawn at random (it starts at zero otherwise)."""
    model = FVSBN(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return model


def every_x(info: DataInfo) -> torch.Tensor:
    """All 2**D binary configurations, (2**D, *shape)."""
    rows = list(itertools.product(range(2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float32).view(-1, *info.shape)


@pytest.mark.parametrize("dim", [1, 5, 30])
def test_parameter_count_is_d_times_d_plus_one_over_two(dim):
    model = FVSBN(FVSBNConfig(data=DataInfo((dim,), "binary")))
    assert sum(p.numel() for p in model.parameters()) == dim * (dim + 1) // 2


def test_weight_matrix_is_strictly_lower_triangular_and_output_d_ignores_later_inputs():
    info = DataInfo((2, 3), "binary")
    model = perturbed(FVSBNConfig(data=info))
    w = model.weight_matrix()
    assert torch.equal(w, torch.tril(w, diagonal=-1)) and (torch.tril(w, diagonal=-1) != 0).sum() == 15
    x = torch.rand(6)
    jac = torch.autograd.functional.jacobian(lambda v: model.logits(v.view(1, 2, 3))[0], x)  # (D, D)
    later_or_same = torch.ones(6, 6, dtype=torch.bool).triu()
    assert torch.all(jac[later_or_same] == 0) and torch.all(jac[~later_or_same] != 0)


def test_probabilities_sum_to_one():
    model = perturbed(FVSBNConfig(data=BINARY))
    assert abs(model.log_prob(every_x(BINARY)).exp().sum().item() - 1.0) < 1e-5


def test_conditional_probabilities_sum_to_one_and_depend_on_the_label():
    model = perturbed(FVSBNConfig(data=LABELLED, conditional=True))
    x = every_x(LABELLED)
    totals = [model.log_prob(x, torch.full((len(x),), c)).exp().sum().item() for c in range(3)]
    assert totals == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert not torch.allclose(model.log_prob(x, torch.zeros(len(x))), model.log_prob(x, torch.ones(len(x))))
    assert model.sample(4, cond=torch.tensor([0, 1, 2, 0])).shape == (4, 4)
    with pytest.raises(ConfigError):
        model.sample(4)


def test_sampling_is_reproducible_and_matches_log_prob():
    info = DataInfo((3,), "binary")
    model = perturbed(FVSBNConfig(data=info), seed=3)
    n = 20000
    a = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, model.sample(n, generator=torch.Generator().manual_seed(0)))
    index = (a.long() * torch.tensor([4, 2, 1])).sum(1)
    counts = torch.bincount(index, minlength=8).double()
    expected = n * model.log_prob(every_x(info)).exp().double()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 8 + 6 * math.sqrt(16), chi2


def old_sampler(model: FVSBN, n: int, cond, generator) -> torch.Tensor:
    """FVSBN's sampler before temperature and caching: T = 1 must still draw these samples."""
    w, b = model.weight_matrix(), model._bias(cond, n)
    x = torch.zeros_like(b)
    for d in range(x.shape[1]):
        x[:, d] = rng.bernoulli(torch.sigmoid(b[:, d] + x @ w[d]), generator)
    return x


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.0])
def test_cached_and_naive_sampling_draw_the_same_examples_and_their_log_prob(conditional, temperature):
    info = DataInfo((2, 4), "binary", num_classes=3)
    model = perturbed(FVSBNConfig(data=info, conditional=conditional), seed=1, scale=1.5).double()
    cond = torch.arange(12) % 3 if conditional else None
    fast, fast_lp = model.sample_and_log_prob(12, cond, torch.Generator().manual_seed(3), temperature, cached=True)
    slow, slow_lp = model.sample_and_log_prob(12, cond, torch.Generator().manual_seed(3), temperature, cached=False)
    assert torch.equal(fast, slow) and fast.shape == (12, 2, 4)
    assert torch.allclose(fast_lp, model.log_prob(fast, cond), atol=1e-10) and torch.allclose(fast_lp, slow_lp)
    if temperature == 1.0:
        with torch.no_grad():
            reference = old_sampler(model, 12, model.check_cond(cond, 12), torch.Generator().manual_seed(3))
        assert torch.equal(fast.view(12, -1), reference)


def test_temperature_zero_is_greedy_and_low_temperatures_are_likelier():
    model = perturbed(FVSBNConfig(data=BINARY), seed=2, scale=1.5)
    a = model.sample(3, generator=torch.Generator().manual_seed(0), temperature=0.0)
    x = torch.zeros(1, 5)
    for d in range(5):
        x[0, d] = float(model.logits(x)[0, d] > 0)
    assert torch.equal(a, x.expand(3, 5))
    cool = model.sample_and_log_prob(400, generator=torch.Generator().manual_seed(0), temperature=0.3)[1]
    warm = model.sample_and_log_prob(400, generator=torch.Generator().manual_seed(0))[1]
    assert cool.mean() > warm.mean() + 0.3
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=-1.0)


@pytest.mark.parametrize("cached", [True, False])
def test_completion_keeps_the_kept_pixels_and_conditions_on_them(cached):
    info = DataInfo((2,), "binary")
    model = perturbed(FVSBNConfig(data=info), seed=0, scale=2.0)
    n = 20000
    out = model.complete(torch.ones(n, 2), torch.tensor([True, False]), generator=torch.Generator().manual_seed(0))
    assert torch.all(out[:, 0] == 1)
    p = torch.sigmoid(model.logits(torch.ones(1, 2))[0, 1]).item()  # p(x_2 = 1 | x_1 = 1)
    assert abs(out[:, 1].mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    x = (torch.rand(6, 5) < 0.5).float()
    keep = torch.rand(6, 5) < 0.5
    out = model.__class__(FVSBNConfig(data=BINARY)).complete(x, keep, cached=cached)
    assert torch.equal(out[keep], x[keep])


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="binarize"):
        dgm.build("fvsbn", data=DataInfo((4,), "discrete", levels=17))
    with pytest.raises(DataError, match="--transform binarize"):  # 8-bit images too
        dgm.build("fvsbn", data=DataInfo((1, 28, 28), "discrete", levels=256))
    model = FVSBN(FVSBNConfig(data=BINARY))
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(3, 1, 5))


def test_fvsbn_learns_a_markov_chain():
    gen = torch.Generator().manual_seed(0)
    n, dim = 2000, 8
    x = torch.zeros(n, dim)
    x[:, 0] = (torch.rand(n, generator=gen) < 0.5).float()
    for k in range(1, dim):
        x[:, k] = (x[:, k - 1] + (torch.rand(n, generator=gen) < 0.1).float()) % 2
    model = FVSBN(FVSBNConfig(data=DataInfo((dim,), "binary")))
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    for step in range(300):
        loss = model.loss(x[(step * 100) % n :][:100])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    nll = model.loss(x)["loss"].item()
    truth = math.log(2) + 7 * -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert nll < truth + 0.1 < dim * math.log(2) - 2.0
