"""MADE: masks, the autoregressive property, normalisation, sampling, conditioning, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dgm
from dgm.config import from_dict, to_dict
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.made import MADE, MADEConfig
from dgm.nn.masked import (
    MaskedLinear,
    hidden_mask,
    input_degrees,
    made_degrees,
    made_masks,
    output_mask,
)

BINARY = DataInfo((5,), "binary")
TERNARY = DataInfo((3,), "discrete", levels=3)
LABELLED = DataInfo((4,), "binary", num_classes=3)


def small(info: DataInfo, **overrides) -> MADEConfig:
    """A MADE config with one mask set unless ``overrides`` ask for more."""
    return MADEConfig(**{"data": info, "num_masks": 1, "order_agnostic": False, **overrides})


def perturbed(config: MADEConfig, seed: int = 0, scale: float = 0.7) -> MADE:
    """A MADE whose parameters are all redrawn at random (no zero or identity structure)."""
    model = MADE(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return model.eval()


def every_x(info: DataInfo) -> torch.Tensor:
    """All configurations of the data, (levels**D, *shape)."""
    levels = info.levels or 2
    rows = list(itertools.product(range(levels), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float32).view(-1, *info.shape)


def positions(model: MADE, k: int) -> torch.Tensor:
    """Position (0-based) of every dimension in the ordering of mask set k."""
    return input_degrees(model.orders[k]) - 1


# ----- masks ------------------------------------------------------------------------------------


def test_masked_linear_ignores_masked_inputs():
    layer = MaskedLinear(3, 2)
    layer.set_mask(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    x = torch.randn(4, 3)
    y = x.clone()
    y[:, 2] += 5.0  # change the input no output may see
    assert torch.allclose(layer(x), layer(y))
    y[:, 1] += 5.0
    assert torch.allclose(layer(x)[:, 0], layer(y)[:, 0]) and not torch.allclose(layer(x)[:, 1], layer(y)[:, 1])
    with pytest.raises(ValueError):
        layer.set_mask(torch.ones(3, 2))


def test_mask_functions_follow_the_degree_rules():
    order = torch.tensor([2, 0, 1])
    assert input_degrees(order).tolist() == [2, 3, 1]
    d_in, d_h = torch.tensor([1, 2, 3]), torch.tensor([1, 2])
    assert hidden_mask(d_in, d_h).tolist() == [[1, 0, 0], [1, 1, 0]]
    assert output_mask(d_h, d_in).tolist() == [[0, 0], [1, 0], [1, 1]]
    degrees = made_degrees(order, (7, 5), torch.Generator().manual_seed(1))
    assert [len(d) for d in degrees] == [3, 7, 5]
    assert all(1 <= int(d.min()) and int(d.max()) <= 2 for d in degrees[1:])
    # the product of the masks connects output d only to inputs strictly before d
    masks = made_masks(degrees)
    reach = masks[2].float() @ masks[1].float() @ masks[0].float()  # (D, D) number of paths
    deg = degrees[0]
    assert torch.all(reach[deg[:, None] <= deg[None, :]] == 0)


# ----- the autoregressive property --------------------------------------------------------------


@pytest.mark.parametrize("order", ["natural", "random"])
@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("info", [DataInfo((1, 2, 3), "binary"), DataInfo((6,), "discrete", levels=4)])
def test_output_d_ignores_inputs_at_or_after_d(order, direct, info):
    config = small(info, hidden=(16, 12, 10), order=order, direct=direct, num_masks=3, order_agnostic=True, mask_seed=3)
    model = perturbed(config)
    dim = info.dim
    x = torch.rand(1, *info.shape) * ((info.levels or 2) - 1)
    for k in range(config.num_masks):

        def logits(x_flat, k=k):
            return model.logits(x_flat.view(1, *info.shape), mask=k).reshape(dim, -1)  # (D, per_dim)

        jac = torch.autograd.functional.jacobian(logits, x.reshape(dim))  # (D, per_dim, D)
        depends = jac.abs().sum(1) > 0  # (D, D): output d depends on input j
        pos = positions(model, k)
        later_or_same = pos[None, :] >= pos[:, None]  # input j not before output d
        assert not depends[later_or_same].any(), f"mask set {k} leaks later inputs"
        if direct:  # the direct connections reach every earlier input
            assert depends[~later_or_same].all()
        else:
            assert depends.any()


def test_mask_sets_differ_and_are_rebuilt_from_the_seed():
    config = small(BINARY, hidden=(8,), num_masks=4, order_agnostic=True, mask_seed=5)
    a, b = MADE(config), MADE(config)
    assert torch.equal(a.orders, b.orders) and torch.equal(a.hidden_degrees, b.hidden_degrees)
    assert len({tuple(o) for o in a.orders.tolist()}) > 1
    other = MADE(small(BINARY, hidden=(8,), num_masks=4, order_agnostic=True, mask_seed=6))
    assert not torch.equal(a.hidden_degrees, other.hidden_degrees)
    assert torch.equal(MADE(small(BINARY, hidden=(8,))).orders[0], torch.arange(5))
    # a state dict round trip rebuilds the same density
    source = perturbed(config)
    copy = MADE(config).eval()
    copy.load_state_dict(source.state_dict())
    x = every_x(BINARY)
    assert torch.allclose(source.log_prob(x), copy.log_prob(x))
    # the masks follow the loaded orderings and degrees, not those drawn at construction
    other.load_state_dict(source.state_dict())
    assert torch.allclose(source.log_prob(x), other.eval().log_prob(x))


# ----- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"direct": False, "order": "random"},
        {"num_masks": 3, "eval_masks": 3, "order_agnostic": True},
        {"num_masks": 4, "eval_masks": 2},
    ],
)
@pytest.mark.parametrize("info", [BINARY, TERNARY])
def test_probabilities_sum_to_one(info, overrides):
    model = perturbed(small(info, hidden=(8, 8), **overrides), scale=1.0)
    total = model.log_prob(every_x(info)).exp().sum()
    assert abs(total.item() - 1.0) < 1e-5


def test_conditional_probabilities_sum_to_one_per_label():
    model = perturbed(small(LABELLED, hidden=(8,), conditional=True, num_masks=2, eval_masks=2))
    x = every_x(LABELLED)
    for label in range(3):
        total = model.log_prob(x, torch.full((len(x),), label)).exp().sum()
        assert abs(total.item() - 1.0) < 1e-5


# ----- sampling ---------------------------------------------------------------------------------


def test_same_generator_same_samples():
    model = perturbed(small(DataInfo((2, 4), "binary"), hidden=(16,), num_masks=2, eval_masks=2))
    a = model.sample(20, generator=torch.Generator().manual_seed(7))
    b = model.sample(20, generator=torch.Generator().manual_seed(7))
    c = model.sample(20, generator=torch.Generator().manual_seed(8))
    assert a.shape == (20, 2, 4) and torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("info", "overrides"),
    [
        (DataInfo((3,), "binary"), {"order": "random", "mask_seed": 2}),
        (DataInfo((3,), "binary"), {"num_masks": 3, "eval_masks": 3, "order_agnostic": True}),
        (DataInfo((2,), "discrete", levels=3), {"order": "random", "mask_seed": 1}),
    ],
)
def test_sample_frequencies_match_log_prob(info, overrides):
    model = perturbed(small(info, hidden=(8, 8), **overrides), scale=1.0)
    n = 20000
    x = model.sample(n, generator=torch.Generator().manual_seed(0)).reshape(n, -1)
    levels = info.levels or 2
    index = (x.long() * levels ** torch.arange(info.dim - 1, -1, -1)).sum(1)  # row of every_x
    counts = torch.bincount(index, minlength=levels**info.dim).double()
    expected = n * model.log_prob(every_x(info)).exp().double()
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    cells = levels**info.dim
    assert chi2 < cells + 6 * math.sqrt(2 * cells), chi2  # mean = cells - 1, sd = sqrt(2 (cells - 1))


# ----- conditioning and errors ------------------------------------------------------------------


def test_conditional_model_uses_the_label():
    model = perturbed(small(LABELLED, hidden=(8,), conditional=True))
    x = every_x(LABELLED)[:6]
    lp0, lp1 = model.log_prob(x, torch.zeros(6)), model.log_prob(x, torch.ones(6))
    assert not torch.allclose(lp0, lp1)
    # the first dimension in the ordering depends on the label too (through the output bias)
    first = int(model.orders[0, 0])
    logit_first = [model.logits(torch.zeros(1, 4), torch.tensor([c]))[0, first].item() for c in range(3)]
    assert len({round(v, 6) for v in logit_first}) == 3
    assert model.sample(5, cond=torch.tensor([0, 1, 2, 1, 0])).shape == (5, 4)
    assert model.sample(5, cond=torch.tensor(2)).shape == (5, 4)
    with pytest.raises(ConfigError):
        model.log_prob(x)
    with pytest.raises(ConfigError):
        model.sample(3)
    with pytest.raises(ConfigError):
        model.sample(2, cond=torch.tensor([0, 3]))


def test_errors_name_the_problem():
    model = MADE(small(BINARY, hidden=(8,)))
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(2, 4))
    with pytest.raises(ConfigError):
        model.log_prob(torch.zeros(2, 5), cond=torch.zeros(2))
    with pytest.raises(ConfigError):
        MADE(MADEConfig(data=BINARY, num_masks=2, eval_masks=3))
    with pytest.raises(ConfigError):
        MADE(MADEConfig(data=BINARY, hidden=()))
    with pytest.raises(DataError, match="continuous|discrete"):
        MADE(MADEConfig(data=DataInfo((5,), "continuous")))
    assert dgm.build("made", data=BINARY, hidden="8,8").config.hidden == (8, 8)


def test_continuous_data_is_refused_naming_the_registered_models_that_take_it():
    with pytest.raises(DataError) as err:
        dgm.build("made", data=DataInfo((5,), "continuous"))
    takers = [row["name"] for row in dgm.list_models() if "continuous" in row["data"]]
    assert "independent" in takers and "made" not in takers
    assert str(err.value) == (
        "model 'made' takes binary or discrete data, got continuous data of shape (5,); "
        f"models that take continuous data: {', '.join(takers)}"
    )
    assert MADE.data_fix(DataInfo((5,), "ordinal")) == "no model takes ordinal data yet"  # type: ignore[arg-type]


def test_default_ensemble_uses_every_mask_set():
    assert MADE(MADEConfig(data=BINARY, hidden=(4,))).eval_sets == MADEConfig.num_masks
    assert MADE(MADEConfig(data=BINARY, hidden=(4,), num_masks=3)).eval_sets == 3
    assert MADE(MADEConfig(data=BINARY, hidden=(4,), num_masks=3, eval_masks=2)).eval_sets == 2


def test_training_loss_cycles_mask_sets_and_eval_loss_is_the_ensemble():
    model = perturbed(small(BINARY, hidden=(8,), num_masks=3, eval_masks=3, order_agnostic=True))
    x = every_x(BINARY)
    model.train()
    losses = [model.loss(x)["loss"].item() for _ in range(3)]
    expected = [-model._mask_log_prob(x, None, k).mean().item() for k in range(3)]
    assert losses == pytest.approx(expected)
    model.eval()
    assert model.loss((x, None))["loss"].item() == pytest.approx(-model.log_prob(x).mean().item())


# ----- learning ---------------------------------------------------------------------------------


def markov_bits(n: int, dim: int = 8, flip: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Binary chains: bit 0 a fair coin, bit k+1 copies bit k with probability 1 - flip."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, dim)
    x[:, 0] = (torch.rand(n, generator=gen) < 0.5).float()
    for k in range(1, dim):
        flips = (torch.rand(n, generator=gen) < flip).float()
        x[:, k] = (x[:, k - 1] + flips) % 2
    return x


def fit(model, x: torch.Tensor, steps: int = 300, lr: float = 1e-2) -> float:
    """A few hundred Adam steps on minibatches of ``x``; returns the NLL of fresh data."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        batch = x[(step * 100) % len(x) :][:100]
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return -model.log_prob(markov_bits(2000, seed=1)).mean().item()


def test_made_learns_dependencies_the_independent_baseline_cannot():
    x = markov_bits(2000)
    info = DataInfo((8,), "binary")
    made = fit(dgm.build("made", data=info, hidden=(32, 32), num_masks=2, order_agnostic=True), x)
    independent = fit(dgm.build("independent", data=info), x)
    truth = math.log(2) + 7 * -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # entropy, 2.97 nats
    assert independent > 8 * math.log(2) - 0.05  # the marginals are fair coins
    assert made < independent - 2.0
    assert made < truth + 0.15


def test_runs_in_double_precision():
    model = perturbed(small(TERNARY, hidden=(8,), num_masks=2)).double()
    log_p = model.log_prob(every_x(TERNARY))
    assert log_p.dtype == torch.float64 and abs(log_p.exp().sum().item() - 1.0) < 1e-12
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).dtype == torch.float64


@pytest.mark.parametrize(
    "info, overrides",
    [
        (DataInfo((1, 6, 6), "binary"), {"hidden": (32,), "num_masks": 3}),
        (DataInfo((1, 6, 6), "binary"), {"hidden": (24, 16), "direct": False, "num_masks": 1}),
        (DataInfo((1, 5, 5), "discrete", levels=4, num_classes=3), {"hidden": (20,), "conditional": True}),
    ],
)
def test_incremental_sampling_draws_what_the_whole_passes_draw(info, overrides):
    """The O(H)-per-dimension sampler gives the samples of D whole passes (same generator)."""
    model = perturbed(small(info, **overrides), seed=3, scale=1.0).eval()
    cond = torch.tensor([0, 1, 2, 1] * 25) if model.conditional else None
    fast = model.sample(100, cond=cond, generator=torch.Generator().manual_seed(5))
    reference = model.sample(100, cond=cond, generator=torch.Generator().manual_seed(5), cached=False)
    assert torch.equal(fast, reference)
    assert fast.std() > 0  # the draws are not all alike


# ----- the autoregressive family's sampling: temperature, cached == naive, log-prob, completion ---

FAMILY_CASES = [
    (DataInfo((1, 2, 3), "binary"), {"hidden": (10,), "num_masks": 3, "order_agnostic": True}),
    (DataInfo((5,), "discrete", levels=3), {"hidden": (8, 6), "direct": False, "order": "random"}),
    (DataInfo((4,), "binary", num_classes=3), {"hidden": (8,), "conditional": True, "num_masks": 2}),
    (DataInfo((3,), "binary"), {"hidden": (6,), "output": "categorical", "num_masks": 2}),
]
FAMILY_IDS = ["binary-ensemble", "ternary-deep", "conditional", "binary-as-categorical"]


def cond_of(model: MADE, n: int):
    return torch.arange(n) % 3 if model.conditional else None


@pytest.mark.parametrize(("info", "overrides"), FAMILY_CASES, ids=FAMILY_IDS)
@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
def test_cached_and_naive_sampling_agree_at_every_temperature(info, overrides, temperature):
    model = perturbed(small(info, **overrides), seed=2, scale=1.5).double()
    cond = cond_of(model, 12)
    fast, fast_lp = model.sample_and_log_prob(12, cond, torch.Generator().manual_seed(4), temperature, cached=True)
    slow, slow_lp = model.sample_and_log_prob(12, cond, torch.Generator().manual_seed(4), temperature, cached=False)
    assert torch.equal(fast, slow) and torch.allclose(fast_lp, slow_lp, atol=1e-10)
    plain = model.sample(12, cond, torch.Generator().manual_seed(4), temperature, cached=False)
    assert torch.equal(plain, fast)  # sample() skips the ensemble's log-prob, not the draws


@pytest.mark.parametrize(("info", "overrides"), FAMILY_CASES, ids=FAMILY_IDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_log_prob_accumulated_while_sampling_is_the_ensembles_log_prob(info, overrides, temperature):
    model = perturbed(small(info, **overrides), seed=1).double()
    cond = cond_of(model, 16)
    x, log_p = model.sample_and_log_prob(16, cond, torch.Generator().manual_seed(2), temperature)
    assert torch.allclose(log_p, model.log_prob(x, cond), atol=1e-10)
    # with one mask set nothing but the accumulation enters it
    single = perturbed(small(info, **{**overrides, "num_masks": 1}), seed=1).double()
    x, log_p = single.sample_and_log_prob(16, cond, torch.Generator().manual_seed(2), temperature)
    assert torch.allclose(log_p, single.log_prob(x, cond), atol=1e-10)


def test_temperature_zero_takes_the_first_mask_set_and_the_likeliest_value_per_step():
    model = perturbed(small(DataInfo((5,), "discrete", levels=3), hidden=(8,), num_masks=3, order_agnostic=True))
    model = model.double()
    a = model.sample(4, generator=torch.Generator().manual_seed(1), temperature=0.0)
    b = model.sample(4, generator=torch.Generator().manual_seed(2), temperature=0.0, cached=False)
    assert torch.equal(a, b) and torch.equal(a[0], a[3])
    x = torch.zeros(1, 5, dtype=torch.float64)
    for d in model.orders[0].tolist():  # greedy in the first set's ordering
        x[0, d] = model.logits(x, mask=0)[0, d].argmax()
    assert torch.equal(a[0], x[0])
    cool = model.sample_and_log_prob(300, generator=torch.Generator().manual_seed(0), temperature=0.3)[1]
    warm = model.sample_and_log_prob(300, generator=torch.Generator().manual_seed(0))[1]
    assert cool.mean() > warm.mean() + 0.3
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=float("nan"))


@pytest.mark.parametrize("cached", [True, False])
def test_completion_keeps_the_kept_elements(cached):
    info = DataInfo((2, 3), "discrete", levels=3)
    model = perturbed(small(info, hidden=(8,), num_masks=3, order_agnostic=True), seed=4, scale=1.5).double()
    x = torch.randint(0, 3, (10, 2, 3)).double()
    keep = torch.rand(10, 2, 3) < 0.5
    out = model.complete(x, keep, generator=torch.Generator().manual_seed(0), cached=cached)
    assert torch.equal(out[keep], x[keep]) and not torch.equal(out, x)
    other = model.complete(x, keep, generator=torch.Generator().manual_seed(0), cached=not cached)
    assert torch.equal(out, other)
    done, log_p = model.generate(
        10, None, torch.Generator().manual_seed(0), 1.0, cached, given=x.view(10, -1), keep=keep.view(10, -1)
    )
    assert torch.equal(done.view_as(out), out) and torch.allclose(log_p, model.log_prob(out), atol=1e-10)


# ----- 8-bit data -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 16), (5,)])
def test_data_with_many_levels_is_refused_naming_the_fixes(shape):
    info = DataInfo(shape, "discrete", 256)
    with pytest.raises(DataError) as err:
        dgm.build("made", data=info)
    message = str(err.value)
    for fix in ("--transform binarize", "pixelcnn", "gated_pixelcnn", "--set output=categorical"):
        assert fix in message
    assert "256 logits per dimension" in message
    assert dgm.build("made", data=DataInfo(shape, "discrete", 32), hidden=(4,), direct=False).per_dim == 32


def test_the_categorical_head_on_8_bit_data_is_there_when_asked_for():
    info = DataInfo((3,), "discrete", 256)
    model = perturbed(small(info, hidden=(8,), output="categorical")).double()
    assert model.per_dim == 256 and model.out.weight.shape == (3 * 256, 8)
    x = torch.randint(0, 256, (6, 3)).double()
    assert torch.isfinite(model.log_prob(x)).all()
    pair = perturbed(small(DataInfo((2,), "discrete", 40), hidden=(8,), output="categorical"), scale=1.0).double()
    every = torch.cartesian_prod(torch.arange(40.0), torch.arange(40.0)).double()  # 40 levels: refused by auto too
    assert abs(torch.logsumexp(pair.log_prob(every), 0).item()) < 1e-9
    with pytest.raises(ConfigError, match="parameters"):  # the default size is still refused, by its size
        dgm.build("made", data=DataInfo((3, 16, 16), "discrete", 256), output="categorical")


def test_runs_saved_before_the_output_field_still_load():
    info = DataInfo((3,), "discrete", 256)
    model = perturbed(small(info, hidden=(8,), output="categorical"))
    saved = {k: v for k, v in to_dict(model.config).items() if k != "output"}  # an older config.json
    with pytest.raises(DataError, match="output=categorical"):  # read as it is, it is refused...
        MADE(from_dict(MADEConfig, saved))
    loaded = MADE(from_dict(MADEConfig, MADE.upgrade_config(saved))).eval()  # ...upgraded, it loads
    loaded.load_state_dict(model.state_dict())
    x = torch.randint(0, 256, (4, 3)).float()
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
    for other in ({**saved, "data": to_dict(TERNARY)}, to_dict(model.config)):  # nothing else changes
        assert MADE.upgrade_config(other) == other


def test_state_dict_keys_are_unchanged():
    model = MADE(small(DataInfo((4,), "binary", num_classes=3), hidden=(8, 8), conditional=True))
    assert list(model.state_dict()) == [
        "orders",
        "hidden_degrees",
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
        "out.weight",
        "out.bias",
        "direct.weight",
        "cond_hidden.weight",
        "cond_out.weight",
    ]
