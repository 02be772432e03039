"""GAN networks: shapes for any data size, the DCGAN paper's layer sizes, spectral norm, per-example
normalisation, the projection discriminator's label term, dropout and the DCGAN initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from dgm.errors import ConfigError, DataError
from dgm.models.gan.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    dcgan_init,
    dcgan_sizes,
    default_features,
)

IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 64, 64), (3, 30, 30), (1, 20, 36)]


@pytest.fixture(autouse=True)
def _one_thread_and_seeded(one_thread):
    torch.manual_seed(0)


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def perturbed(net: nn.Module, scale: float = 0.3) -> nn.Module:
    """``net`` with every parameter redrawn, so no zero or unit initialisation hides a term."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn_like(p))
    return net


def data(net: nn.Module, n: int) -> torch.Tensor:
    return torch.randn(n, net.dim) if isinstance(net, MLPDiscriminator) else torch.randn(n, *net.shape)


def discriminators(**options) -> list[nn.Module]:
    return [MLPDiscriminator(5, 16, 3, **options), DCGANDiscriminator((2, 12, 10), 4, **options)]


# ----- shapes and sizes -------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [0, 3])
def test_mlp_shapes(classes):
    g, d = MLPGenerator(4, 7, 16, 2, classes), MLPDiscriminator(7, 16, 2, classes)
    cond = torch.tensor([0, 2, 1, 2, 0]) if classes else None
    x = g(torch.randn(5, 4), cond)
    assert x.shape == (5, 7) and d(x, cond).shape == (5,)


@pytest.mark.parametrize("classes", [0, 3])
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_dcgan_shapes(shape, classes):
    g, d = DCGANGenerator(6, shape, 4, classes), DCGANDiscriminator(shape, 4, classes)
    cond = torch.tensor([0, 2, 1]) if classes else None
    x = g(torch.randn(3, 6), cond)
    assert x.shape == (3, *shape) and torch.isfinite(x).all()
    scores = d(x, cond)
    assert scores.shape == (3,) and torch.isfinite(scores).all()


@pytest.mark.parametrize(
    ("size", "levels"),
    [
        ((64, 64), [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]),
        ((28, 28), [(28, 28), (14, 14), (7, 7)]),
        ((8, 8), [(8, 8), (4, 4), (2, 2)]),
        ((30, 30), [(30, 30), (15, 15), (8, 8), (4, 4)]),
        ((20, 36), [(20, 36), (10, 18), (5, 9)]),
        ((256, 256), [(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)]),
    ],
)
def test_dcgan_sizes(size, levels):
    assert dcgan_sizes(*size) == levels


def test_dcgan_64x64_is_the_papers_network():
    """Radford et al.'s / the PyTorch example's DCGAN: z (100) -> 512x4x4 -> 256x8x8 -> 128x16x16
    -> 64x32x32 -> 3x64x64, and the mirrored discriminator; the parameter counts are the
    example's plus the biases of the layers that no batch norm follows."""
    g, d = DCGANGenerator(100, (3, 64, 64), 64), DCGANDiscriminator((3, 64, 64), 64)
    convs = []
    layers = [m for net in (g, d) for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    for m in layers:
        m.register_forward_hook(lambda m, i, o: convs.append(tuple(o.shape[1:])))
    g.eval(), d.eval()
    with torch.no_grad():
        d(g(torch.randn(2, 100)))
    assert [type(m) for m in layers] == [nn.ConvTranspose2d] * 5 + [nn.Conv2d] * 4
    assert convs[:5] == [(512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32), (3, 64, 64)]
    assert convs[5:] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    assert count(g) == 3_576_704 + 3  # + the last ConvTranspose2d's bias
    assert count(d) == 2_765_568 + 64 + 1  # + the first Conv2d's and the linear layer's biases


def test_small_images_get_small_networks():
    assert default_features((1, 28, 28)) == 32 and default_features((1, 8, 8)) == 32
    assert default_features((3, 64, 64)) == 64
    for shape, most in [((1, 28, 28), 0.5e6), ((1, 8, 8), 0.15e6)]:
        f = default_features(shape)
        assert count(DCGANGenerator(100, shape, f)) + count(DCGANDiscriminator(shape, f)) < most


def test_generator_outputs_are_in_minus_one_one():
    g = perturbed(DCGANGenerator(8, (3, 30, 30), 4), scale=3.0)  # large weights: saturated tanh
    x = g(torch.randn(16, 8))
    assert x.abs().max() <= 1 and (x.abs() > 0.99).float().mean() > 0.1
    mlp = perturbed(MLPGenerator(3, 2, 16, 2), scale=3.0)
    assert mlp(torch.randn(16, 3)).abs().max() > 1  # vectors: a linear output


def test_the_generator_crop_is_centred():
    g = perturbed(DCGANGenerator(8, (1, 30, 30), 4)).eval()
    z = torch.randn(2, 8)
    full = g.net(z[:, :, None, None])  # (2, 1, 32, 32)
    assert full.shape[-2:] == (32, 32) and torch.equal(g(z), full[:, :, 1:31, 1:31])


def test_conditional_generators_follow_the_label():
    for g in [MLPGenerator(4, 3, 16, 2, num_classes=3), DCGANGenerator(4, (1, 8, 8), 4, num_classes=3)]:
        g.eval()
        z = torch.randn(1, 4).expand(3, 4)
        x = g(z, torch.tensor([0, 1, 1]))
        assert not torch.allclose(x[0], x[1]) and torch.equal(x[1], x[2])


def test_every_parameter_gets_a_gradient():
    for sn in [False, True]:
        g, d = DCGANGenerator(6, (1, 12, 12), 4, 3), DCGANDiscriminator((1, 12, 12), 4, 3, 0.2, sn, "layer")
        cond = torch.tensor([0, 1, 2, 1])
        (d(g(torch.randn(4, 6), cond), cond).sum() + d(torch.randn(4, 1, 12, 12), cond).sum()).backward()
        g2, d2 = MLPGenerator(3, 5, 8, 2, 3), MLPDiscriminator(5, 8, 2, 3, 0.2, sn, "batch")
        d2(g2(torch.randn(4, 3), cond), cond).sum().backward()
        for net in (g, d, g2, d2):
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ----- discriminator properties -----------------------------------------------------------------


def spectral_norms(net: nn.Module) -> list[float]:
    return [
        torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item()
        for m in net.modules()
        if parametrize.is_parametrized(m, "weight")
    ]


@pytest.mark.parametrize("init", [False, True])
def test_spectral_norm_makes_each_largest_singular_value_one(init):
    nets = [
        MLPDiscriminator(5, 32, 3, num_classes=4, spectral_norm=True),
        DCGANDiscriminator((3, 32, 32), 8, num_classes=4, spectral_norm=True, norm="none"),
    ]
    for net in nets:
        if init:
            net.apply(dcgan_init)  # new raw weights: the power iteration must follow them
            assert all(0.9 < s < 1.1 for s in spectral_norms(net))
        for _ in range(3):
            net(data(net, 8), torch.randint(0, 4, (8,)))
        layers = sum(isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)) for m in net.modules())
        norms = spectral_norms(net)
        assert len(norms) == layers  # every convolution, linear layer and the label embedding
        assert all(0.95 < s < 1.05 for s in norms), norms
        raw = [
            torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), 2).item()
            for m in net.modules()
            if parametrize.is_parametrized(m, "weight")
        ]
        assert max(abs(s - 1) for s in raw) > 0.3  # the raw weights are not normalised themselves


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_layer_norm_scores_each_example_on_its_own(norm):
    """The gradient penalty differentiates D(x_i) with respect to x_i alone: with "layer" the
    score of an example does not depend on the rest of the batch; with batch norm it does."""
    for net in [MLPDiscriminator(5, 16, 3, norm=norm), DCGANDiscriminator((2, 12, 10), 4, norm=norm)]:
        perturbed(net).train()
        x = data(net, 6)
        other = torch.cat([x[:1], 3 * data(net, 5) + 1])
        same = torch.allclose(net(x)[0], net(other)[0], atol=1e-5)
        assert same == (norm == "layer")


@pytest.mark.parametrize("net", discriminators(num_classes=4), ids=["mlp", "dcgan"])
def test_projection_changes_the_score_by_the_embedding_difference(net):
    """D(x, y) = psi(phi(x)) + <embed(y), phi(x)> (Miyato & Koyama 2018)."""
    perturbed(net).eval()
    x = data(net, 5)
    y, y2 = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 3, 0, 2, 3])
    phi = net.features(x)
    embed = net.head.embed.weight
    expected = ((embed[y2] - embed[y]) * phi).sum(1)
    assert torch.allclose(net(x, y2) - net(x, y), expected, atol=1e-5)
    assert expected.abs().min() > 1e-3  # the labels do change the scores
    assert torch.allclose(net(x, y) - (embed[y] * phi).sum(1), net.head.psi(phi).squeeze(1), atol=1e-5)


@pytest.mark.parametrize("net", discriminators(dropout=0.5, norm="none"), ids=["mlp", "dcgan"])
def test_dropout_is_on_in_train_mode_only(net):
    x = data(net, 8)
    perturbed(net).train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    twin = type(net)(*((5, 16, 3) if isinstance(net, MLPDiscriminator) else ((2, 12, 10), 4)), norm="none")
    twin.load_state_dict(net.state_dict())
    assert torch.equal(net(x), net(x)) and torch.allclose(net(x), twin.eval()(x), atol=1e-6)


def test_dcgan_init_statistics():
    g, d = DCGANGenerator(100, (3, 32, 32), 32, num_classes=10), DCGANDiscriminator((3, 32, 32), 32, 10, norm="layer")
    embed = g.embed.weight.detach().clone()
    for net in (g, d):
        net.apply(dcgan_init)
    layers = [m for net in (g, d) for m in net.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    for m in layers:
        if m.weight.numel() >= 2000:
            assert abs(m.weight.mean()) < 0.003 and 0.018 < m.weight.std() < 0.022
    scales = torch.cat(
        [m.weight for net in (g, d) for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    )
    assert abs(scales.mean() - 1) < 0.01 and 0.014 < scales.std() < 0.026
    biases = [m.bias for net in (g, d) for m in net.modules() if getattr(m, "bias", None) is not None]
    assert len(biases) > 5 and all(torch.all(b == 0) for b in biases)
    assert torch.equal(g.embed.weight, embed)  # label embeddings keep their N(0, 1)


# ----- refused inputs ---------------------------------------------------------------------------


def test_bad_inputs_are_refused_with_the_fix():
    g, d = DCGANGenerator(4, (1, 8, 8), 4, num_classes=3), DCGANDiscriminator((1, 8, 8), 4)
    with pytest.raises(DataError, match="pass cond"):
        g(torch.randn(2, 4))
    with pytest.raises(DataError, match="0..2"):
        g(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(DataError, match="integer class labels"):
        g(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(DataError, match=r"\(B, 4\)"):
        g(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="cond=None"):
        d(torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="1, 8, 8"):
        d(torch.randn(2, 3, 8, 8))
    with pytest.raises(DataError, match=r"\(B, 5\)"):
        MLPDiscriminator(5)(torch.randn(2, 4))
    with pytest.raises(ConfigError, match="norm must be one of"):
        DCGANDiscriminator((1, 8, 8), norm="instance")
    with pytest.raises(ConfigError, match="dropout"):
        MLPDiscriminator(5, dropout=1.0)
    with pytest.raises(ConfigError, match="at least 4x4"):
        DCGANGenerator(4, (1, 3, 8))
