"""What every model of the autoregressive family gives, checked on each at a tiny size: cached
and naive sampling draw the same examples, the log-probability accumulated while sampling is
log_prob of the sample, temperature 0 is deterministic, completion keeps the given elements,
and log-probabilities over every configuration of a tiny space sum to 1."""

from __future__ import annotations

import itertools

import pytest
import torch
from tests.models.test_conformance import TINY, info_for

import dgm
from dgm.data.info import DataInfo
from dgm.models.autoregressive.base import AutoregressiveModel
from dgm.registry import get

FAMILY = sorted(row["name"] for row in dgm.list_models() if row["family"] == "autoregressive")


def tiny(name: str, info: DataInfo, conditional: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    model = dgm.build(name, data=info, conditional=conditional, **TINY.get(name, {})).double().eval()
    with torch.no_grad():  # random, non-identity parameters
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def family_infos(name: str):
    """A binary and (if taken) a 3-level space for ``name``, with 3 classes."""
    cls = get(name)
    out = []
    for support, levels in (("binary", 2), ("discrete", 3)):
        if support in cls.supports:
            out.append(info_for(name, DataInfo((1, 2, 3), support, levels, num_classes=3)))
    return out


CASES = [(name, info) for name in FAMILY for info in family_infos(name)]
IDS = [f"{name}-{info.support}" for name, info in CASES]


def test_every_model_of_the_family_is_an_autoregressive_model():
    assert FAMILY and all(issubclass(get(name), AutoregressiveModel) for name in FAMILY)
    assert all(get(name).has_temperature for name in FAMILY)


@pytest.mark.parametrize(("name", "info"), CASES, ids=IDS)
@pytest.mark.parametrize("conditional", [False, True])
def test_cached_and_naive_sampling_draw_the_same_examples(name, info, conditional):
    if conditional and not get(name).can_condition:
        pytest.skip("no conditional version")
    model = tiny(name, info, conditional)
    cond = torch.tensor([0, 1, 2, 1, 0, 2]) if conditional else None
    for temperature in (1.0, 0.7):
        fast = model.sample(6, cond, torch.Generator().manual_seed(5), temperature=temperature, cached=True)
        slow = model.sample(6, cond, torch.Generator().manual_seed(5), temperature=temperature, cached=False)
        assert torch.equal(fast, slow)


@pytest.mark.parametrize(("name", "info"), CASES, ids=IDS)
def test_log_prob_accumulated_while_sampling_is_log_prob_of_the_sample(name, info):
    model = tiny(name, info)
    x, log_p = model.sample_and_log_prob(16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(log_p, model.log_prob(x), atol=1e-8)


@pytest.mark.parametrize(("name", "info"), CASES, ids=IDS)
def test_temperature_zero_is_deterministic_and_differs_from_sampling(name, info):
    model = tiny(name, info)
    a = model.sample(8, generator=torch.Generator().manual_seed(1), temperature=0.0)
    b = model.sample(8, generator=torch.Generator().manual_seed(2), temperature=0.0)
    assert torch.equal(a, b)
    with pytest.raises(dgm.ConfigError, match="temperature"):
        model.sample(2, temperature=-1.0)


@pytest.mark.parametrize(("name", "info"), CASES, ids=IDS)
def test_completion_keeps_the_given_elements(name, info):
    model = tiny(name, info)
    x = torch.randint(0, info.levels, (5, *info.shape)).double()
    keep = torch.zeros(info.shape, dtype=torch.bool).view(-1)
    keep[: keep.numel() // 2] = True
    keep = keep.view(info.shape)
    out = model.complete(x, keep, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, keep], x[:, keep])
    assert set(out.unique().tolist()) <= set(range(info.levels))


@pytest.mark.parametrize(("name", "info"), CASES, ids=IDS)
def test_probabilities_of_every_configuration_sum_to_one(name, info):
    model = tiny(name, info)
    every = torch.tensor(list(itertools.product(range(info.levels), repeat=info.dim)), dtype=torch.float64)
    total = torch.logsumexp(model.log_prob(every.view(-1, *info.shape)), 0)
    assert abs(total.item()) < 1e-9
