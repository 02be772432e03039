"""The GAN models in the engine: alternating steps that leave the other player alone, the n-critic
cycle, per-part learning rates, the automatic choices, the refusals, and a tiny training that must
beat its own starting point."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.gan.gan import GAN
from dgm.train.config import TrainConfig
from dgm.train.module import GenerativeTask
from tests.conftest import bare_trainer, write_colour_folder

VECTORS = DataInfo((2,), "continuous", num_classes=3)
TINY = {"latent_dim": 2, "hidden": 16, "layers": 2}


class Watched(GAN):
    """A GAN that records, when each part's loss is computed, the parameters of the other part."""

    name = "watched"

    def __init__(self, config):
        super().__init__(config)
        self.seen: list[tuple[str, dict, dict]] = []

    def loss(self, batch, part=None):
        if part is not None:
            d = {k: v.detach().clone() for k, v in self.discriminator.state_dict().items()}
            g = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}
            self.seen.append((part, d, g))
        return super().loss(batch, part)


def _fit(model, data: torch.Tensor, batches: int, **train) -> GenerativeTask:
    task = GenerativeTask(model, TrainConfig(lr=1e-2, **train))
    trainer = bare_trainer(limit_train_batches=batches)
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=8))
    return task


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_a_discriminator_step_leaves_the_generator_alone_and_the_reverse(one_thread):
    torch.manual_seed(0)
    model = Watched(GAN.Config(data=DataInfo((2,), "continuous"), **TINY))
    _fit(model, torch.randn(64, 2) + 2.0, batches=3)
    parts = [p for p, _, _ in model.seen]
    assert parts == ["discriminator", "generator"] * 3
    for (p0, d0, g0), (_, d1, g1) in zip(model.seen, model.seen[1:], strict=False):
        if p0 == "discriminator":  # between D's loss and G's: only D's step
            assert _same(g0, g1) and not _same(d0, d1)
        else:  # between G's loss and the next D's: only G's step
            assert _same(d0, d1) and not _same(g0, g1)


def test_the_generator_steps_once_per_n_critic_discriminator_steps(one_thread):
    model = Watched(GAN.Config(data=DataInfo((2,), "continuous"), loss="wasserstein-gp", n_critic=3, **TINY))
    task = _fit(model, torch.randn(80, 2), batches=9)
    parts = [p for p, _, _ in model.seen]
    assert parts == (["discriminator"] * 3 + ["generator"]) * 3
    assert int(model.d_steps) == 9
    assert task.trainer.global_step == 12  # optimizer steps: 9 D + 3 G


def test_each_part_gets_its_own_learning_rate_when_given():
    model = dgm.build("gan", data=DataInfo((2,), "continuous"), lr_discriminator=4e-4, **TINY)
    d_opt, g_opt = GenerativeTask(model, TrainConfig(lr=1e-4)).configure_optimizers()
    assert {g["lr"] for g in d_opt.param_groups} == {4e-4}
    assert {g["lr"] for g in g_opt.param_groups} == {1e-4}
    d_ids = {id(p) for g in d_opt.param_groups for p in g["params"]}
    g_ids = {id(p) for g in g_opt.param_groups for p in g["params"]}
    assert d_ids == {id(p) for p in model.discriminator.parameters()}
    assert g_ids == {id(p) for p in model.generator.parameters()} and not d_ids & g_ids


@pytest.mark.parametrize(
    ("name", "info", "expected"),
    [
        ("gan", VECTORS, {"architecture": "mlp", "norm": "none", "latent_dim": 8, "n_critic": 1}),
        (
            "dcgan",
            DataInfo((1, 28, 28), "discrete", 256),
            {"architecture": "dcgan", "norm": "batch", "latent_dim": 100},
        ),
        ("cgan", DataInfo((1, 8, 8), "discrete", 17, num_classes=10), {"architecture": "dcgan", "conditional": True}),
        ("cgan", VECTORS, {"architecture": "mlp"}),
        ("dcgan", DataInfo((3, 64, 64), "discrete", 256), {"features": 64}),
        ("dcgan", DataInfo((1, 28, 28), "discrete", 256), {"features": 32}),
    ],
)
def test_automatic_choices_are_made_from_the_data_and_saved(name, info, expected):
    config = dgm.build(name, data=info).config
    assert {k: getattr(config, k) for k in expected} == expected


def test_wasserstein_gp_defaults_to_five_critic_steps_and_no_batch_norm():
    config = dgm.build("dcgan", data=DataInfo((1, 8, 8), "discrete", 17), loss="wasserstein-gp").config
    assert config.n_critic == 5 and config.norm == "layer"


@pytest.mark.parametrize(
    ("name", "info", "options", "error", "match"),
    [
        ("gan", VECTORS, {"loss": "hinge", "label_smoothing": 0.1}, ConfigError, "has none"),
        ("gan", VECTORS, {"loss": "wgan"}, ConfigError, "non-saturating"),
        ("dcgan", DataInfo((1, 8, 8), "discrete", 17), {"loss": "wasserstein-gp", "norm": "batch"}, ConfigError, "per"),
        ("dcgan", DataInfo((4,), "discrete", 4), {}, DataError, "use gan"),
        ("dcgan", DataInfo((1, 8, 8), "continuous"), {}, DataError, "takes binary or discrete"),
        ("dcgan", DataInfo((1, 3, 3), "discrete", 4), {}, DataError, "at least 4x4"),
        ("gan", VECTORS, {"label_flip": 0.7}, ConfigError, "opposite"),
        ("gan", VECTORS, {"dropout": 1.0}, ConfigError, r"\[0, 1\)"),
        ("gan", VECTORS, {"instance_noise": -1.0}, ConfigError, ">= 0"),
        ("gan", DataInfo((2,), "continuous"), {"conditional": True}, DataError, "labelled"),
        ("cgan", DataInfo((2,), "continuous"), {}, DataError, "use gan"),
    ],
)
def test_bad_options_and_data_are_refused_with_the_fix(name, info, options, error, match):
    with pytest.raises(error, match=match):
        dgm.build(name, data=info, **options)


def test_the_step_count_is_saved_with_the_weights_so_a_resume_continues_the_cycle_and_the_annealing():
    model = dgm.build("gan", data=DataInfo((2,), "continuous"), instance_noise=0.5, noise_steps=10, **TINY)
    model.d_steps.fill_(4)
    again = dgm.build("gan", data=DataInfo((2,), "continuous"), instance_noise=0.5, noise_steps=10, **TINY)
    again.load_state_dict(model.state_dict())
    assert int(again.d_steps) == 4 and again.noise_std() == pytest.approx(0.3)


def test_instance_noise_and_targets_reach_the_discriminator_step():
    torch.manual_seed(0)
    model = dgm.build("gan", data=DataInfo((2,), "continuous"), instance_noise=0.5, noise_steps=4, **TINY).train()
    x = torch.randn(32, 2)
    stds = [float(model.loss(x, part="discriminator").get("noise_std", 0.0)) for _ in range(5)]
    assert stds == pytest.approx([0.5, 0.375, 0.25, 0.125, 0.0])
    smooth = dgm.build("gan", data=DataInfo((2,), "continuous"), label_smoothing=0.2, **TINY).train()
    plain = dgm.build("gan", data=DataInfo((2,), "continuous"), **TINY).train()
    plain.load_state_dict(smooth.state_dict())
    torch.manual_seed(1)
    a = smooth.loss(x, part="discriminator")["loss"]
    torch.manual_seed(1)
    b = plain.loss(x, part="discriminator")["loss"]
    assert not torch.isclose(a, b)


def test_conditional_samples_follow_their_labels_shapes_and_levels():
    model = dgm.build("cgan", data=DataInfo((1, 8, 8), "discrete", 17, num_classes=10), features=8)
    x = model.sample(5, cond=torch.arange(5), generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 8, 8) and x.min() >= 0 and x.max() <= 16 and torch.equal(x, x.round())
    with pytest.raises(ConfigError, match="cond"):
        model.sample(5)


def test_temperature_scales_the_latents():
    model = dgm.build("gan", data=DataInfo((2,), "continuous"), **TINY)
    z = model.prior_sample(20_000, torch.Generator().manual_seed(0), temperature=0.5)
    assert z.std().item() == pytest.approx(0.5, rel=0.03)
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=-1.0)


def test_a_short_training_on_gmm8_covers_more_modes_and_lowers_the_mmd(tmp_path, one_thread):
    from dgm.data import load_dataset
    from dgm.eval.toy2d import toy2d_metrics
    from dgm.train import fit

    data = load_dataset("toy2d:gmm8?n=4000&n_val=256&n_test=2000")
    model = dgm.build("gan", data=data, hidden=64, layers=2)
    torch.manual_seed(0)
    before = toy2d_metrics(dgm.build("gan", data=data, hidden=64, layers=2), data, n=2000, kl=False)
    run = fit(
        model,
        data,
        TrainConfig(steps=1200, lr=1e-3, betas=(0.5, 0.999), batch_size=64, keep="last"),
        out=tmp_path / "run",
        log=lambda m: None,
    )
    after = toy2d_metrics(dgm.load(run), data, n=2000, kl=False)
    assert after["modes_covered"]["value"] >= 5 > before["modes_covered"]["value"]
    assert after["mmd_rbf"]["value"] < 0.2 * before["mmd_rbf"]["value"]


def test_a_conditional_dcgan_trains_and_samples_a_generated_64x64_colour_folder(tmp_path, one_thread):
    """The paper's 64x64x3 DCGAN shape from a user's folder: of two classes (a smoke-sized run)."""
    from dgm.train import fit

    data = dgm.load_dataset(f"folder:{write_colour_folder(tmp_path / 'pics', 64, 64, per_class=5)}")
    assert data.info.shape == (3, 64, 64)
    model = dgm.build("cgan", data=data, features=4)
    assert model.config.architecture == "dcgan" and model.config.latent_dim == 100
    run = fit(model, data, TrainConfig(steps=4, batch_size=4, keep="last"), out=tmp_path / "run", log=lambda m: None)
    x = dgm.load(run).sample(4, cond=torch.tensor([0, 1, 0, 1]), generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 64, 64) and torch.equal(x, x.round()) and 0 <= x.min() and x.max() <= 255
    assert (run / "samples.png").exists() and (run / "training.png").exists()
