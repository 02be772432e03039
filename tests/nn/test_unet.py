"""The diffusion UNet: shapes for any image size, dependence on t and labels, memory layouts,
gradients (in-place ops included) and refused configurations."""

from __future__ import annotations

import pytest
import torch

from dgm.errors import ConfigError, DataError
from dgm.nn.unet import UNet, unet_for


def tiny(in_channels: int = 1, seed: int = 0, perturb: bool = True, **options) -> UNet:
    """A small UNet; ``perturb`` redraws every parameter (the zero-initialised convs would
    otherwise hide whatever feeds them)."""
    torch.manual_seed(seed)
    net = UNet(in_channels, in_channels, **{"channels": 8, "mults": (1, 2), "heads": 2, **options})
    if perturb:
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(0.3 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize(
    ("shape", "patch"),
    [((1, 8, 8), 1), ((1, 28, 28), 2), ((3, 30, 17), 2), ((4, 9, 5), 2), ((3, 32, 32), 4), ((1, 1, 1), 1)],
)
def test_output_has_the_input_shape(shape, patch):
    net = tiny(shape[0], patch=patch, mults=(1, 2, 2))
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([0.0, 999.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("shape", "levels"), [((1, 8, 8), 2), ((1, 28, 28), 3), ((3, 32, 32), 3), ((3, 64, 64), 4), ((4, 30, 17), 3)]
)
def test_unet_for_sizes_the_network_from_the_data(shape, levels):
    net = unet_for(shape)
    assert len(net.down) == levels
    assert 0.4e6 < sum(p.numel() for p in net.parameters()) < 1.2e6
    x = torch.randn(1, *shape)
    assert net(x, torch.tensor([3.0])).shape == x.shape


def test_output_starts_at_zero():
    net = tiny(perturb=False)
    assert torch.equal(net(torch.randn(2, 1, 12, 12), torch.tensor([1.0, 2.0])), torch.zeros(2, 1, 12, 12))


def test_output_depends_on_the_timestep_and_on_every_pixel():
    net = tiny()
    x = torch.randn(1, 1, 12, 12, requires_grad=True)
    out = net(x, torch.tensor([10.0]))
    assert not torch.allclose(out, net(x, torch.tensor([11.0])))
    out[0, 0, 0, 0].backward()  # the corner output sees the whole image (attention at the bottom)
    assert (x.grad.abs() > 0).all()


def test_labels_change_the_output_and_none_means_the_no_label_class():
    net = tiny(num_classes=3)
    x, t = torch.randn(4, 1, 10, 10), torch.full((4,), 100.0)
    outs = [net(x, t, torch.full((4,), c)) for c in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(outs[a], outs[b])
    torch.testing.assert_close(net(x, t, None), outs[3])
    mixed = net(x, t, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(mixed, torch.stack([outs[i][i] for i in range(4)]))


def test_channels_last_and_contiguous_inputs_give_the_same_output():
    net = tiny(3)
    x = torch.randn(2, 3, 14, 10)
    t = torch.tensor([5.0, 600.0])
    torch.testing.assert_close(net(x, t), net(x.contiguous(memory_format=torch.channels_last), t))


def test_images_are_independent_of_each_other_in_a_batch():
    net = tiny(num_classes=2)
    x, t, cond = torch.randn(3, 1, 8, 8), torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 1, 2])
    whole = net(x, t, cond)
    torch.testing.assert_close(whole[1:2], net(x[1:2], t[1:2], cond[1:2]))


def test_every_parameter_gets_a_gradient():
    net = tiny(num_classes=2, blocks=2).train()
    out = net(torch.randn(2, 1, 12, 12), torch.tensor([1.0, 700.0]), torch.tensor([0, 2]))
    out.square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_in_place_ops_keep_gradients_exact():
    """gradcheck in float64: the in-place SiLUs and additions do not corrupt autograd."""
    net = tiny(num_classes=2).double()
    t, cond = torch.tensor([3.0, 400.0], dtype=torch.float64), torch.tensor([1, 2])
    x = torch.randn(2, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: net(x, t, cond), (x,), eps=1e-6, atol=1e-5)


def test_dropout_acts_in_training_only():
    net = tiny(dropout=0.5)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1.0, 2.0])
    torch.testing.assert_close(net(x, t), net(x, t))
    net.train()
    assert not torch.allclose(net(x, t), net(x, t))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"groups": 3}, "groups=3 must divide"),
        ({"channels": 12, "groups": 8}, "groups=8 must divide"),
        ({"heads": 5}, "heads=5 must divide"),
        ({"blocks": 0}, "blocks"),
        ({"mults": ()}, "mults"),
        ({"channels": 0}, "channels"),
        ({"patch": 0}, "patch"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_classes": -1}, "num_classes"),
    ],
)
def test_bad_configurations_are_refused(options, match):
    with pytest.raises(ConfigError, match=match):
        UNet(1, 1, **options)


@pytest.mark.parametrize("channels", [32, 12, 5])
def test_groups_default_to_at_most_8_of_at_least_8_channels(channels):
    net = UNet(1, 1, channels=channels, mults=(1, 2), heads=1)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    for m in norms:
        c = m.num_channels
        valid = [g for g in range(1, 9) if c % g == 0 and (c // g >= 8 or g == 1)]
        assert m.num_groups == max(valid)
    if channels == 32:  # 32 channels: 4 groups; 64: 8
        assert {(m.num_channels, m.num_groups) for m in norms} == {(32, 4), (64, 8)}


def test_bad_inputs_are_refused():
    net = tiny(perturb=False)
    with pytest.raises(DataError, match="1-channel"):
        net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    with pytest.raises(DataError, match="one timestep per image"):
        net(torch.randn(2, 1, 8, 8), torch.zeros(3))
    with pytest.raises(ConfigError, match="num_classes=0"):
        net(torch.randn(2, 1, 8, 8), torch.zeros(2), torch.zeros(2, dtype=torch.long))
