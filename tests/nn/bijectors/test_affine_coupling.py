"""Couplings (NICE, RealNVP), masks, conditioners, ElementwiseAffine and ActNorm."""

from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta
from functools import partial

import pytest
import torch
import torch.distributed as dist

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    ConvConditioner,
    MLPConditioner,
    channel_mask,
    checkerboard_mask,
    soft_clamp,
    vector_mask,
)
from dgm.nn.bijectors.elementwise import ActNorm, ElementwiseAffine, channel_moments
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip, gaussian, perturbed

NUM_CLASSES = 3


def labels(batch: int) -> torch.Tensor:
    return torch.arange(batch) % NUM_CLASSES


def make_coupling(kind: str, layout: str, num_classes: int = 0):
    """A coupling for vectors (B, 6) or images (B, 2, 4, 4), and an input for it."""
    cls = AdditiveCoupling if kind == "additive" else AffineCoupling
    if layout == "vector":
        builder = partial(MLPConditioner, 6, hidden=(16, 16), num_classes=num_classes, emb_dim=4)
        return cls(vector_mask(6, parity=1), builder), gaussian(3, 6)
    mask = checkerboard_mask(4, 4) if layout == "checkerboard" else channel_mask(2, parity=1)
    builder = partial(ConvConditioner, 2, hidden=8, num_classes=num_classes)
    return cls(mask, builder), gaussian(3, 2, 4, 4)


COUPLINGS = [
    (kind, layout, num_classes)
    for kind in ("additive", "affine")
    for layout in ("vector", "checkerboard", "channel")
    for num_classes in (0, NUM_CLASSES)
]


# ----- masks ------------------------------------------------------------------------------------


def test_vector_mask_alternates_and_parities_complement():
    assert vector_mask(5).tolist() == [True, False, True, False, True]
    assert torch.equal(vector_mask(5, 1), ~vector_mask(5, 0))


def test_checkerboard_mask_pattern():
    mask = checkerboard_mask(3, 4)
    assert mask.shape == (1, 3, 4) and mask.dtype == torch.bool
    assert mask[0].int().tolist() == [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    assert torch.equal(checkerboard_mask(3, 4, 1), ~mask)


def test_channel_mask_halves():
    assert channel_mask(4).flatten().tolist() == [True, True, False, False]
    assert channel_mask(4, 1).shape == (4, 1, 1)
    assert torch.equal(channel_mask(5, 1), ~channel_mask(5, 0))


@pytest.mark.parametrize("make", [lambda: vector_mask(1), lambda: channel_mask(1), lambda: vector_mask(4, parity=2)])
def test_degenerate_masks_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()


# ----- couplings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "layout", "num_classes"), COUPLINGS)
def test_coupling_inverts(kind, layout, num_classes):
    layer, x = make_coupling(kind, layout, num_classes)
    layer = perturbed(layer)
    assert_round_trip(layer, x, labels(3) if num_classes else None)


@pytest.mark.parametrize(("kind", "layout", "num_classes"), COUPLINGS)
def test_coupling_ladj_matches_autograd(kind, layout, num_classes):
    layer, x = make_coupling(kind, layout, num_classes)
    layer = perturbed(layer, seed=1)
    cond = labels(3) if num_classes else None
    assert_ladj_matches_autograd(layer, x, cond)
    if kind == "additive":
        assert torch.equal(layer(x, cond)[1], torch.zeros(3, dtype=x.dtype))


@pytest.mark.parametrize("layout", ["vector", "checkerboard", "channel"])
def test_coupling_passes_masked_dimensions_through(layout):
    layer, x = make_coupling("affine", layout)
    layer = perturbed(layer)
    z, _ = layer(x)
    mask = layer.mask.expand(x.shape[1:])
    assert torch.equal(z[:, mask], x[:, mask])
    assert not torch.allclose(z[:, ~mask], x[:, ~mask])


@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_fresh_coupling_is_the_identity(kind):
    layer, x = make_coupling(kind, "checkerboard")
    z, ladj = layer(x.float())
    assert torch.equal(z, x.float()) and torch.equal(ladj, torch.zeros(3))


@pytest.mark.parametrize("layout", ["vector", "channel"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_couplings_stay_finite_on_extreme_inputs(layout, dtype):
    for kind in ("additive", "affine"):
        layer, x = make_coupling(kind, layout, NUM_CLASSES)
        layer = perturbed(layer, scale=0.5).to(dtype)
        x = (1e4 * torch.sign(x)).to(dtype).requires_grad_()
        z, ladj = layer(x, labels(3))
        x_back, ladj_back = layer.inverse(x, labels(3))
        (z.sum() + ladj.sum() + x_back.sum() + ladj_back.sum()).backward()
        for t in (z, ladj, x_back, ladj_back, x.grad):
            assert torch.isfinite(t).all(), f"{kind} coupling on |x| = 1e4 in {dtype}"


@pytest.mark.parametrize("layout", ["vector", "checkerboard"])
def test_conditional_coupling_depends_on_the_label(layout):
    layer, x = make_coupling("affine", layout, NUM_CLASSES)
    layer = perturbed(layer)
    x = x[:1].expand(NUM_CLASSES, *x.shape[1:])  # the same x under every label
    z, ladj = layer(x, torch.arange(NUM_CLASSES))
    assert not torch.allclose(z[0], z[1]) and not torch.allclose(z[1], z[2])
    assert not torch.allclose(ladj[0], ladj[1])


def test_conditional_coupling_needs_integer_labels():
    layer, x = make_coupling("affine", "vector", NUM_CLASSES)
    with pytest.raises(DataError, match="cond"):
        layer(x.float())
    with pytest.raises(DataError, match="integer"):
        layer(x.float(), torch.zeros(3))


def test_affine_log_scale_is_soft_clamped():
    raw = torch.tensor([-1e6, -1.0, 0.0, 1e-3, 1e6])
    s = soft_clamp(raw, 2.0)
    assert s.abs().max() <= 2.0 and s[2] == 0
    torch.testing.assert_close(s[3], raw[3], rtol=1e-6, atol=0)
    layer, x = make_coupling("affine", "vector")
    layer = perturbed(layer, scale=50.0)  # huge raw log-scales
    _, ladj = layer(x)
    assert ladj.abs().max() <= 2.0 * 3  # three transformed dimensions


def test_conditioner_of_the_wrong_shape_is_a_config_error():
    layer = AffineCoupling(vector_mask(4), lambda out_per_dim: MLPConditioner(4, out_per_dim=1))
    with pytest.raises(ConfigError, match="conditioner returned"):
        layer(torch.randn(2, 4))


def test_mask_that_does_not_fit_the_input_is_a_data_error():
    layer, _ = make_coupling("affine", "checkerboard")
    with pytest.raises(DataError, match="mask"):
        layer(torch.randn(2, 2, 6, 6))


def test_conditioners_give_out_per_dim_params():
    mlp = MLPConditioner((2, 3), out_per_dim=5, hidden=(8,), num_classes=2, zero_init=False)
    assert mlp(torch.randn(4, 2, 3), torch.tensor([0, 1, 1, 0])).shape == (4, 2, 3, 5)
    conv = ConvConditioner(3, out_per_dim=7, hidden=8, zero_init=False)
    assert conv(torch.randn(4, 3, 5, 6)).shape == (4, 3, 5, 6, 7)


@pytest.mark.parametrize("dims", [None, slice(1, 4, 2)])
def test_a_residual_conditioner_adds_each_equal_width_layer_to_its_input(dims):
    """h1 = ReLU(W0 x + b0), h2 = h1 + ReLU(W1 h1 + b1), h3 = h2 + ReLU(W2 h2 + b2) (same widths),
    params = W3 h3 + b3; without ``residual`` the same weights give the plain MLP."""
    torch.manual_seed(0)
    plain = MLPConditioner(4, out_per_dim=3, hidden=(8, 8, 8), zero_init=False)
    residual = MLPConditioner(4, out_per_dim=3, hidden=(8, 8, 8), zero_init=False, residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(5, 4)
    w0, w1, w2, last = plain.net[0], plain.net[2], plain.net[4], plain.net[6]
    h1 = torch.relu(w0(x))
    h2 = h1 + torch.relu(w1(h1))
    h3 = h2 + torch.relu(w2(h2))
    expected = last(h3).view(5, 4, 3)
    unskipped = last(torch.relu(w2(torch.relu(w1(h1))))).view(5, 4, 3)
    if dims is not None:
        expected, unskipped = expected[:, dims], unskipped[:, dims]
    torch.testing.assert_close(residual(x, dims=dims), expected)
    torch.testing.assert_close(plain(x, dims=dims), unskipped)
    assert not torch.allclose(expected, unskipped, atol=1e-3)


def test_a_residual_conditioner_skips_only_between_layers_of_equal_width():
    torch.manual_seed(0)
    plain = MLPConditioner(2, out_per_dim=2, hidden=(8, 6), zero_init=False)
    residual = MLPConditioner(2, out_per_dim=2, hidden=(8, 6), zero_init=False, residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(3, 2)
    torch.testing.assert_close(residual(x), plain(x))


def test_conv_conditioner_params_are_per_pixel():
    """Output channel c * P + k is parameter k of channel c: changing one output filter changes one slot."""
    conv = ConvConditioner(2, out_per_dim=3, hidden=8, zero_init=True)
    with torch.no_grad():
        conv.conv_out.bias[1 * 3 + 2] = 1.0  # channel 1, parameter 2
    params = conv(torch.randn(1, 2, 4, 4))
    assert torch.equal(params[0, 1, :, :, 2], torch.ones(4, 4))
    params[0, 1, :, :, 2] = 0
    assert torch.equal(params, torch.zeros_like(params))


# ----- ElementwiseAffine ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (2, 3, 3)])
def test_elementwise_affine_inverts_with_exact_ladj(shape):
    layer = perturbed(ElementwiseAffine(shape))
    x = gaussian(3, *shape)
    assert_round_trip(layer, x)
    assert_ladj_matches_autograd(layer, x)


def test_elementwise_affine_checks_shapes():
    with pytest.raises(DataError, match="shape"):
        ElementwiseAffine(4)(torch.randn(2, 5))


# ----- ActNorm ----------------------------------------------------------------------------------


def shifted_batch(*shape: int, seed: int = 0) -> torch.Tensor:
    """A batch with a different mean and scale per channel (dim 1)."""
    x = gaussian(*shape, seed=seed, dtype=torch.float32)
    c = shape[1]
    view = (1, c, *([1] * (len(shape) - 2)))
    return x * torch.linspace(0.5, 4.0, c).view(view) + torch.linspace(-3.0, 5.0, c).view(view)


@pytest.mark.parametrize("shape", [(64, 3), (16, 3, 4, 4)])
def test_actnorm_initialises_from_the_first_training_batch(shape):
    norm = ActNorm(3).train()
    x = shifted_batch(*shape)
    z, ladj = norm(x)
    dims = [0, *range(2, len(shape))]
    torch.testing.assert_close(z.mean(dims), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dims, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert bool(norm.initialized)
    # ladj is -H W Σ log σ_c of the batch.
    spatial = 16 if len(shape) == 4 else 1
    expected = -spatial * x.transpose(0, 1).reshape(3, -1).std(1, unbiased=False).log().sum()
    torch.testing.assert_close(ladj, expected.expand(shape[0]), rtol=1e-5, atol=1e-5)


def test_actnorm_does_not_reinitialise():
    norm = ActNorm(3).train()
    norm(shifted_batch(64, 3))
    before = {k: v.clone() for k, v in norm.state_dict().items()}
    z, _ = norm(5 * shifted_batch(64, 3, seed=1) - 2)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert z.mean(0).abs().max() > 0.5  # the second batch is not normalised


def test_actnorm_reloaded_from_a_state_dict_is_not_reinitialised():
    norm = ActNorm(3).train()
    norm(shifted_batch(16, 3, 2, 2))
    state = norm.state_dict()
    assert "initialized" in state and bool(state["initialized"])

    fresh = ActNorm(3)
    fresh.load_state_dict(state)
    fresh.train()
    fresh(5 * shifted_batch(16, 3, 2, 2, seed=1))
    torch.testing.assert_close(fresh.loc, norm.loc, rtol=0, atol=0)
    torch.testing.assert_close(fresh.log_scale, norm.log_scale, rtol=0, atol=0)


def test_actnorm_does_not_initialise_in_eval_mode_or_inverse():
    norm = ActNorm(3).eval()
    x = shifted_batch(8, 3)
    z, ladj = norm(x)
    assert torch.equal(z, x) and not bool(norm.initialized)
    norm.train()
    norm.inverse(x)
    assert not bool(norm.initialized)


def test_actnorm_constant_channel_stays_finite():
    norm = ActNorm(2).train()
    x = torch.stack([torch.full((8,), 3.0), torch.randn(8)], dim=1)  # channel 0 is constant
    z, ladj = norm(x)
    assert torch.isfinite(z).all() and torch.isfinite(ladj).all()
    assert torch.equal(z[:, 0], torch.zeros(8))


@pytest.mark.parametrize("shape", [(6,), (4, 2, 2)])
def test_actnorm_inverts_with_exact_ladj(shape):
    norm = perturbed(ActNorm(shape[0])).eval()
    x = gaussian(3, *shape)
    assert_round_trip(norm, x)
    assert_ladj_matches_autograd(norm, x)


def test_channel_moments_are_stable_under_a_large_offset():
    x = 1e4 + torch.randn(4096, 2, dtype=torch.float32)
    mean, var = channel_moments(x)
    torch.testing.assert_close(var, x.double().var(0, unbiased=False).float(), rtol=1e-3, atol=0)
    assert mean.dtype == torch.float32


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    """One process of a gloo group: initialise ActNorm on this rank's part of the data, save its parameters."""
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        norm = ActNorm(3).train()
        norm(shifted_batch(32, 3)[rank * 16 : (rank + 1) * 16] + rank)  # different statistics per rank
        torch.save({"loc": norm.loc.detach(), "log_scale": norm.log_scale.detach()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_actnorm_init_is_all_reduced_under_ddp(tmp_path):
    """Two processes (this one as rank 0 and one spawned) end with the statistics of the union."""
    out, store = str(tmp_path / "params"), str(tmp_path / "store")
    child = mp.get_context("spawn").Process(target=_ddp_worker, args=(1, 2, store, out))
    child.start()
    try:
        _ddp_worker(0, 2, store, out)
    finally:
        child.join(timeout=60)
    assert child.exitcode == 0
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    x = shifted_batch(32, 3)
    x = torch.cat([x[:16], x[16:] + 1])  # both ranks' batches together
    assert torch.equal(ranks[0]["loc"], ranks[1]["loc"])
    assert torch.equal(ranks[0]["log_scale"], ranks[1]["log_scale"])
    torch.testing.assert_close(ranks[0]["loc"], x.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ranks[0]["log_scale"], x.std(0, unbiased=False).log(), rtol=1e-5, atol=1e-5)
