"""WaveNet: causality and the receptive field, normalisation, cached == naive sampling, completion."""

from __future__ import annotations

import itertools

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.wavenet import WaveNet, WaveNetConfig, layer_dilations
from dgm.models.heads import BernoulliHead, CategoricalHead, LogisticMixtureHead
from dgm.nn.dilated import receptive_field

BINARY = DataInfo((5,), "binary", 2, num_classes=2)
TERNARY = DataInfo((4,), "discrete", 3, num_classes=3)
TEXT = DataInfo((14,), "discrete", 6, num_classes=2, vocab="abcdef")
AUDIO = DataInfo((16,), "discrete", 256, sample_rate=8000)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    torch.manual_seed(0)


def perturbed(info: DataInfo, seed: int = 0, scale: float = 0.5, **overrides) -> WaveNet:
    """A tiny float64 WaveNet (receptive field 4 unless overridden) with every parameter redrawn."""
    fields = {"residual_channels": 4, "skip_channels": 5, "dilations": (1, 2), **overrides}
    model = WaveNet(WaveNetConfig(data=info, **fields)).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def active_relus(model: WaveNet) -> WaveNet:
    """``model`` with the ReLUs of its output stack kept active (positive skip and output biases,
    positive output weights), so a dead unit cannot hide a dependence the network has."""
    with torch.no_grad():
        for block in model.stack.blocks:
            block.skip.bias.add_(10.0)
        model.post.weight.abs_()
        model.post.bias.abs_()
    return model


def every_x(info: DataInfo) -> torch.Tensor:
    rows = list(itertools.product(range(info.levels or 2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float64)


def random_x(info: DataInfo, n: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, info.levels or 2, (n, *info.shape), generator=gen).double()


# ----- causality and the receptive field -------------------------------------------------------


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("dilations,kernel_size", [((1, 2), 2), ((1, 2, 1), 3)])
def test_conditional_t_sees_exactly_the_field_before_t(dilations, kernel_size, conditional):
    model = active_relus(perturbed(TEXT, dilations=dilations, kernel_size=kernel_size, conditional=conditional))
    cond = torch.tensor([1]) if conditional else None
    field = receptive_field(dilations, kernel_size)
    assert model.receptive_field == field
    x = random_x(TEXT, 1)
    s = model.inputs(x)  # (1, C, T): s_p = E[x_{p-1}], s_0 the start vector

    def params(s):
        return model.output.params(model.features(s, cond), None)  # (1, T, 1, P)

    jac = torch.autograd.functional.jacobian(params, s)[0, :, 0]  # (T, P, 1, C, T)
    depends = jac.abs().sum((1, 2, 3)) > 0  # (T, T): conditional t depends on input p
    t, p = torch.meshgrid(torch.arange(TEXT.dim), torch.arange(TEXT.dim), indexing="ij")
    # input p carries x_{p-1}: conditional t sees x_{t-R} .. x_{t-1}, nothing at or after t
    assert torch.equal(depends, (p <= t) & (p > t - field))


def test_changing_x_j_changes_only_the_conditionals_after_j():
    model = active_relus(perturbed(TEXT, dilations=(1, 2, 4)))
    field = model.receptive_field  # 8
    x = random_x(TEXT, 1)
    base = model.logits(x)  # (1, T, P)
    for j in range(TEXT.dim):
        y = x.clone()
        y[0, j] = (y[0, j] + 1) % TEXT.levels
        changed = (model.logits(y) - base).abs().amax(-1)[0] > 1e-12  # (T,)
        t = torch.arange(TEXT.dim)
        assert torch.equal(changed, (t > j) & (t <= j + field)), j


def test_measured_receptive_field_of_the_default_dilations():
    """The last conditional depends on exactly the R = 511 values before it (default dilations)."""
    info = DataInfo((530,), "discrete", 4, sample_rate=8000)
    model = active_relus(dgm.build("wavenet", data=info, residual_channels=2, skip_channels=2))
    assert layer_dilations(model.config) == (1, 2, 4, 8, 16, 32, 64, 128) * 2
    assert model.receptive_field == receptive_field(layer_dilations(model.config)) == 511
    s = model.inputs(torch.zeros(1, 530)).detach().requires_grad_(True)
    model.output.params(model.features(s), None)[0, -1].sum().backward()
    seen = torch.nonzero(s.grad[0].abs().sum(0) > 0).squeeze(1)  # input positions the last output sees
    assert seen.tolist() == list(range(530 - 511, 530))


# ----- normalisation and heads -----------------------------------------------------------------


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("info", [BINARY, TERNARY])
def test_probabilities_of_every_sequence_sum_to_one(info, conditional):
    model = perturbed(info, scale=1.0, conditional=conditional)
    x = every_x(info)
    for label in range(info.num_classes if conditional else 1):
        cond = torch.full((len(x),), label) if conditional else None
        total = model.log_prob(x, cond).exp().sum()
        assert abs(total.item() - 1.0) < 1e-10


def test_logistic_mixture_head_on_8bit_vectors_sums_to_one():
    info = DataInfo((2,), "discrete", 256)  # not a sequence: "auto" picks the logistic mixture
    model = perturbed(info, mixtures=2, dilations=(1,))
    assert isinstance(model.output.head, LogisticMixtureHead)
    assert abs(model.log_prob(every_x(info)).exp().sum().item() - 1.0) < 1e-8


def test_heads_follow_the_data():
    assert isinstance(perturbed(BINARY).output.head, BernoulliHead)
    assert isinstance(perturbed(AUDIO).output.head, CategoricalHead)  # 256 mu-law levels
    assert isinstance(perturbed(TEXT).output.head, CategoricalHead)
    assert model_logits_shape(perturbed(AUDIO)) == (3, 16, 256)


def model_logits_shape(model: WaveNet) -> tuple[int, ...]:
    return tuple(model.logits(random_x(model.config.data, 3)).shape)


def test_log_prob_is_the_sum_of_the_conditionals():
    model = perturbed(TEXT)
    x = random_x(TEXT, 3)
    log_softmax = torch.log_softmax(model.logits(x), -1)  # (B, T, L)
    by_hand = log_softmax.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).sum(-1)
    assert torch.allclose(model.log_prob(x), by_hand)
    loss = model.loss(x)
    assert torch.allclose(loss["loss"], -by_hand.mean())


# ----- sampling -------------------------------------------------------------------------------


def draw(model, n, cond, seed, temperature, cached, given=None, keep=None):
    return model.generate(n, cond, torch.Generator().manual_seed(seed), temperature, cached, given, keep)


@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
@pytest.mark.parametrize(
    "info,overrides",
    [
        (TEXT, {}),
        (TEXT, {"conditional": True, "dilations": (1, 2, 1), "kernel_size": 3}),
        (BINARY, {"conditional": True}),
        (AUDIO, {}),
    ],
)
def test_cached_and_naive_draw_the_same_samples(info, overrides, temperature):
    model = perturbed(info, scale=0.8, **overrides)
    assert model.receptive_field < info.dim  # the naive window is cut
    cond = torch.tensor([0, 1, 1, 0]) if model.conditional else None
    x_fast, lp_fast = draw(model, 4, cond, 3, temperature, cached=True)
    x_slow, lp_slow = draw(model, 4, cond, 3, temperature, cached=False)
    assert torch.equal(x_fast, x_slow)
    assert torch.allclose(lp_fast, lp_slow, atol=1e-10)
    # the log-probability accumulated while sampling is log p(sample) at T = 1
    assert torch.allclose(lp_fast, model.log_prob(x_fast, cond), atol=1e-10)
    if temperature == 0:  # the most likely value given the values before
        logits = model.logits(x_fast, cond)  # (n, T, P)
        best = (logits[..., 0] > 0) if isinstance(model.output.head, BernoulliHead) else logits.argmax(-1)
        assert torch.equal(x_fast, best.double())


def test_same_generator_same_samples_and_shapes():
    model = perturbed(TEXT, conditional=True)
    a = model.sample(3, torch.tensor([0, 1, 0]), torch.Generator().manual_seed(5))
    b = model.sample(3, torch.tensor([0, 1, 0]), torch.Generator().manual_seed(5))
    assert a.shape == (3, 14) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= set(range(6))
    x, lp = model.sample_and_log_prob(3, torch.tensor([1, 1, 1]), torch.Generator().manual_seed(6))
    assert torch.allclose(lp, model.log_prob(x, torch.tensor([1, 1, 1])))


@pytest.mark.parametrize("cached", [True, False])
def test_complete_keeps_the_first_half_exactly(cached):
    model = perturbed(TEXT, conditional=True)
    x = random_x(TEXT, 4)
    keep = torch.arange(TEXT.dim) < TEXT.dim // 2
    cond = torch.tensor([0, 1, 0, 1])
    out = model.complete(x, keep, cond, torch.Generator().manual_seed(2), cached=cached)
    assert torch.equal(out[:, keep], x[:, keep])
    assert not torch.equal(out[:, ~keep], x[:, ~keep])
    # the same completions cached or not, and their accumulated log p is log p(completion)
    flat_keep = keep.expand(4, -1)
    y, lp = draw(model, 4, cond, 2, 1.0, not cached, given=x, keep=flat_keep)
    assert torch.equal(y, out)
    assert torch.allclose(lp, model.log_prob(y, cond))


def test_a_few_steps_learn_a_periodic_sequence():
    info = DataInfo((24,), "binary", 2)
    model = dgm.build("wavenet", data=info, residual_channels=8, skip_channels=8, dilations=(1, 2, 4))
    x = torch.tensor([[0.0, 1.0, 1.0] * 8, [1.0, 1.0, 0.0] * 8])
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    first = model.loss(x)["loss"].item()
    for _ in range(40):
        loss = model.loss(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.25 * first  # from about 24 log 2 nats towards the 2 uncertain first steps


# ----- errors ---------------------------------------------------------------------------------


def test_images_are_refused_naming_the_image_models():
    with pytest.raises(DataError, match="pixelcnn, gated_pixelcnn or transformer"):
        dgm.build("wavenet", data=DataInfo((1, 4, 4), "binary", 2))
    with pytest.raises(DataError, match=r"shape \(T,\)"):
        dgm.build("wavenet", data=DataInfo((4, 4), "binary", 2))
    with pytest.raises(DataError, match="discrete"):
        dgm.build("wavenet", data=DataInfo((8,), "continuous"))


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"kernel_size": 1}, "kernel_size"),
        ({"residual_channels": 0}, "residual_channels"),
        ({"stacks": 0}, "stacks"),
        ({"dilations": (1, 0)}, "dilations"),
    ],
)
def test_bad_configs_are_refused(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        dgm.build("wavenet", data=TEXT, **overrides)


def test_bad_inputs_are_refused():
    model = perturbed(TEXT)
    with pytest.raises(DataError, match="levels 0..5"):
        model.log_prob(torch.full((2, 14), 6.0))
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(2, 13))
    with pytest.raises(ConfigError, match="cond"):
        model.log_prob(torch.zeros(2, 14), torch.tensor([0, 1]))


def test_notes_say_when_the_field_is_longer_than_an_example():
    assert dgm.build("wavenet", data=AUDIO).notes()  # 511 > 16
    assert not perturbed(TEXT).notes()
    assert dgm.build("wavenet", data=AUDIO, dilations=(1, 2)).receptive_field == 4
