"""One suite every registered model must pass, at a tiny size, on every data type it accepts."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.models.base import Batch
from dgm.registry import get
from dgm.runs import RunRecord, load_model, save_weights, write_record

# Overrides that make each model tiny. A new model must add itself here (a test checks it).
TINY: dict[str, dict] = {
    "independent": {},
    "fvsbn": {},
    "made": {"hidden": (12, 12)},
    "nade": {"hidden": 8},
    "pixelcnn": {"channels": 8, "blocks": 1, "features": 8},
    "gated_pixelcnn": {"channels": 8, "layers": 2, "features": 8},
    "transformer": {"width": 8, "layers": 1, "heads": 2, "expansion": 2, "mixtures": 2},
    "wavenet": {"residual_channels": 4, "skip_channels": 4, "dilations": (1, 2)},
    "gmm": {"components": 3},
    "nice": {"layers": 2, "hidden": (8,)},
    "realnvp": {"layers": 2, "hidden": (8,), "couplings": 1, "channels": 4, "levels": 1},
    "glow": {"depth": 2, "hidden": (8,), "channels": 4, "levels": 1},
    "maf": {"layers": 2, "hidden": (8,)},
    "iaf": {"layers": 2, "hidden": (8,)},
    "nsf": {"layers": 2, "hidden": (8,), "bins": 4},
    "ae": {"latent_dim": 2, "hidden": (8,)},
    "dae": {"latent_dim": 2, "hidden": (8,)},
    "cae": {"latent_dim": 2, "hidden": (8,)},
    "vae": {"latent_dim": 2, "hidden": (8,), "posterior": "iaf", "flow_layers": 2, "flow_hidden": (8,)},
    "beta_vae": {"latent_dim": 2, "hidden": (8,), "posterior": "planar", "flow_layers": 2},
    "cvae": {"latent_dim": 2, "hidden": (8,)},
    "iwae": {"latent_dim": 2, "hidden": (8,)},
    "ddpm": {"steps": 10, "channels": 8, "mults": (1,), "heads": 1, "hidden": 8, "layers": 1, "time_dim": 8},
    "gan": {"latent_dim": 2, "hidden": 8, "layers": 1},
    "dcgan": {"latent_dim": 4, "features": 4},
    "cgan": {"latent_dim": 4, "features": 4, "hidden": 8, "layers": 1},
}

INFOS = {
    "binary": DataInfo((1, 3, 3), "binary", 2, num_classes=3),
    "discrete": DataInfo((1, 3, 3), "discrete", 4, num_classes=3),
    "continuous": DataInfo((4,), "continuous", None, num_classes=3),
}


SEQUENCE_ONLY = {"wavenet"}  # models of 1-D data: the suite gives them vectors of the image's size
CONVOLUTIONAL = {"dcgan"}  # models of images of at least 4x4: the suite gives them 4x4 images


def info_for(name: str, info: DataInfo) -> DataInfo:
    """``info``, flattened to a vector for models that take 1-D data only, and 4x4 images for
    strided convolutions."""
    if name in SEQUENCE_ONLY and info.is_image:
        return DataInfo((info.dim,), info.support, info.levels, info.num_classes)
    if name in CONVOLUTIONAL and info.is_image:
        return DataInfo((info.shape[0], 4, 4), info.support, info.levels, info.num_classes)
    return info


def cases():
    out = []
    for row in dgm.list_models():
        cls = get(row["name"])
        for support in sorted(cls.supports):
            out.append((row["name"], support, False))
            if cls.can_condition:
                out.append((row["name"], support, True))
    return out


CASES = cases()
IDS = [f"{n}-{s}{'-cond' if c else ''}" for n, s, c in CASES]


def make(name: str, support: str, conditional: bool, seed: int = 0):
    torch.manual_seed(seed)
    info = info_for(name, INFOS[support])
    model = dgm.build(name, data=info, conditional=conditional, **TINY.get(name, {}))
    with torch.no_grad():  # random, non-identity parameters
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def make_batch(info: DataInfo, n: int = 6, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    if info.support == "continuous":
        x = torch.randn((n, *info.shape), generator=g)
    else:
        x = torch.randint(0, info.levels, (n, *info.shape), generator=g).float()
    return Batch(x, torch.randint(0, info.num_classes, (n,), generator=g))


def cond_for(model, batch: Batch):
    return batch.cond if model.conditional else None


def test_every_registered_model_has_a_tiny_config():
    names = {row["name"] for row in dgm.list_models()}
    assert names <= set(TINY), f"add {sorted(names - set(TINY))} to TINY"


@pytest.mark.parametrize("name", sorted(TINY))
def test_declared_capabilities(name):
    cls = get(name)
    caps = cls.capabilities()
    assert caps["density"] in ("exact", "bound", "none")
    assert caps["family"] and caps["summary"]
    assert cls.supports and cls.supports <= {"binary", "discrete", "continuous"}
    assert len(cls.parts) >= 1


@pytest.mark.parametrize("name, support, conditional", CASES, ids=IDS)
def test_loss_is_finite_and_every_parameter_gets_a_gradient(name, support, conditional):
    model = make(name, support, conditional).train()
    batch = make_batch(model.config.data)
    batch = Batch(batch.x, cond_for(model, batch))
    for part in model.parts:
        model.zero_grad()
        out = model.loss(batch, part=part if len(model.parts) > 1 else None)
        assert "loss" in out and out["loss"].dim() == 0 and torch.isfinite(out["loss"])
        out["loss"].backward()
        for pname, p in model.named_parameters():
            if any(p is q for q in model.part_parameters(part)):
                assert p.grad is not None, f"{pname} got no gradient"
                assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


@pytest.mark.parametrize("name, support, conditional", CASES, ids=IDS)
def test_samples_have_the_data_shape_and_support(name, support, conditional):
    model = make(name, support, conditional).eval()
    info = model.config.data
    cond = torch.tensor([0, 1, 2, 0, 1]) if conditional else None
    x = model.sample(5, cond=cond, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *info.shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    if support != "continuous":
        assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= info.levels - 1


@pytest.mark.parametrize("name, support, conditional", CASES, ids=IDS)
def test_same_generator_gives_same_samples(name, support, conditional):
    model = make(name, support, conditional).eval()
    cond = torch.tensor([2, 1, 0, 2]) if conditional else None
    a = model.sample(4, cond=cond, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, cond=cond, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, cond=cond, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    if support == "continuous":
        assert not torch.equal(a, c)


@pytest.mark.parametrize("name, support, conditional", CASES, ids=IDS)
def test_save_load_round_trip(tmp_path, name, support, conditional):
    model = make(name, support, conditional).eval()
    write_record(tmp_path, RunRecord(model=name, config=dgm.registry.config_dict(model), data={"spec": "none"}))
    save_weights(tmp_path, model)
    loaded = load_model(tmp_path)
    batch = make_batch(model.config.data)
    cond = cond_for(model, batch)
    assert type(loaded) is type(model) and loaded.config == model.config
    if model.density == "exact":
        assert torch.allclose(loaded.log_prob(batch.x, cond), model.log_prob(batch.x, cond))
    torch.manual_seed(3)
    expected = model.loss(Batch(batch.x, cond))["loss"]
    torch.manual_seed(3)
    assert torch.allclose(loaded.loss(Batch(batch.x, cond))["loss"], expected)


@pytest.mark.parametrize(
    "name, support, conditional",
    [c for c in CASES if get(c[0]).density == "exact"],
    ids=[i for i, c in zip(IDS, CASES, strict=False) if get(c[0]).density == "exact"],
)
def test_exact_log_prob_is_per_example_and_at_most_zero_for_discrete_data(name, support, conditional):
    model = make(name, support, conditional).eval()
    batch = make_batch(model.config.data)
    log_p = model.log_prob(batch.x, cond_for(model, batch))
    assert log_p.shape == (batch.x.shape[0],) and torch.isfinite(log_p).all()
    if support != "continuous":
        assert (log_p <= 1e-6).all()  # a probability mass is at most 1


BOUND = [c for c in CASES if get(c[0]).density == "bound"]


@pytest.mark.parametrize(
    "name, support, conditional", BOUND, ids=[i for i, c in zip(IDS, CASES, strict=True) if c in BOUND]
)
def test_elbo_is_per_example_and_at_most_zero_for_discrete_data(name, support, conditional):
    model = make(name, support, conditional).eval()
    batch = make_batch(model.config.data)
    with torch.no_grad():
        elbo = model.elbo(batch.x, cond_for(model, batch))
    assert elbo.shape == (batch.x.shape[0],) and torch.isfinite(elbo).all()
    if support != "continuous":
        assert (elbo <= 1e-4).all()  # a lower bound on the log of a probability mass


@pytest.mark.parametrize("name", sorted(TINY))
def test_data_the_model_cannot_take_is_refused_with_the_fix(name):
    cls = get(name)
    refused = [s for s in ("binary", "discrete", "continuous") if s not in cls.supports]
    for support in refused:
        with pytest.raises(dgm.DataError, match="--transform|models that take"):
            dgm.build(name, data=info_for(name, INFOS[support]))
