"""FVSBN: parameter count, autoregressive property, normalisation, sampling, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dgm
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


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="binarize"):
        dgm.build("fvsbn", data=DataInfo((4,), "discrete", levels=17))
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
