"""The causal transformer: causality, normalisation, cached == naive sampling, completion, errors."""

from __future__ import annotations

import doctest
import itertools
import math

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive import transformer
from dgm.models.autoregressive.transformer import Transformer, TransformerConfig, embedding_kind
from dgm.models.heads import BernoulliHead, CategoricalHead, LogisticMixtureHead
from dgm.nn import attention

BINARY = DataInfo((1, 2, 3), "binary", 2, num_classes=3)
RGB4 = DataInfo((3, 2, 2), "discrete", 4, num_classes=2)  # 3 channels, 4 levels: table embedding
RGB8 = DataInfo((3, 2, 2), "discrete", 256)  # 8-bit colour: linear embedding, logistic mixture
TEXT = DataInfo((4,), "discrete", 3, num_classes=2, vocab="abc")
AUDIO = DataInfo((6,), "discrete", 256, sample_rate=8000)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    torch.manual_seed(0)


def perturbed(info: DataInfo, seed: int = 0, scale: float = 0.5, **overrides) -> Transformer:
    """A tiny float64 transformer with every parameter redrawn (no zero or identity structure)."""
    fields = {"width": 8, "layers": 2, "heads": 2, "expansion": 2, "mixtures": 2, **overrides}
    model = Transformer(TransformerConfig(data=info, **fields)).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def every_x(info: DataInfo) -> torch.Tensor:
    rows = list(itertools.product(range(info.levels or 2), repeat=info.dim))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *info.shape)


def random_x(info: DataInfo, n: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, info.levels or 2, (n, *info.shape), generator=gen).double()


def labels(model: Transformer, n: int) -> torch.Tensor | None:
    return torch.arange(n) % model.config.data.num_classes if model.conditional else None


# ----- heads and embeddings ---------------------------------------------------------------------


def test_heads_and_embeddings_follow_the_data():
    assert isinstance(perturbed(BINARY).output.head, BernoulliHead)
    assert isinstance(perturbed(TEXT).output.head, CategoricalHead)
    assert isinstance(perturbed(AUDIO).output.head, CategoricalHead)  # mu-law levels are categories
    assert isinstance(perturbed(RGB8).output.head, LogisticMixtureHead)  # never 256 logits per pixel
    kinds = {info: embedding_kind(TransformerConfig(data=info)) for info in (BINARY, RGB4, RGB8, TEXT, AUDIO)}
    assert kinds == {BINARY: "table", RGB4: "table", RGB8: "linear", TEXT: "table", AUDIO: "table"}
    model = perturbed(RGB8)
    assert model.embed_table is None and model.embed_linear is not None
    assert perturbed(RGB4).embed_table.num_embeddings == 3 * 4  # one row per (channel, level)
    assert perturbed(RGB8, embedding="table").embed_table.num_embeddings == 3 * 256
    assert (model.channels, model.length) == (3, 4) and model.position.num_embeddings == 4


# ----- causality --------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("conditional", [False, True])
def test_features_at_d_see_every_element_before_d_and_none_after(layers, conditional):
    info = DataInfo((1, 3, 3), "binary", 2, num_classes=3)
    model = perturbed(info, layers=layers, conditional=conditional)
    cond = torch.tensor([2]) if conditional else None
    e = model.embed(model.elements(random_x(info, 1).view(1, -1)))  # (1, T, width): E(x_j)

    def params(e):
        return model.output.params(model.features(e[:, :-1], cond), None)[0]  # (T, C, P)

    jac = torch.autograd.functional.jacobian(params, e)[:, :, :, 0]  # (T, C, P, T, width)
    depends = jac.abs().sum((1, 2, 4)) > 0  # (T, T): the conditional of d depends on element j
    assert torch.equal(depends, torch.ones(9, 9, dtype=torch.bool).tril(-1))


def test_channels_of_a_pixel_see_the_earlier_pixels_and_the_earlier_channels_only():
    """End to end from the data (8-bit colour, linear embedding): the parameters of pixel d,
    channel c depend on every channel of pixels j < d and on channels c' < c of pixel d."""
    model = perturbed(RGB8)
    x = random_x(RGB8, 1)

    def params(x):
        return model.element_params(x)[0]  # (T, C, P)

    jac = torch.autograd.functional.jacobian(params, x)[:, :, :, 0]  # (T, C, P, C, H, W)
    depends = jac.abs().sum(2).flatten(2) > 0  # (T, C, C*H*W)
    depends = depends.view(4, 3, 3, 4).permute(0, 1, 3, 2)  # (pixel d, channel c, pixel j, channel c')
    d, c, j, c2 = torch.meshgrid(*(torch.arange(k) for k in (4, 3, 4, 3)), indexing="ij")
    assert torch.equal(depends, (j < d) | ((j == d) & (c2 < c)))


# ----- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info, overrides",
    [
        (BINARY, {}),
        (BINARY, {"layers": 1, "heads": 1}),
        (TEXT, {}),
        (DataInfo((3, 1, 2), "binary", 2), {}),
        (DataInfo((1, 1, 2), "discrete", 256), {"mixtures": 3}),
    ],
    ids=["binary-1x2x3", "binary-one-layer", "text-3-levels", "binary-3-channels", "8-bit-logistic"],
)
def test_probabilities_sum_to_one(info, overrides):
    model = perturbed(info, **overrides)
    total = model.log_prob(every_x(info)).exp().sum()
    assert abs(total.item() - 1.0) < 1e-9


@pytest.mark.parametrize("info", [BINARY, TEXT])
def test_conditional_probabilities_sum_to_one_per_label(info):
    model = perturbed(info, conditional=True)
    x = every_x(info)
    totals = [model.log_prob(x, torch.full((len(x),), y)).exp().sum().item() for y in range(info.num_classes)]
    assert totals == pytest.approx([1.0] * info.num_classes, abs=1e-9)
    assert not torch.allclose(model.log_prob(x, torch.zeros(len(x))), model.log_prob(x, torch.ones(len(x))))


# ----- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info, overrides",
    [
        (DataInfo((1, 3, 3), "binary", 2), {}),
        (RGB4, {}),
        (RGB8, {}),
        (DataInfo((10,), "discrete", 5, vocab="abcde"), {"layers": 3}),
        (DataInfo((1, 3, 3), "binary", 2, num_classes=3), {"conditional": True}),
        (DataInfo((10,), "discrete", 5, num_classes=2, vocab="abcde"), {"conditional": True}),
    ],
    ids=["binary", "rgb-4-levels", "rgb-8-bit", "text", "binary-cond", "text-cond"],
)
def test_cached_and_naive_sampling_draw_the_same_examples_with_their_log_prob(info, overrides):
    model = perturbed(info, **overrides)
    cond = labels(model, 12)
    for temperature in (1.0, 0.6):
        runs = [
            model.sample_and_log_prob(12, cond, torch.Generator().manual_seed(3), temperature, cached=cached)
            for cached in (True, False)
        ]
        (fast, log_p), (slow, log_p_slow) = runs
        assert torch.equal(fast, slow)
        assert fast.shape == (12, *info.shape) and fast.dtype == torch.float64
        assert torch.allclose(log_p, log_p_slow, atol=1e-10)
        assert torch.allclose(log_p, model.log_prob(fast, cond), atol=1e-9)  # accumulated == one pass
    assert fast.unique().numel() > 1


def test_temperature_zero_takes_the_most_likely_element_whatever_the_generator():
    model = perturbed(TEXT)
    a = model.sample(5, generator=torch.Generator().manual_seed(0), temperature=0.0)
    b = model.sample(5, generator=torch.Generator().manual_seed(1), temperature=0.0, cached=False)
    assert torch.equal(a, b) and torch.equal(a, a[:1].expand_as(a))
    # greedy: every element is the argmax of its conditional given the ones before
    params = model.element_params(a[:1])[0, :, 0]  # (T, levels)
    assert torch.equal(params.argmax(-1).double(), a[0])


@pytest.mark.parametrize("cached", [True, False])
def test_completion_keeps_the_start_of_a_text_exactly(cached):
    info = DataInfo((12,), "discrete", 5, vocab="abcde")
    model = perturbed(info)
    x = random_x(info, 6)
    keep = torch.arange(12) < 6
    out = model.complete(x, keep, generator=torch.Generator().manual_seed(2), cached=cached)
    assert torch.equal(out[:, :6], x[:, :6]) and not torch.equal(out, x)
    other = model.complete(x, keep, generator=torch.Generator().manual_seed(2), cached=not cached)
    assert torch.equal(out, other)
    # the log-probability accumulated while completing is that of the whole completed text
    flat_keep = keep.expand(6, 12)
    done, log_p = model.generate(6, None, torch.Generator().manual_seed(2), 1.0, cached, given=x, keep=flat_keep)
    assert torch.equal(done, out) and torch.allclose(log_p, model.log_prob(out), atol=1e-9)


def test_completion_of_an_image_keeps_the_kept_channels():
    model = perturbed(RGB4, conditional=True)
    x = random_x(RGB4, 4)
    keep = torch.zeros(3, 2, 2, dtype=torch.bool)
    keep[:, 0] = True  # the top row
    keep[0, 1, 0] = True  # and the red channel of the next pixel
    out = model.complete(x, keep, cond=torch.tensor([0, 1, 0, 1]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, keep], x[:, keep])


# ----- learning ---------------------------------------------------------------------------------


def test_it_learns_a_markov_chain_the_independent_model_cannot():
    """Bits that copy the bit before with probability 0.9: entropy 2.97 nats for 8 bits, 5.55
    for independent fair coins."""
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(1000, 8)
    x[:, 0] = (torch.rand(1000, generator=gen) < 0.5).float()
    for k in range(1, 8):
        x[:, k] = (x[:, k - 1] + (torch.rand(1000, generator=gen) < 0.1).float()) % 2
    info = DataInfo((8,), "binary", 2)
    model = dgm.build("transformer", data=info, width=16, layers=1, heads=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(50):
        loss = model.loss(x[(step * 100) % 1000 :][:100])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    truth = math.log(2) + 7 * -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert -model.eval().log_prob(x).mean().item() < truth + 0.1


# ----- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"width": 10, "heads": 4}, "multiple of heads"),
        ({"layers": 0}, "layers"),
        ({"embedding": "onehot"}, "embedding"),
        ({"output": "gaussian"}, "output"),
        ({"dropout": 1.5}, "dropout"),
        ({"expansion": 0}, "expansion"),
    ],
)
def test_bad_configs_are_refused(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        Transformer(TransformerConfig(data=BINARY, **overrides))


def test_bad_data_is_refused_with_the_fix():
    with pytest.raises(DataError, match="dequantize|models that take"):
        dgm.build("transformer", data=DataInfo((4,), "continuous"))
    with pytest.raises(DataError, match="bernoulli"):
        dgm.build("transformer", data=RGB4, output="bernoulli")
    model = perturbed(BINARY)
    with pytest.raises(DataError, match="shape"):
        model.log_prob(torch.zeros(2, 6))
    with pytest.raises(DataError, match="levels 0..1"):
        model.log_prob(torch.full((2, 1, 2, 3), 2.0))
    with pytest.raises(ConfigError):
        model.log_prob(torch.zeros(2, 1, 2, 3), cond=torch.zeros(2))
    with pytest.raises(DataError, match="levels 0..1"):
        model.complete(torch.full((2, 1, 2, 3), 3.0), torch.ones(1, 2, 3, dtype=torch.bool))
    conditional = perturbed(BINARY, conditional=True)
    with pytest.raises(ConfigError, match="needs cond"):
        conditional.sample(2)
    with pytest.raises(ConfigError, match="cond must hold"):
        conditional.sample(2, cond=torch.tensor([0, 3]))


def test_defaults_fit_mnist_and_a_text():
    mnist = dgm.build("transformer", data=DataInfo((1, 28, 28), "binary", 2))
    count = sum(p.numel() for p in mnist.parameters())
    assert count < 400_000 and mnist.position.num_embeddings == 784
    text = dgm.build("transformer", data=DataInfo((256,), "discrete", 80, vocab="x" * 80))
    assert sum(p.numel() for p in text.parameters()) < 400_000


def test_docstring_examples_run():
    for module in (transformer, attention):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
