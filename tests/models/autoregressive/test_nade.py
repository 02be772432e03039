"""NADE: the autoregressive property, the hand-written backward, normalisation, sampling
(cached == naive, accumulated log-prob, temperature, completion), conditioning, errors, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive import nade as nade_module
from dgm.models.autoregressive.nade import NADE, NADEConfig, nade_params
from dgm.models.heads import BernoulliHead, CategoricalHead, LogisticMixtureHead

BINARY = DataInfo((5,), "binary", 2)
TERNARY = DataInfo((3,), "discrete", 3)
LABELLED = DataInfo((4,), "binary", 2, num_classes=3)
EIGHT_BIT = DataInfo((2,), "discrete", 256)


def perturbed(info: DataInfo, seed: int = 0, scale: float = 0.7, **overrides) -> NADE:
    """A small NADE in float64 with every parameter redrawn at random."""
    model = NADE(NADEConfig(**{"data": info, "hidden": 6, **overrides})).double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def every_x(info: DataInfo) -> torch.Tensor:
    """All configurations of the data, (levels**D, *shape), float64."""
    rows = list(itertools.product(range(info.levels or 2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *info.shape)


def positions(model: NADE) -> torch.Tensor:
    """Position of every dimension in the model's ordering."""
    return torch.argsort(model.order)


# ----- the pass ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["natural", "random"])
@pytest.mark.parametrize(
    "info", [DataInfo((1, 2, 3), "binary", 2), DataInfo((6,), "discrete", 4), DataInfo((5,), "discrete", 256)]
)
def test_output_d_depends_on_every_earlier_input_and_on_no_later_one(order, info):
    model = perturbed(info, order=order, order_seed=3)
    dim = info.dim
    x = torch.rand(dim, dtype=torch.float64) * ((info.levels or 2) - 1)
    jac = torch.autograd.functional.jacobian(lambda v: model.params(v.view(1, *info.shape))[0], x)  # (D, P, D)
    depends = jac.abs().sum(1) > 0  # (D, D): output d depends on input j
    pos = positions(model)
    later_or_same = pos[None, :] >= pos[:, None]
    assert not depends[later_or_same].any()
    assert depends[~later_or_same].all()  # W is dense: every earlier input reaches h_d


def test_hand_written_backward_matches_finite_differences_with_chunks(monkeypatch):
    monkeypatch.setattr(nade_module, "CHUNK_ELEMENTS", 24)  # chunks of 2 positions for B = 3, H = 4
    assert nade_module.position_chunks(7, 3, 4) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 3), (3, 4), (7, 4), (7, 2, 4), (7, 2)]  # inputs, c, W, V, b
    args = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(nade_params, args)
    with torch.no_grad():  # the pass without gradients gives the same
        assert torch.allclose(nade_params(*args), nade_module._NADEPass.apply(*args))


def test_log_prob_does_not_depend_on_the_chunk_size(monkeypatch):
    model = perturbed(DataInfo((1, 3, 3), "discrete", 3), hidden=5)
    x = every_x(DataInfo((9,), "discrete", 3))[::97].view(-1, 1, 3, 3)
    whole = model.log_prob(x)
    monkeypatch.setattr(nade_module, "CHUNK_ELEMENTS", 1)  # sqrt(D) = 3 positions per chunk
    assert nade_module.position_chunks(9, 3, 5) == [(0, 3), (3, 6), (6, 9)]
    assert torch.allclose(model.log_prob(x), whole, atol=1e-12)


# ----- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "overrides"),
    [
        (BINARY, {}),
        (BINARY, {"order": "random", "order_seed": 2}),
        (TERNARY, {}),
        (TERNARY, {"order": "random"}),
        (DataInfo((2,), "discrete", 3), {"output": "logistic", "mixtures": 2}),
        (EIGHT_BIT, {}),  # the default head on 8-bit data: a logistic mixture, 65 536 configurations
    ],
)
def test_probabilities_of_every_configuration_sum_to_one(info, overrides):
    model = perturbed(info, scale=1.0, **overrides)
    total = torch.logsumexp(model.log_prob(every_x(info)), 0)
    assert abs(total.item()) < 1e-9


def test_conditional_probabilities_sum_to_one_per_label_and_depend_on_it():
    model = perturbed(LABELLED, conditional=True)
    x = every_x(LABELLED)
    log_p = [model.log_prob(x, torch.full((len(x),), c)) for c in range(3)]
    assert [abs(torch.logsumexp(lp, 0).item()) < 1e-9 for lp in log_p] == [True] * 3
    assert not torch.allclose(log_p[0], log_p[1])
    with pytest.raises(ConfigError):
        model.log_prob(x)
    with pytest.raises(ConfigError):
        model.sample(2)


# ----- sampling ---------------------------------------------------------------------------------


SAMPLING = [
    (DataInfo((1, 2, 3), "binary", 2), {}),
    (DataInfo((6,), "discrete", 3), {"order": "random", "order_seed": 1}),
    (DataInfo((3, 2, 2), "discrete", 256), {"mixtures": 2}),
    (DataInfo((4,), "binary", 2, num_classes=3), {"conditional": True}),
]
SAMPLING_IDS = ["binary", "ternary-random", "8-bit", "conditional"]


def cond_of(model: NADE, n: int):
    return torch.arange(n) % 3 if model.conditional else None


@pytest.mark.parametrize(("info", "overrides"), SAMPLING, ids=SAMPLING_IDS)
@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
def test_cached_and_naive_sampling_draw_the_same_examples(info, overrides, temperature):
    model = perturbed(info, seed=4, scale=1.5, **overrides)
    cond = cond_of(model, 12)
    args = (12, cond, torch.Generator().manual_seed(5), temperature)
    fast, fast_lp = model.sample_and_log_prob(*args, cached=True)
    args = (12, cond, torch.Generator().manual_seed(5), temperature)
    slow, slow_lp = model.sample_and_log_prob(*args, cached=False)
    assert torch.equal(fast, slow) and torch.allclose(fast_lp, slow_lp, atol=1e-10)
    assert fast.shape == (12, *info.shape) and torch.equal(fast, fast.round())
    assert fast.min() >= 0 and fast.max() <= info.levels - 1


@pytest.mark.parametrize(("info", "overrides"), SAMPLING, ids=SAMPLING_IDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_log_prob_accumulated_while_sampling_is_log_prob_of_the_sample(info, overrides, temperature):
    model = perturbed(info, seed=1, **overrides)
    cond = cond_of(model, 16)
    x, log_p = model.sample_and_log_prob(16, cond, torch.Generator().manual_seed(2), temperature)
    assert torch.allclose(log_p, model.log_prob(x, cond), atol=1e-10)


def test_temperature_sharpens_and_zero_takes_the_likeliest_value_per_step():
    model = perturbed(BINARY, seed=2, scale=1.5)
    n = 400
    log_p = {
        t: model.sample_and_log_prob(n, generator=torch.Generator().manual_seed(0), temperature=t)[1]
        for t in (1.0, 0.3)
    }
    assert log_p[0.3].mean() > log_p[1.0].mean() + 0.3
    a = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.0)
    b = model.sample(3, generator=torch.Generator().manual_seed(2), temperature=0.0)
    assert torch.equal(a, b) and torch.equal(a[0], a[1])
    x = torch.zeros(1, 5, dtype=torch.float64)  # greedy: each x_d the likelier value given the greedy x_<d
    for d in range(5):
        x[0, d] = float(model.params(x)[0, d, 0] > 0)
    assert torch.equal(a[0], x[0])
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=-0.5)


def test_sample_frequencies_match_log_prob():
    info = DataInfo((3,), "discrete", 3)
    model = perturbed(info, seed=3, scale=1.0, order="random").float()
    n = 20000
    x = model.sample(n, generator=torch.Generator().manual_seed(0))
    index = (x.long() * torch.tensor([9, 3, 1])).sum(1)
    counts = torch.bincount(index, minlength=27).double()
    expected = n * model.log_prob(every_x(info).float()).exp().double()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 27 + 6 * math.sqrt(2 * 27), chi2


@pytest.mark.parametrize("cached", [True, False])
def test_completion_keeps_the_kept_elements_and_conditions_on_them(cached):
    info = DataInfo((1, 2, 3), "discrete", 3)
    model = perturbed(info, seed=5, scale=1.5, order="random")
    x = torch.randint(0, 3, (8, *info.shape)).double()
    keep = torch.tensor([[[True, False, True], [False, True, False]]])
    out = model.complete(x, keep, generator=torch.Generator().manual_seed(0), cached=cached)
    assert torch.equal(out[:, keep], x[:, keep])
    assert not torch.equal(out, x) and set(out.unique().tolist()) <= {0.0, 1.0, 2.0}
    per_example = torch.rand(8, *info.shape) < 0.5
    out = model.complete(x, per_example, generator=torch.Generator().manual_seed(0), cached=cached)
    assert torch.equal(out[per_example], x[per_example])
    # the log-probability returned with a completion is log p of the completed example
    flat, keep_flat = x.view(8, -1), per_example.view(8, -1)
    done, log_p = model.generate(8, None, torch.Generator().manual_seed(0), 1.0, cached, given=flat, keep=keep_flat)
    assert torch.equal(done.view_as(out), out) and torch.allclose(log_p, model.log_prob(out), atol=1e-10)


def test_completion_of_a_kept_prefix_draws_from_the_conditional():
    """Keeping x_1 = 1 in a 2-dimensional binary NADE, x_2 is drawn from p(x_2 | x_1 = 1)."""
    info = DataInfo((2,), "binary", 2)
    model = perturbed(info, seed=6, scale=2.0).float()
    n = 20000
    x = torch.ones(n, 2)
    out = model.complete(x, torch.tensor([True, False]), generator=torch.Generator().manual_seed(0))
    p = torch.sigmoid(model.params(torch.ones(1, 2))[0, 1, 0]).item()
    assert abs(out[:, 1].mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)


# ----- heads, conditioning, errors --------------------------------------------------------------


def test_heads_follow_the_data_and_8_bit_data_gets_a_mixture_not_256_logits():
    assert isinstance(NADE(NADEConfig(BINARY, hidden=4)).head, BernoulliHead)
    assert isinstance(NADE(NADEConfig(TERNARY, hidden=4)).head, CategoricalHead)
    model = dgm.build("nade", data=DataInfo((1, 28, 28), "discrete", 256))
    assert isinstance(model.head, LogisticMixtureHead) and model.out_weight.shape == (784, 15, 500)
    assert sum(p.numel() for p in model.parameters()) < 7_000_000
    forced = NADE(NADEConfig(DataInfo((4,), "discrete", 256), hidden=4, output="categorical"))
    assert isinstance(forced.head, CategoricalHead) and forced.out_weight.shape == (4, 256, 4)


def test_parameter_count_is_2hd_plus_h_plus_d_on_binary_data():
    model = dgm.build("nade", data=DataInfo((1, 28, 28), "binary", 2))
    assert sum(p.numel() for p in model.parameters()) == 2 * 500 * 784 + 500 + 784
    conditional = dgm.build("nade", data=DataInfo((5,), "binary", 2, num_classes=4), hidden=3, conditional=True)
    assert sum(p.numel() for p in conditional.parameters()) == 2 * 3 * 5 + 3 + 5 + 4 * 3


def test_orderings_come_from_the_seed_and_survive_a_state_dict_round_trip():
    info = DataInfo((6,), "binary", 2)
    assert torch.equal(NADE(NADEConfig(info, hidden=3)).order, torch.arange(6))
    a = perturbed(info, order="random", order_seed=4)
    assert torch.equal(a.order, NADE(NADEConfig(info, hidden=6, order="random", order_seed=4)).order)
    assert not torch.equal(a.order, NADE(NADEConfig(info, hidden=6, order="random", order_seed=5)).order)
    copy = NADE(a.config).double()
    copy.load_state_dict(a.state_dict())
    x = every_x(info)
    assert torch.equal(copy.log_prob(x), a.log_prob(x))


@pytest.mark.parametrize(
    ("info", "overrides", "error", "match"),
    [
        (BINARY, {"hidden": 0}, ConfigError, "hidden"),
        (EIGHT_BIT, {"mixtures": 0}, ConfigError, "mixtures"),
        (BINARY, {"output": "gaussian"}, ConfigError, "output"),
        (TERNARY, {"output": "bernoulli"}, DataError, "--transform binarize"),
        (DataInfo((3,), "discrete", None), {}, DataError, "levels"),
        (DataInfo((3,), "continuous"), {}, DataError, "binary or discrete"),
        (BINARY, {"conditional": True}, DataError, "labelled"),
    ],
)
def test_bad_configs_and_data_are_refused_naming_the_problem(info, overrides, error, match):
    with pytest.raises(error, match=match):
        NADE(NADEConfig(info, **overrides))


def test_bad_input_is_refused():
    model = NADE(NADEConfig(BINARY, hidden=3))
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(2, 4))
    with pytest.raises(ConfigError):
        model.log_prob(torch.zeros(2, 5), cond=torch.zeros(2))
    with pytest.raises(DataError, match="keep"):
        model.complete(torch.zeros(2, 5), torch.ones(4, dtype=torch.bool))


# ----- learning ---------------------------------------------------------------------------------


def test_nade_learns_a_markov_chain():
    gen = torch.Generator().manual_seed(0)
    n, dim = 2000, 8
    x = torch.zeros(n, dim)
    x[:, 0] = (torch.rand(n, generator=gen) < 0.5).float()
    for k in range(1, dim):
        x[:, k] = (x[:, k - 1] + (torch.rand(n, generator=gen) < 0.1).float()) % 2
    torch.manual_seed(0)
    model = dgm.build("nade", data=DataInfo((dim,), "binary", 2), hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for step in range(60):
        loss = model.loss(x[(step * 500) % n :][:500])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = model.loss(x)["loss"].item()
    truth = math.log(2) + 7 * -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 2.97 nats
    assert nll < truth + 0.1
