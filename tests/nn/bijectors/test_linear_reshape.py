"""Permutations, LU linear maps, 1x1 convolutions, squeeze, multi-scale flows and compositions."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Compose
from dgm.nn.bijectors.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    ConvConditioner,
    MLPConditioner,
    channel_mask,
    checkerboard_mask,
    vector_mask,
)
from dgm.nn.bijectors.elementwise import ActNorm, ElementwiseAffine
from dgm.nn.bijectors.linear import InvConv1x1, LULinear, RandomPermutation, Reverse
from dgm.nn.bijectors.reshape import MultiScale, Squeeze, squeeze, unsqueeze
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip, gaussian, perturbed

LINEAR = {
    "reverse": Reverse,
    "permutation": partial(RandomPermutation, seed=3),
    "lu": partial(LULinear, seed=1),
    "conv_lu": partial(InvConv1x1, lu=True, seed=1),
    "conv_dense": partial(InvConv1x1, lu=False, seed=1),
}


def build_linear(name: str, size: int):
    return perturbed(LINEAR[name]() if name == "reverse" else LINEAR[name](size))


@pytest.mark.parametrize("name", list(LINEAR))
@pytest.mark.parametrize("shape", [(6,), (4, 2, 2)])
def test_linear_bijectors_invert_with_exact_ladj(name, shape):
    layer = build_linear(name, shape[0])
    x = gaussian(3, *shape)
    assert_round_trip(layer, x)
    assert_ladj_matches_autograd(layer, x)


@pytest.mark.parametrize("name", ["permutation", "lu", "conv_lu", "conv_dense"])
def test_linear_bijectors_check_the_feature_size(name):
    with pytest.raises(DataError, match="dim 1 of size 4"):
        build_linear(name, 4)(torch.randn(2, 5, dtype=torch.float64))


def test_random_permutation_is_a_seeded_persistent_permutation():
    a, b, c = RandomPermutation(10, seed=0), RandomPermutation(10, seed=0), RandomPermutation(10, seed=1)
    assert sorted(a.perm.tolist()) == list(range(10))
    assert torch.equal(a.perm, b.perm) and not torch.equal(a.perm, c.perm)
    c.load_state_dict(a.state_dict())  # the saved permutation wins over the seed
    x = torch.randn(2, 10)
    assert torch.equal(c(x)[0], a(x)[0])
    assert torch.equal(a(x)[0], x[:, a.perm])


def test_lu_linear_weight_log_det_and_inverse():
    layer = perturbed(LULinear(5), scale=0.5)
    w = layer.weight()
    torch.testing.assert_close(layer.logabsdet(), torch.linalg.slogdet(w)[1])
    torch.testing.assert_close(layer.inverse_weight() @ w, torch.eye(5, dtype=w.dtype))
    assert not torch.allclose(w.abs(), torch.eye(5, dtype=w.dtype), atol=0.1)


def test_lu_linear_starts_as_a_rotation():
    w = LULinear(6, seed=2).weight()
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)


@pytest.mark.parametrize("lu", [True, False])
def test_inv_conv_ladj_is_hw_log_det(lu):
    conv = perturbed(InvConv1x1(3, lu=lu))
    x = gaussian(2, 3, 4, 5)
    z, ladj = conv(x)
    w = conv.linear.weight()
    torch.testing.assert_close(ladj, 20 * torch.linalg.slogdet(w)[1].expand(2))
    torch.testing.assert_close(z[:, :, 1, 2], x[:, :, 1, 2] @ w.T)  # the same map at every pixel


# ----- squeeze and multi-scale ------------------------------------------------------------------


def test_squeeze_layout_and_inverse():
    x = torch.arange(2 * 16.0).view(1, 2, 4, 4)
    z, ladj = Squeeze()(x)
    assert z.shape == (1, 8, 2, 2) and torch.equal(ladj, torch.zeros(1))
    # Channel 4c + 2di + dj holds pixel (2i + di, 2j + dj) of channel c.
    assert z[0, :4, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert z[0, 4 + 3, 1, 0].item() == x[0, 1, 3, 1].item()
    assert torch.equal(Squeeze().inverse(z)[0], x)
    assert_ladj_matches_autograd(Squeeze(), gaussian(2, 1, 2, 4))


@pytest.mark.parametrize("shape", [(1, 1, 3, 4), (1, 1, 4, 5), (4, 16)])
def test_squeeze_rejects_odd_or_non_image_inputs(shape):
    with pytest.raises(DataError, match="even height and width|images"):
        Squeeze()(torch.zeros(shape))


def test_unsqueeze_needs_channels_divisible_by_four():
    with pytest.raises(DataError, match="4C"):
        unsqueeze(torch.zeros(1, 6, 2, 2))


def glow_step(channels: int, parity: int, num_classes: int = 0) -> Compose:
    """ActNorm, invertible 1x1 convolution, affine coupling (Glow figure 2a)."""
    conditioner = partial(ConvConditioner, channels, hidden=8, num_classes=num_classes)
    return Compose(
        [
            ActNorm(channels),
            InvConv1x1(channels, seed=parity),
            AffineCoupling(channel_mask(channels, parity), conditioner),
        ]
    )


def two_level_flow(num_classes: int = 0) -> MultiScale:
    """(2, 4, 4) -> level 0 on (8, 2, 2), factor out 4 channels -> level 1 on (16, 1, 1)."""
    return MultiScale.stack(
        [
            Compose([glow_step(8, 0, num_classes), glow_step(8, 1, num_classes)]),
            glow_step(16, 0, num_classes),
        ]
    )


@pytest.mark.parametrize("num_classes", [0, 3])
def test_multi_scale_flow_inverts_with_exact_ladj(num_classes):
    flow = perturbed(two_level_flow(num_classes)).eval()
    x = gaussian(2, 2, 4, 4)
    cond = torch.tensor([0, 2]) if num_classes else None
    z, _ = flow(x, cond)
    assert z.shape == x.shape
    assert_round_trip(flow, x, cond)
    assert_ladj_matches_autograd(flow, x, cond)


def test_multi_scale_factors_out_half_at_each_level():
    """The first half of the squeezed output is final after level 0: the inner level cannot change it."""
    flow = perturbed(two_level_flow()).eval()
    x = gaussian(2, 2, 4, 4)
    z = squeeze(flow(x)[0])
    with torch.no_grad():
        for p in flow.inner.parameters():
            p.add_(1.0)
    z_changed = squeeze(flow(x)[0])
    assert torch.equal(z[:, :4], z_changed[:, :4])
    assert not torch.allclose(z[:, 4:], z_changed[:, 4:])


def test_multi_scale_level_must_preserve_shape():
    with pytest.raises(ConfigError, match="preserve shape"):
        MultiScale(Squeeze())(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ConfigError, match="at least one level"):
        MultiScale.stack([])


def test_multi_scale_odd_size_at_a_deeper_level_is_a_data_error():
    flow = MultiScale.stack([Reverse(), Reverse()])
    with pytest.raises(DataError, match="even height and width"):
        flow(torch.zeros(1, 1, 6, 6))  # 6 -> 3 at level 1


# ----- compositions -----------------------------------------------------------------------------


def vector_mix(num_classes: int) -> Compose:
    mlp = partial(MLPConditioner, 6, hidden=(16,), num_classes=num_classes, emb_dim=4)
    return Compose(
        [
            ActNorm(6),
            AffineCoupling(vector_mask(6, 0), mlp),
            LULinear(6),
            RandomPermutation(6, seed=1),
            AdditiveCoupling(vector_mask(6, 1), mlp),
            InvConv1x1(6, lu=False),
            Reverse(),
            AffineCoupling(vector_mask(6, 1), mlp),
            ElementwiseAffine(6),
        ]
    )


@pytest.mark.parametrize("num_classes", [0, 3])
def test_compose_sums_log_dets(num_classes):
    flow = perturbed(vector_mix(num_classes)).eval()
    x = gaussian(4, 6)
    cond = torch.tensor([0, 1, 2, 1]) if num_classes else None
    z, ladj = flow(x, cond)
    total, h = torch.zeros(4, dtype=x.dtype), x
    for layer in flow.bijectors:
        h, layer_ladj = layer(h, cond)
        assert torch.all(layer_ladj.abs() > 0) or isinstance(layer, AdditiveCoupling | RandomPermutation | Reverse)
        total = total + layer_ladj
    torch.testing.assert_close(ladj, total)
    assert_round_trip(flow, x, cond)
    assert_ladj_matches_autograd(flow, x, cond)


def test_image_compose_with_checkerboard_then_multi_scale():
    """RealNVP's layout: checkerboard couplings at full resolution, then a multi-scale flow."""
    conv = partial(ConvConditioner, 2, hidden=8)
    flow = Compose(
        [
            AffineCoupling(checkerboard_mask(4, 4, 0), conv),
            AdditiveCoupling(checkerboard_mask(4, 4, 1), conv),
            MultiScale(glow_step(8, 0), inner=glow_step(4, 1)),
        ]
    )
    flow = perturbed(flow).eval()
    x = gaussian(2, 2, 4, 4)
    assert_round_trip(flow, x)
    assert_ladj_matches_autograd(flow, x)
