"""VAE family behaviour: gradients through the sample, conditioning, flow posteriors, β, IWAE."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.errors import ConfigError
from dgm.models.base import Batch

BINARY = dgm.DataInfo((1, 8, 8), "binary", 2, num_classes=3)


def test_gradients_reach_the_encoder_through_the_reparameterized_sample():
    torch.manual_seed(0)
    vae = dgm.build("vae", data=BINARY, latent_dim=3, hidden=(16,), channels=4)
    x = torch.randint(0, 2, (5, 1, 8, 8)).float()
    z, _, _ = vae.posterior_sample(x, k=1)
    vae.reconstruction_log_prob(x, z).sum().backward()  # the reconstruction term alone, no KL
    grads = [p.grad for p in vae.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_cvae_samples_change_with_the_label_and_not_with_the_same_one():
    torch.manual_seed(1)
    cvae = dgm.build("cvae", data=BINARY, latent_dim=2, hidden=(16,), channels=4).eval()
    assert cvae.conditional
    with torch.no_grad():
        cvae.embedding.weight.mul_(20)  # labels with a visible effect before training
    means = [cvae.decode(torch.zeros(1, 2), torch.tensor([c])) for c in range(3)]
    assert not torch.allclose(means[0], means[1], atol=1e-3)
    a = cvae.sample(4, cond=torch.tensor([0, 0, 0, 0]), generator=torch.Generator().manual_seed(5))
    b = cvae.sample(4, cond=torch.tensor([2, 2, 2, 2]), generator=torch.Generator().manual_seed(5))
    assert not torch.equal(a, b)
    with pytest.raises(ConfigError, match="needs cond"):
        cvae.sample(2)


@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_flow_posterior_log_q_is_the_change_of_variables(posterior):
    """log q(z_L | x) from the model equals log q_0(z_0) - log|det ∂z_L/∂z_0| by autograd."""
    torch.manual_seed(2)
    info = dgm.DataInfo((4,), "continuous")
    vae = dgm.build("vae", data=info, latent_dim=3, hidden=(8,), posterior=posterior, flow_layers=2).double()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(1, 4, dtype=torch.float64)
    mean, log_var, amortised, h = vae._encode(x, None)
    z0 = mean + (0.5 * log_var).exp() * torch.randn(1, 3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: vae.flow(v[None], amortised, h)[0][0], z0[0])
    _, ladj = vae.flow(z0, amortised, h)
    assert torch.allclose(ladj[0], torch.linalg.slogdet(jac)[1], atol=1e-8)
    assert abs(torch.linalg.slogdet(jac)[1].item()) > 1e-3  # not the identity


def test_beta_weighs_the_kl_and_iwae_refuses_a_beta():
    torch.manual_seed(3)
    x = torch.randint(0, 2, (6, 1, 8, 8)).float()
    out = {}
    for name in ("vae", "beta_vae"):
        torch.manual_seed(4)
        model = dgm.build(name, data=BINARY, latent_dim=3, hidden=(16,), channels=4)
        torch.manual_seed(5)
        out[name] = model.loss(Batch(x))
    assert torch.allclose(out["beta_vae"]["loss"] - out["vae"]["loss"], 3 * out["vae"]["kl"], rtol=1e-4)
    assert torch.allclose(out["beta_vae"]["nll_elbo"], out["vae"]["nll_elbo"])  # reported with β = 1
    with pytest.raises(ConfigError, match="beta"):
        dgm.build("iwae", data=BINARY, beta=2.0)


def test_iwae_loss_is_the_negative_k_sample_bound_and_at_most_the_negative_elbo():
    torch.manual_seed(6)
    iwae = dgm.build("iwae", data=BINARY, latent_dim=3, hidden=(16,), channels=4, iw_samples=50).eval()
    x = torch.randint(0, 2, (8, 1, 8, 8)).float()
    with torch.no_grad():
        torch.manual_seed(7)
        loss = iwae.loss(Batch(x))["loss"]
        torch.manual_seed(7)
        assert torch.allclose(loss, -iwae.log_prob(x, k=50).mean())
        elbo = iwae.elbo(x.repeat(200, 1, 1, 1)).mean()
    assert loss < -elbo


def test_ae_fits_a_gaussian_to_its_training_codes():
    torch.manual_seed(8)
    ae = dgm.build("ae", data=dgm.DataInfo((4,), "continuous"), latent_dim=2, hidden=(8,))
    x = torch.randn(256, 4) * 3 + 1
    ae.train()
    ae.loss(Batch(x))  # a training step moves the fitted Gaussian towards the batch's codes
    codes = ae.encode(x).detach()
    assert torch.allclose(ae.code_mean_ema, 0.01 * codes.mean(0), atol=1e-6)
    for _ in range(1000):  # 0.99^1000: the initial N(0, I) is forgotten
        ae.update_code_gaussian(codes)
    assert torch.allclose(ae.code_mean_ema, codes.mean(0), atol=1e-4)
    assert torch.allclose(ae.code_cov_ema, torch.cov(codes.t()), atol=1e-4)
    z = ae.prior_sample(20000, torch.Generator().manual_seed(0), 1.0)
    assert torch.allclose(z.mean(0), codes.mean(0), atol=0.05 * codes.std(0).max())


def test_dae_corrupts_only_in_training():
    torch.manual_seed(9)
    dae = dgm.build("dae", data=BINARY, latent_dim=2, hidden=(16,), noise_level=0.5, channels=4)
    x = torch.ones(4, 1, 8, 8)
    dae.eval()
    z_eval, _ = dae.training_code(x, None)
    assert torch.allclose(z_eval, dae.encode(x))
    dae.train()
    z_train, _ = dae.training_code(x, None)
    assert not torch.allclose(z_train, dae.encode(x))


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("vae", {"latent_dim": 0}, "latent_dim=0"),
        ("vae", {"posterior": "radial"}, "posterior must be"),
        ("vae", {"iw_samples": 0}, "iw_samples"),
        ("vae", {"beta": -1.0}, "beta"),
        ("vae", {"posterior": "iaf", "flow_layers": 0}, "flow_layers"),
        ("vae", {"net": "conv"}, "net=conv needs image data"),
        ("dae", {"noise": "flip"}, "flip noise is for binary"),
        ("dae", {"noise": "masking", "noise_level": 1.5}, "probability"),
        ("cae", {"contraction": -1.0}, "contraction"),
        ("ae", {"reconstruction": "l1"}, "mse"),
        ("vae", {"sigma": 0.0}, "sigma"),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(name, overrides, match):
    with pytest.raises(dgm.DgmError, match=match):
        dgm.build(name, data=dgm.DataInfo((4,), "continuous"), **overrides)


def test_conv_networks_fit_odd_colour_images():
    info = dgm.DataInfo((3, 13, 10), "discrete", 256)
    vae = dgm.build("vae", data=info, latent_dim=4, channels=4, hidden=(16,))
    x = vae.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 13, 10)
    assert vae.decode(torch.zeros(2, 4)).shape == (2, 3, 13, 10)
    assert torch.isfinite(vae.loss(Batch(x))["loss"])
