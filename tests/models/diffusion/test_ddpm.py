"""The ddpm model: guidance, sampling options, inpainting, the bound, and a tiny training."""

from __future__ import annotations

import json
import math

import pytest
import torch

import dgm
from dgm.errors import ConfigError, DataError
from dgm.models.base import Batch
from tests.conftest import write_colour_folder
from tests.models.diffusion.tiny import TINY_IMAGE, TINY_VECTOR, perturbed

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: a second thread costs more than it saves

VECTOR = dgm.DataInfo((2,), "continuous", None, num_classes=3)
IMAGE = dgm.DataInfo((1, 8, 8), "discrete", 17, num_classes=3)


def test_guidance_zero_is_unconditional_and_one_conditional():
    model = perturbed(dgm.build("ddpm", data=VECTOR, conditional=True, **TINY_VECTOR))
    x, t = torch.randn(6, 2), torch.full((6,), 7.0)
    cond = torch.tensor([0, 1, 2, 0, 1, 2])
    null = torch.full((6,), 3)
    with torch.no_grad():
        uncond, cond_out = model.net(x, t, null), model.net(x, t, cond)
        assert torch.allclose(model.output(x, t, cond, guidance=0.0), uncond)
        assert torch.allclose(model.output(x, t, cond, guidance=1.0), cond_out)
        assert torch.allclose(model.output(x, t, cond, guidance=3.0), uncond + 3 * (cond_out - uncond), atol=1e-5)
        assert not torch.allclose(uncond, cond_out)


def test_guided_sampling_differs_and_refuses_unconditional_models():
    model = perturbed(dgm.build("ddpm", data=VECTOR, conditional=True, **TINY_VECTOR))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = model.sample(4, cond=torch.tensor([0, 1, 2, 0]), generator=g(), guidance=1.0)
    b = model.sample(4, cond=torch.tensor([0, 1, 2, 0]), generator=g(), guidance=4.0)
    assert not torch.allclose(a, b)
    plain = perturbed(dgm.build("ddpm", data=VECTOR, **TINY_VECTOR))
    with pytest.raises(ConfigError, match="conditional=true"):
        plain.sample(2, guidance=3.0)


def test_label_dropout_trains_the_no_label_embedding():
    model = dgm.build("ddpm", data=VECTOR, conditional=True, label_dropout=0.5, **TINY_VECTOR).train()
    torch.manual_seed(0)
    model.loss(Batch(torch.randn(64, 2), torch.randint(0, 3, (64,))))["loss"].backward()
    null_grad = model.net.label.weight.grad[3]
    assert null_grad.abs().sum() > 0
    model.zero_grad()
    model.eval()  # no dropout outside training
    model.loss(Batch(torch.randn(64, 2), torch.randint(0, 3, (64,))))["loss"].backward()
    assert model.net.label.weight.grad[3].abs().sum() == 0


@pytest.mark.parametrize("sampler,steps", [("ddpm", 20), ("ddpm", 5), ("ddim", 20), ("ddim", 3)])
def test_every_sampler_works_with_any_steps(sampler, steps):
    model = perturbed(dgm.build("ddpm", data=IMAGE, **TINY_IMAGE))
    x = model.sample(3, generator=torch.Generator().manual_seed(0), sampler=sampler, steps=steps)
    assert x.shape == (3, 1, 8, 8) and torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 16


def test_ddim_eta_zero_is_deterministic_given_x_T():
    model = perturbed(dgm.build("ddpm", data=VECTOR, **TINY_VECTOR))
    a = model.sample(5, generator=torch.Generator().manual_seed(1), sampler="ddim", steps=7, eta=0.0)
    b = model.sample(5, generator=torch.Generator().manual_seed(1), sampler="ddim", steps=7, eta=0.0)
    c = model.sample(5, generator=torch.Generator().manual_seed(1), sampler="ddim", steps=7, eta=1.0)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_sampling_option_errors():
    model = perturbed(dgm.build("ddpm", data=VECTOR, **TINY_VECTOR))
    with pytest.raises(ConfigError, match="--sampler must be one of"):
        model.sample(2, sampler="euler")
    with pytest.raises(ConfigError, match=r"--steps must be an integer in 1\.\.20"):
        model.sample(2, steps=50)
    with pytest.raises(ConfigError, match="--eta is DDIM's"):
        model.sample(2, sampler="ddpm", eta=0.5)
    with pytest.raises(ConfigError, match="eta must be in"):
        model.sample(2, sampler="ddim", eta=2.0)


def test_inpainting_keeps_the_known_pixels():
    model = perturbed(dgm.build("ddpm", data=IMAGE, **TINY_IMAGE))
    x = torch.randint(0, 17, (2, 1, 8, 8)).float()
    keep = torch.zeros(1, 1, 8, 8)
    keep[..., :4] = 1
    out = model.inpaint(x, keep, generator=torch.Generator().manual_seed(0), steps=5, resample=2)
    assert torch.equal(out[..., :4], x[..., :4])
    assert out.shape == x.shape and torch.equal(out, out.round())


def test_bound_of_discrete_images_is_a_nonnegative_nll_in_nats():
    model = perturbed(dgm.build("ddpm", data=IMAGE, **TINY_IMAGE))
    x = torch.randint(0, 17, (4, 1, 8, 8)).float()
    parts = model.nll_bound(x, generator=torch.Generator().manual_seed(0))
    assert parts["nll"].shape == (4,) and bool(torch.isfinite(parts["nll"]).all())
    for key in ("prior", "diffusion", "decoder"):  # KLs and a discrete -log P: each >= 0
        assert bool((parts[key] >= -1e-6).all()), key
    assert "T = 20 steps" in model.bound_note() and "all 19 KL terms" in model.bound_note()


def test_vector_bound_counts_the_scale():
    base = perturbed(dgm.build("ddpm", data=VECTOR, **TINY_VECTOR))
    scaled = dgm.build("ddpm", data=VECTOR, scale=2.0, **TINY_VECTOR)
    scaled.load_state_dict(base.state_dict())
    x = torch.randn(5, 2)
    a = base.nll_bound(x, generator=torch.Generator().manual_seed(0))["nll"]
    b = scaled.nll_bound(2 * x, generator=torch.Generator().manual_seed(0))["nll"]
    assert torch.allclose(b, a + 2 * math.log(2.0), atol=1e-4)  # density of 2x: p(x) / 2^D


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("schedule", "sigmoid", "'linear' | 'quadratic' | 'cosine'"),
        ("prediction", "score", "'eps' | 'x0' | 'v'"),
        ("variance", "learned", "'beta' | 'posterior'"),
        ("sampler", "euler", "'ddpm' | 'ddim'"),
        ("steps", 0, "steps to be a positive integer"),
        ("eta", 1.5, r"eta in \[0, 1\]"),
        ("label_dropout", 1.0, "label_dropout must be below 1"),
        ("guidance", -1.0, "guidance must be a number >= 0"),
        ("scale", 0.0, "scale must be a positive number"),
        ("time_dim", 7, "even time_dim"),
        ("mults", (1, 0), "mults must be positive"),
        ("patch", -1, "patch must be 0"),
        ("bound_terms", -1, "bound_terms"),
    ],
)
def test_bad_config_values_are_refused(field, value, match):
    with pytest.raises(ConfigError, match=match):
        dgm.build("ddpm", data=VECTOR, **{**TINY_VECTOR, field: value})


def test_sequences_are_refused_with_the_models_that_take_them():
    text = dgm.DataInfo((16,), "discrete", 30, vocab="abcdefghijklmnopqrstuvwxyz .,!")
    with pytest.raises(DataError, match="transformer or wavenet"):
        dgm.build("ddpm", data=text)


def test_tiny_training_on_a_toy_target_beats_a_gaussian():
    """600 Adam steps on gmm8: the bound on KL(p || q) is far below a single Gaussian's."""
    from dgm.eval.toy2d import kl_to_target

    data = dgm.load_dataset("toy2d:gmm8")
    x = data.split("train").x
    torch.manual_seed(0)
    model = dgm.build("ddpm", data=data, steps=100, hidden=64, layers=2, prediction="v")
    gaussian = dgm.build("gmm", data=data, components=1)
    for m, lr in ((model, 3e-3), (gaussian, 3e-2)):
        opt = torch.optim.Adam(m.parameters(), lr)
        for _ in range(600 if m is model else 200):
            loss = m.loss(Batch(x[torch.randint(0, len(x), (256,))]))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    kl = kl_to_target(model.eval(), data, n=2000).kl
    assert kl < 0.5 * kl_to_target(gaussian.eval(), data, n=2000).kl


def test_trains_and_samples_a_generated_colour_folder(tmp_path):
    """A user's folder: of odd-sized RGB images in two classes: the whole run, with the EMA."""
    from dgm.train import TrainConfig, fit

    data = dgm.load_dataset(f"folder:{write_colour_folder(tmp_path / 'pics', 10, 14)}")
    assert data.info.shape == (3, 10, 14)
    model = dgm.build("ddpm", data=data, conditional=True, **TINY_IMAGE)
    run = fit(model, data, TrainConfig(steps=4, batch_size=8, ema=0.9), out=tmp_path / "run", log=lambda m: None)
    loaded = dgm.load(run)
    x = loaded.sample(4, cond=torch.tensor([0, 1, 0, 1]), generator=torch.Generator().manual_seed(0), steps=5)
    assert x.shape == (4, 3, 10, 14) and torch.equal(x, x.round()) and 0 <= x.min() and x.max() <= 255
    assert (run / "samples.png").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "T = 20 steps" in metrics["nll_elbo"]["what"] and metrics["ema_decay"]["value"] == 0.9


def test_sizes_chosen_from_the_image_are_saved_in_the_config():
    model = dgm.build("ddpm", data=IMAGE, channels=8, heads=1)
    assert model.config.mults and model.config.patch >= 1
    again = dgm.build("ddpm", **{**dgm.registry.config_dict(model), "data": IMAGE})
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
