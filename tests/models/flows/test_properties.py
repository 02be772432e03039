"""Normalizing flows on random, non-identity parameters: invertibility, exact log-densities,
normalisation, sampling, numerical safety, conditioning and configuration errors."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.data.targets import midpoint_grid
from dgm.errors import ConfigError, DataError
from dgm.models.flows.base import standard_normal_log_prob
from dgm.models.size import MAX_PARAMETERS, count_parameters
from dgm.nn.bijectors import ActNorm, jacobian_ladj
from dgm.registry import build_from_dict, config_dict, get, make_config
from tests.models.flows import PRESETS, SHAPES, labels, make_flow
from tests.nn.bijectors import assert_ladj_matches_autograd, assert_round_trip

CASES = [(p, s, c) for p in PRESETS for s in SHAPES for c in (False, True)]
IDS = [f"{p}-{s}{'-cond' if c else ''}" for p, s, c in CASES]


def event_batch(model, n: int = 4, seed: int = 1, scale: float = 1.5) -> torch.Tensor:
    """Points (n, *event) as the flow sees them, in the model's dtype."""
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn((n, *model.event_shape), generator=gen, dtype=model.dtype)


@pytest.mark.parametrize("preset, shape, conditional", CASES, ids=IDS)
def test_inverse_reconstructs_and_log_dets_match_autograd(preset, shape, conditional):
    model = make_flow(preset, SHAPES[shape], conditional)
    x = event_batch(model)
    cond = labels(len(x), conditional)
    assert_round_trip(model.flow, x, cond)
    assert_ladj_matches_autograd(model.flow, x, cond)
    z, _ = model.flow(x, cond)
    expected = standard_normal_log_prob(z) + jacobian_ladj(model.flow, x, cond)
    log_p = model.log_prob(x.reshape(len(x), *SHAPES[shape]), cond)
    torch.testing.assert_close(log_p, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("preset", PRESETS)
def test_a_2d_density_integrates_to_one(preset):
    model = make_flow(preset, (2,), conditional=True)
    cond = torch.tensor([1])
    x = model.sample(20_000, cond=cond, generator=torch.Generator().manual_seed(0))
    low, high = x.min().item() - 2.0, x.max().item() + 2.0  # the samples' box, with room for the tails
    grid, area = midpoint_grid(low, high, (high - low) / 500)
    with torch.no_grad():
        mass = model.log_prob(grid, cond.expand(len(grid))).exp().sum().item() * area
    assert mass == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("preset, shape, conditional", CASES, ids=IDS)
def test_samples_scored_by_log_prob_agree_with_the_density_of_sampling(preset, shape, conditional):
    model = make_flow(preset, SHAPES[shape], conditional)
    cond = labels(32, conditional)
    x, log_p = model.sample_and_log_prob(32, cond, generator=torch.Generator().manual_seed(0))
    assert x.shape == (32, *SHAPES[shape])
    torch.testing.assert_close(model.log_prob(x, cond), log_p, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("preset, shape", [(p, s) for p in PRESETS for s in SHAPES])
def test_no_nan_or_inf_far_from_the_data(preset, shape, dtype):
    model = make_flow(preset, SHAPES[shape], conditional=True, dtype=dtype).train()
    for layer in model.modules():  # keep the random parameters instead of a fit to this batch
        if isinstance(layer, ActNorm):
            layer.initialized.fill_(True)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(4, *[1] * len(SHAPES[shape]))
    x = (1e4 * signs * torch.ones(4, *SHAPES[shape])).to(dtype)
    x[1::2, ..., 0] = 0.0  # some dimensions far out, others at the origin
    log_p = model.log_prob(x, labels(4, True))
    assert torch.isfinite(log_p).all()
    (-log_p.mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_splines_are_the_identity_in_their_tails(dtype):
    model = make_flow("nsf", (3,), dtype=dtype)  # couplings without LU: tails stay tails
    norm = model.flow.bijectors[0]
    bound = model.config.bound
    signs = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]], dtype=dtype)
    # points whose standardised coordinates are all beyond the bound, one just so
    standardised = signs * torch.tensor([[bound + 1e-3], [2 * bound], [1e3]], dtype=dtype)
    x = norm.inverse(standardised)[0].detach()
    z, ladj_norm = norm(x)
    expected = standard_normal_log_prob(z) + ladj_norm
    log_p = model.log_prob(x)
    assert torch.isfinite(log_p).all()
    torch.testing.assert_close(log_p, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.flow.inverse(model.flow(x)[0])[0], x)


@pytest.mark.parametrize("preset, shape", [(p, s) for p in PRESETS for s in SHAPES])
def test_temperature_zero_and_the_generator_fix_the_samples(preset, shape):
    model = make_flow(preset, SHAPES[shape], dtype=torch.float32)
    mode = model.sample(3, generator=torch.Generator().manual_seed(0), temperature=0.0)
    image_of_zero = model.flow.inverse(torch.zeros(1, *model.event_shape))[0].reshape(1, *SHAPES[shape])
    torch.testing.assert_close(mode, image_of_zero.expand_as(mode))
    a = model.sample(4, generator=torch.Generator().manual_seed(5))
    b = model.sample(4, generator=torch.Generator().manual_seed(5))
    cooler = model.sample(4, generator=torch.Generator().manual_seed(5), temperature=0.5)
    assert torch.equal(a, b) and not torch.allclose(a, cooler)
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=-1.0)


@pytest.mark.parametrize("preset", ["nsf", "nsf-ar-lu"])
def test_a_conditional_nsf_samples_and_scores_by_label(preset):
    model = make_flow(preset, (3,), conditional=True, dtype=torch.float32)
    draws = [model.sample(64, cond=torch.tensor(k), generator=torch.Generator().manual_seed(0)) for k in range(3)]
    assert not torch.allclose(draws[0], draws[1], atol=1e-3) and not torch.allclose(draws[1], draws[2], atol=1e-3)
    x = draws[0]
    assert not torch.allclose(model.log_prob(x, torch.tensor(0)), model.log_prob(x, torch.tensor(1)))
    with pytest.raises(ConfigError, match="cond"):
        model.sample(2)


def test_standardize_fits_an_actnorm_to_the_first_training_batch():
    info = DataInfo((2,), "continuous")
    model = dgm.build("nsf", data=info).train()
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([50.0, 0.1]) + 100.0
    model.loss(x)
    norm = model.flow.bijectors[0]
    assert isinstance(norm, ActNorm) and bool(norm.initialized)
    z = norm(x)[0].detach()
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(2), atol=1e-4, rtol=0)
    bare = dgm.build("nsf", data=info, standardize=False)
    assert not any(isinstance(m, ActNorm) for m in bare.modules())


@pytest.mark.parametrize("name", ["realnvp", "glow"])
def test_images_that_cannot_be_squeezed_are_refused_with_the_fix(name):
    with pytest.raises(DataError, match=r"multiples of 4.*size=N.*levels=1"):
        dgm.build(name, data=DataInfo((1, 14, 10), "continuous"))
    with pytest.raises(DataError, match=r"size=N") as info:
        dgm.build(name, data=DataInfo((1, 7, 7), "continuous"), levels=1)
    assert "--set levels" not in str(info.value)  # no number of levels fits a 7x7 image
    assert dgm.build(name, data=DataInfo((1, 14, 10), "continuous"), levels=1).sample(1).shape == (1, 1, 14, 10)


def test_bad_flow_configs_are_refused():
    vector = DataInfo((2,), "continuous")
    with pytest.raises(ConfigError, match="kind=autoregressive"):
        dgm.build("nsf", data=DataInfo((1,), "continuous"))
    assert dgm.build("nsf", data=DataInfo((1,), "continuous"), kind="autoregressive").sample(2).shape == (2, 1)
    for name, key in [("nsf", "bins"), ("nice", "layers"), ("maf", "layers"), ("glow", "depth"), ("realnvp", "layers")]:
        with pytest.raises(ConfigError, match=key):
            dgm.build(name, data=vector, **{key: 0})
    with pytest.raises(ConfigError, match="levels"):
        dgm.build("glow", data=DataInfo((1, 8, 8), "continuous"), levels=0)
    for name in ("realnvp", "glow"):  # a zero bound would clamp every log-scale to 0 / 0
        with pytest.raises(ConfigError, match=r"scale_bound=0\.0"):
            dgm.build(name, data=vector, scale_bound=0.0)


def test_nsf_conditioners_are_residual_for_couplings_only_and_old_runs_keep_theirs():
    vector = DataInfo((2,), "continuous")
    assert dgm.build("nsf", data=vector).config.residual is True
    assert dgm.build("nsf", data=vector, residual=False).config.residual is False
    assert dgm.build("nsf", data=vector, kind="autoregressive").config.residual is False
    with pytest.raises(ConfigError, match="residual=true is for kind=coupling"):
        dgm.build("nsf", data=vector, kind="autoregressive", residual=True)
    saved = config_dict(dgm.build("nsf", data=vector, residual=False))
    saved.pop("residual")  # a run saved before the field existed
    assert build_from_dict("nsf", saved).config.residual is False


@pytest.mark.parametrize("name", ["realnvp", "maf", "nsf"])
def test_toy_defaults_have_at_most_50_000_parameters(name):
    model = dgm.build(name, data=DataInfo((2,), "continuous"))
    assert 10_000 < sum(p.numel() for p in model.parameters()) <= 50_000


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", ["realnvp", "glow"])
def test_image_defaults_fit_the_parameter_limit(name, shape):
    count = count_parameters(get(name), make_config(name, DataInfo(shape, "continuous")))
    assert count is not None and 50_000 < count <= MAX_PARAMETERS


@pytest.mark.parametrize("preset", PRESETS)
def test_saturated_pixels_train_to_a_finite_loss(preset):
    """Pixels at both ends of [0, 256) and a border whose spread is a thousandth of a grey level:
    the loss is finite and falls. (An input normalisation trained in the data's units would be
    thrown off the border by every Adam step, and the loss would rise.)"""
    name, overrides = PRESETS[preset]
    model = dgm.build(name, data=DataInfo((1, 4, 4), "continuous", num_classes=3), conditional=True, **overrides)
    gen = torch.Generator().manual_seed(0)
    x = torch.where(torch.rand(16, 1, 4, 4, generator=gen) < 0.5, 0.0, 255.0) + 0.999 * torch.rand(
        16, 1, 4, 4, generator=gen
    )
    x[:, 0, 0, :] = 1e-3 * torch.rand(16, 4, generator=gen)
    losses = []
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(5):
        loss = model.loss((x, labels(16, True)))["loss"]
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_iaf_on_many_dimensions_comes_with_a_note_on_its_slow_density():
    many = DataInfo((1, 8, 8), "continuous")
    logit = ("dequantize", "scale", "logit")
    assert dgm.build("iaf", data=DataInfo((2,), "continuous")).notes() == []
    assert dgm.build("maf", data=many).notes(logit) == []
    (note,) = dgm.build("iaf", data=many).notes(logit)
    assert "64 sequential network passes" in note and "use maf" in note


@pytest.mark.parametrize("name", ["nice", "maf", "iaf", "nsf"])
def test_flat_flows_on_images_without_logit_get_a_note_naming_the_transform(name):
    image, vector = DataInfo((1, 8, 8), "continuous"), DataInfo((64,), "continuous")
    notes = dgm.build(name, data=image).notes(("dequantize",))
    assert any("-t scale -t logit" in note for note in notes)
    for transforms in [("dequantize", "scale", "logit"), ("dequantize", "scale", "logit:0.001")]:
        assert not any("logit" in note for note in dgm.build(name, data=image).notes(transforms))
    # RealNVP's alpha = 0.05 leaves a dark pixel's noise a spread of 0.02 in logit space
    assert any("logit" in note for note in dgm.build(name, data=image).notes(("dequantize", "scale", "logit:0.05")))
    assert not any("logit" in note for note in dgm.build(name, data=vector).notes(()))


@pytest.mark.parametrize("name", ["realnvp", "glow"])
def test_convolutional_flows_share_a_channel_scale_and_get_no_logit_note(name):
    assert dgm.build(name, data=DataInfo((1, 8, 8), "continuous"), levels=1).notes(("dequantize",)) == []
