"""PixelCNN and gated PixelCNN: causality and receptive fields, normalisation, cached sampling."""

from __future__ import annotations

import doctest
import itertools

import pytest
import torch
from torch.autograd.functional import jacobian

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive import gated_pixelcnn, pixelcnn
from dgm.models.autoregressive.gated_pixelcnn import GatedPixelCNN
from dgm.models.autoregressive.pixelcnn import PixelCNN
from dgm.models.size import count_parameters
from dgm.nn import pixelcnn as nn_pixelcnn

MODELS = ("pixelcnn", "gated_pixelcnn")
TINY = {
    "pixelcnn": {"channels": 8, "blocks": 2, "features": 8},
    "gated_pixelcnn": {"channels": 6, "layers": 2, "features": 8},
}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    pass


def perturbed(name: str, info: DataInfo, seed: int = 0, scale: float = 0.5, **overrides):
    """A float64 model whose parameters are all redrawn at random (no zero structure: the
    class biases and the channel-autoregressive weights start at zero otherwise)."""
    torch.manual_seed(seed)
    model = dgm.build(name, data=info, **{**TINY[name], **overrides}).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def every_x(info: DataInfo) -> torch.Tensor:
    """All configurations of the data, (levels**D, *shape)."""
    rows = list(itertools.product(range(info.levels or 2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *info.shape)


def dependence(model, n: int = 3, seed: int = 0) -> torch.Tensor:
    """dep[i, j, r, c]: some feature of pixel (i, j) has a non-zero derivative with respect to
    some channel of pixel (r, c), for some of ``n`` random inputs. (H, W, H, W) booleans."""
    info = model.config.data
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *info.shape, generator=gen, dtype=torch.float64) * ((info.levels or 2) - 1)
    jac = jacobian(lambda x: model.features(x), x, vectorize=True)  # (n, F, H, W, n, C, H, W)
    jac = jac.abs().sum((1, 5))  # (n, H, W, n, H, W)
    return torch.stack([jac[b, :, :, b] for b in range(n)]).sum(0) > 0


def later(height: int, width: int) -> torch.Tensor:
    """later[i, j, r, c]: pixel (r, c) is (i, j) or after it in raster order."""
    order = torch.arange(height * width).view(height, width)
    return order.view(height, width, 1, 1) <= order.view(1, 1, height, width)


# ----- causality and receptive fields ---------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "info", [DataInfo((1, 5, 6), "binary", 2), DataInfo((3, 4, 5), "discrete", 4)], ids=["1x5x6", "3x4x5"]
)
def test_features_of_a_pixel_ignore_it_and_every_later_pixel(name, info):
    dep = dependence(perturbed(name, info))
    assert not (dep & later(*info.shape[1:])).any()
    assert dep.any(dim=(2, 3)).view(-1)[1:].all()  # every pixel but the first sees something


@pytest.mark.parametrize("name", MODELS)
def test_channels_of_a_pixel_see_only_the_channels_before_them(name):
    info = DataInfo((3, 3, 4), "discrete", 4)
    model = perturbed(name, info)
    x = torch.rand(2, *info.shape, dtype=torch.float64) * 3
    jac = jacobian(lambda x: model.params(x), x, vectorize=True)  # (2, H, W, C, P, 2, C, H, W)
    jac = (jac[0, :, :, :, :, 0].abs().sum(3) + jac[1, :, :, :, :, 1].abs().sum(3)) > 0  # (H, W, C, C', H, W)
    for i, j in itertools.product(range(3), range(4)):
        for c, c2 in itertools.product(range(3), range(3)):
            assert bool(jac[i, j, c, c2, i, j]) == (c2 < c)  # channel c of pixel (i, j) sees its channels < c
        after = later(3, 4)[i, j].clone()
        after[i, j] = False  # the pixel itself: its channels before c, checked above
        assert not (jac[i, j] & after).any()


def test_gated_pixelcnn_has_no_blind_spot():
    info = DataInfo((1, 6, 6), "binary", 2)
    model = perturbed("gated_pixelcnn", info, layers=5, kernel=3, first_kernel=3)
    assert model.receptive_field == 5  # wide enough for every earlier pixel of a 6x6 image
    assert torch.equal(dependence(model), ~later(6, 6))  # every earlier pixel, nothing else


def test_gated_pixelcnn_sees_exactly_its_receptive_field():
    info = DataInfo((1, 7, 9), "binary", 2)
    model = perturbed("gated_pixelcnn", info, layers=2, kernel=3, first_kernel=3)
    field = model.receptive_field  # rows i-1-R .. i-1 across j-R .. j+R, and row i from j-R to j-1
    dep = dependence(model)
    for i, j in itertools.product(range(7), range(9)):
        rows, cols = torch.arange(7).view(-1, 1), torch.arange(9).view(1, -1)
        above = (rows >= i - 1 - field) & (rows <= i - 1) & ((cols - j).abs() <= field)
        left = (rows == i) & (cols >= j - field) & (cols < j)
        assert torch.equal(dep[i, j], above | left), (i, j)


def pixelcnn_field(i: int, j: int, config, height: int, width: int) -> set[tuple[int, int]]:
    """The pixels a PixelCNN's features at (i, j) can reach through its masks: the blocks'
    type-B kernels (or their residual skip) from the top down, then the type-A first layer;
    only paths through positions inside the image."""

    def kernel(k: int, kind: str) -> list[tuple[int, int]]:
        r = k // 2
        return [(a, b) for a in range(-r, 1) for b in range(-r, r + 1) if a < 0 or b < 0 or (kind == "B" and b == 0)]

    def step(positions, offsets):
        return {(p + a, q + b) for p, q in positions for a, b in offsets if 0 <= p + a < height and 0 <= q + b < width}

    reach = {(i, j)}
    for _ in range(config.blocks):
        reach |= step(reach, kernel(config.kernel, "B"))
    return step(reach, kernel(config.first_kernel, "A"))


def test_pixelcnn_has_a_blind_spot_where_its_masks_say():
    info = DataInfo((1, 6, 6), "binary", 2)
    model = perturbed("pixelcnn", info, blocks=4, kernel=3, first_kernel=3)
    dep = dependence(model, n=4)
    for i, j in itertools.product(range(6), range(6)):
        field = pixelcnn_field(i, j, model.config, 6, 6)
        assert {(int(r), int(c)) for r, c in dep[i, j].nonzero()} == field, (i, j)
    # the blind spot: (2, 5) is before (3, 2) but up and right beyond the diagonal, at any depth
    assert (2, 5) not in pixelcnn_field(3, 2, model.config, 6, 6) and not dep[3, 2, 2, 5]
    assert (~later(6, 6) & ~dep).any()


def test_pixelcnn_blind_spot_is_the_documented_one_with_the_default_kernels():
    config = PixelCNN.Config(DataInfo((1, 12, 12), "binary", 2), blocks=12)  # first_kernel 7, kernel 3
    i, j = 10, 4
    field = pixelcnn_field(i, j, config, 12, 12)
    earlier = {(r, c) for r in range(12) for c in range(12) if r * 12 + c < i * 12 + j}
    blind = {(i - u, j + c) for u in range(1, i + 1) for c in range(12 - j) if c > 3 + (u - 1)}
    assert field == earlier - blind and blind


# ----- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "info",
    [
        DataInfo((1, 2, 3), "binary", 2, num_classes=2),
        DataInfo((2, 2, 2), "binary", 2),
        DataInfo((1, 2, 3), "discrete", 3),
    ],
    ids=["1x2x3", "2x2x2", "3-level"],
)
def test_probabilities_of_every_image_sum_to_one(name, info):
    conditional = info.num_classes > 0
    model = perturbed(name, info, conditional=conditional)
    x = every_x(info)
    for label in range(2) if conditional else [None]:
        cond = None if label is None else torch.full((x.shape[0],), label)
        total = torch.logsumexp(model.log_prob(x, cond), 0)
        assert abs(float(total)) < 1e-9


@pytest.mark.parametrize("name", MODELS)
def test_logistic_mixture_of_one_8bit_pixel_sums_to_one(name):
    info = DataInfo((1, 1, 1), "discrete", 256)
    model = perturbed(name, info, scale=1.0)
    assert type(model.output.head).__name__ == "LogisticMixtureHead"
    x = torch.arange(256, dtype=torch.float64).view(256, 1, 1, 1)
    assert abs(float(torch.logsumexp(model.log_prob(x), 0))) < 1e-6


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 5, 6)])
def test_8bit_images_get_finite_losses_and_gradients(name, shape):
    info = DataInfo(shape, "discrete", 256)
    model = dgm.build(name, data=info, **TINY[name]).train()
    x = torch.stack([torch.zeros(shape), torch.full(shape, 255.0), torch.randint(0, 256, shape).float()])
    loss = model.loss(x)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


# ----- generation ---------------------------------------------------------------------------------


GENERATION = [
    DataInfo((1, 5, 6), "binary", 2),
    DataInfo((3, 4, 5), "discrete", 4, num_classes=3),
    DataInfo((3, 3, 4), "discrete", 256),
]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("info", GENERATION, ids=["binary", "4-level-rgb-cond", "8bit-rgb"])
def test_cached_and_naive_sampling_draw_the_same_images_and_log_probs(name, info):
    conditional = info.num_classes > 0
    model = perturbed(name, info, conditional=conditional)
    cond = torch.tensor([0, 1, 2, 1, 0]) if conditional else None
    out = {}
    for cached in (True, False):
        gen = torch.Generator().manual_seed(3)
        out[cached] = model.sample_and_log_prob(5, cond, gen, temperature=0.8 if conditional else 1.0, cached=cached)
    (x, log_p), (x_naive, log_p_naive) = out[True], out[False]
    assert torch.equal(x, x_naive) and x.shape == (5, *info.shape)
    assert torch.allclose(log_p, log_p_naive) and torch.allclose(log_p, model.log_prob(x, cond))


@pytest.mark.parametrize("name", MODELS)
def test_cached_and_naive_sampling_consume_the_generator_alike(name):
    model = perturbed(name, GENERATION[0])
    gens = [torch.Generator().manual_seed(5) for _ in range(2)]
    model.sample(3, generator=gens[0], cached=True)
    model.sample(3, generator=gens[1], cached=False)
    assert torch.equal(gens[0].get_state(), gens[1].get_state())


@pytest.mark.parametrize("name", MODELS)
def test_temperature_zero_takes_the_most_likely_value_at_each_step(name):
    model = perturbed(name, GENERATION[1], conditional=True)
    cond = torch.tensor([2, 0])
    a = model.sample(2, cond, torch.Generator().manual_seed(0), temperature=0.0)
    b = model.sample(2, cond, torch.Generator().manual_seed(1), temperature=0.0, cached=False)
    assert torch.equal(a, b)
    params = model.params(a, cond).squeeze(-1)  # (2, H, W, C, 4) logits of each channel given the ones before
    assert torch.equal(params.argmax(-1).double(), a.permute(0, 2, 3, 1))


@pytest.mark.parametrize("name", MODELS)
def test_completion_keeps_the_top_half_exactly(name):
    info = DataInfo((3, 4, 5), "discrete", 4)
    model = perturbed(name, info)
    x = torch.randint(0, 4, (4, *info.shape)).double()
    keep = torch.zeros(info.shape, dtype=torch.bool)
    keep[:, :2] = True  # the top half
    done = {c: model.complete(x, keep, generator=torch.Generator().manual_seed(1), cached=c) for c in (True, False)}
    assert torch.equal(done[True], done[False])
    assert torch.equal(done[True][:, :, :2], x[:, :, :2])
    other = model.complete(x, keep, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(other[:, :, 2:], done[True][:, :, 2:])


@pytest.mark.parametrize("name", MODELS)
def test_keeping_every_element_returns_the_input_and_its_log_prob(name):
    info = GENERATION[1]
    model = perturbed(name, info, conditional=True)
    x = torch.randint(0, 4, (3, *info.shape)).double()
    cond = torch.tensor([0, 2, 1])
    keep = torch.ones(3, info.dim, dtype=torch.bool)
    out, log_p = model.generate(3, cond, torch.Generator(), 1.0, True, given=x.reshape(3, -1), keep=keep)
    assert torch.equal(out.view_as(x), x) and torch.allclose(log_p, model.log_prob(x, cond))


# ----- configs, errors, API -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_bad_data_and_configs_are_refused_naming_the_fix(name):
    with pytest.raises(DataError, match="transformer or wavenet.*made"):
        dgm.build(name, data=DataInfo((10,), "binary", 2))
    with pytest.raises(DataError, match="--transform|models that take"):
        dgm.build(name, data=DataInfo((1, 4, 4), "continuous"))
    with pytest.raises(DataError, match="--set decoder|binarize"):
        dgm.build(name, data=DataInfo((1, 4, 4), "discrete", 256), output="bernoulli")
    info = DataInfo((1, 4, 4), "binary", 2)
    size = "layers" if name == "gated_pixelcnn" else "blocks"
    for bad in [{"kernel": 2}, {"first_kernel": 1}, {"first_kernel": 4}, {size: 0}, {"channels": 0}, {"mixtures": 0}]:
        with pytest.raises(ConfigError, match=next(iter(bad))):
            dgm.build(name, data=info, **bad)
    with pytest.raises(ConfigError):
        dgm.build(name, data=info, output="gaussian")


@pytest.mark.parametrize("name", MODELS)
def test_heads_follow_the_data_and_sizes_are_known_before_building(name):
    heads = {"binary": "BernoulliHead", "digits": "CategoricalHead", "8bit": "LogisticMixtureHead"}
    infos = {
        "binary": DataInfo((1, 28, 28), "binary", 2),
        "digits": DataInfo((1, 8, 8), "discrete", 17),
        "8bit": DataInfo((3, 16, 16), "discrete", 256),
    }
    for key, info in infos.items():
        model = dgm.build(name, data=info)
        assert type(model.output.head).__name__ == heads[key]
        config = model.config
        assert count_parameters(type(model), config) == sum(p.numel() for p in model.parameters())
    assert issubclass(dgm.registry.get(name), (PixelCNN, GatedPixelCNN))


def test_docstring_examples_run():
    for module in (pixelcnn, gated_pixelcnn, nn_pixelcnn):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
