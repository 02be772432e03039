"""The Gaussian-mixture baseline: exact density, exact sampling, stable scales, data-dependent start."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

import dgm
from dgm.data.info import DataInfo
from dgm.data.targets import midpoint_grid
from dgm.errors import ConfigError
from dgm.models.baseline.gmm import GMM, GMMConfig, kmeans_pp_seeds
from dgm.runs import RunRecord, load_model, save_weights, write_record

COVARIANCES = ("diag", "full")


pytestmark = pytest.mark.usefixtures("one_thread")


def perturbed(dim: int, covariance: str, components: int = 3, conditional: bool = False, seed: int = 0) -> GMM:
    """A GMM with random, non-identity parameters (weights, means, scales, correlations)."""
    info = DataInfo((dim,), "continuous", num_classes=2 if conditional else 0)
    torch.manual_seed(seed)
    model = GMM(GMMConfig(data=info, components=components, covariance=covariance, conditional=conditional))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model.eval()


def mixture_moments(model: GMM, row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean sum_k pi_k mu_k and covariance sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T (float64)."""
    pi = torch.softmax(model.logits[row].double(), -1)
    mu, tril = model.means.double(), model.scale_tril().double()
    mean = pi @ mu
    second = torch.einsum("k,kij->ij", pi, tril @ tril.transpose(1, 2) + mu.unsqueeze(2) * mu.unsqueeze(1))
    return mean.detach(), (second - mean.outer(mean)).detach()


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_log_prob_equals_scikit_learn_score_samples(covariance):
    rs = np.random.RandomState(0)
    x = np.concatenate([rs.randn(300, 3) @ rs.randn(3, 3) + 4 * rs.randn(3) for _ in range(3)])
    gm = GaussianMixture(3, covariance_type=covariance, random_state=0).fit(x)
    model = GMM(GMMConfig(data=DataInfo((3,), "continuous"), components=3, covariance=covariance)).double()
    cov = torch.from_numpy(gm.covariances_)
    model.set_components(gm.means_, cov.sqrt() if covariance == "diag" else torch.linalg.cholesky(cov), gm.weights_)
    query = np.concatenate([x[::7], 10 * rs.randn(20, 3)])  # data points and points in the tails
    expected = torch.from_numpy(gm.score_samples(query))
    got = model.log_prob(torch.from_numpy(query)).detach()
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_density_integrates_to_one_over_the_plane(covariance):
    model = perturbed(2, covariance).double()
    with torch.no_grad():
        model.means.mul_(2)  # components apart, so the mixture is far from a single Gaussian
    mean, cov = mixture_moments(model)
    reach = 8 * cov.diagonal().sqrt().max().item()
    grid, area = midpoint_grid(mean.min().item() - reach, mean.max().item() + reach, 0.05)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum().item() * area
    assert mass == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_samples_have_the_mixture_mean_and_covariance(covariance):
    model = perturbed(3, covariance)
    n = 200_000
    x = model.sample(n, generator=torch.Generator().manual_seed(0)).double()
    mean, cov = mixture_moments(model)
    # standard errors from n: of the mean, sqrt(Var x_i / n); of the covariance, the standard
    # deviation of the products (x_i - m_i)(x_j - m_j) over sqrt(n)
    centred = x - mean
    products = centred.unsqueeze(2) * centred.unsqueeze(1)  # (n, D, D)
    mean_se = cov.diagonal().sqrt() / math.sqrt(n)
    cov_se = products.std(0) / math.sqrt(n)
    assert ((x.mean(0) - mean).abs() < 5 * mean_se).all()
    assert ((products.mean(0) - cov).abs() < 5 * cov_se).all()
    assert cov_se.max() < 0.05 * cov.abs().max()  # the check is tight enough to mean something


def test_conditional_samples_follow_the_weights_of_their_class():
    model = perturbed(2, "full", components=4, conditional=True)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([[4.0, 0.0, 0.0, -4.0], [-4.0, 0.0, 0.0, 4.0]]))
    n = 50_000
    for label in (0, 1):
        x = model.sample(n, cond=torch.tensor(label), generator=torch.Generator().manual_seed(label)).double()
        mean, cov = mixture_moments(model, row=label)
        assert ((x.mean(0) - mean).abs() < 5 * cov.diagonal().sqrt() / math.sqrt(n)).all()
    x = torch.zeros(1, 2)
    assert not torch.allclose(model.log_prob(x, torch.tensor([0])), model.log_prob(x, torch.tensor([1])))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("covariance", COVARIANCES)
def test_no_nan_or_inf_far_in_the_tails(dtype, covariance):
    model = perturbed(4, covariance)
    with torch.no_grad():
        model.raw_scales[0].fill_(-40.0)  # one component at the minimum scale: the sharpest there is
    signs = torch.tensor([[1.0, 1, 1, 1], [-1, 1, -1, 1], [1, 0, 0, 0], [0, 0, 0, -1]])
    x = (1e4 * signs).to(dtype)
    model = model.to(dtype)
    log_p = model.log_prob(x)
    assert torch.isfinite(log_p).all() and (log_p < -1e6).all()
    (-log_p.mean()).backward()
    for name, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    exact = model.double().log_prob(x.double()).detach()  # float32 loses no more than rounding
    assert torch.allclose(log_p.detach().double(), exact, rtol=1e-5)
    assert torch.isfinite(model.sample(100, generator=torch.Generator().manual_seed(0))).all()


def test_minimum_scale_bounds_the_density_and_bad_configs_are_refused():
    model = perturbed(2, "full")
    with torch.no_grad():
        model.raw_scales.fill_(-80.0)  # softplus underflows to 0; min_scale still holds
    assert (model.scales() >= model.config.min_scale).all()
    bound = -math.log(2 * math.pi) - 2 * math.log(model.config.min_scale)  # density of N(0, min_scale^2 I)
    assert (model.log_prob(model.means.detach()) <= bound + 1e-3).all()
    with pytest.raises(ConfigError, match="components"):
        dgm.build("gmm", data=DataInfo((2,), "continuous"), components=0)
    with pytest.raises(ConfigError, match="min_scale"):
        dgm.build("gmm", data=DataInfo((2,), "continuous"), min_scale=0.0)
    with pytest.raises(ConfigError, match="min_scale"):
        model.set_components(torch.zeros(3, 2), torch.full((3, 2), 1e-4))


@pytest.mark.parametrize(
    ("dim", "covariance", "expected"), [(2, "full", 60), (784, "full", 3_085_050), (784, "diag", 15_690)]
)
def test_parameter_count(dim, covariance, expected):
    model = dgm.build("gmm", data=DataInfo((dim,), "continuous"), covariance=covariance)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_kmeans_pp_seeds_land_in_every_separated_cluster():
    torch.manual_seed(0)
    centres = 100 * torch.randn(8, 5)
    x = (centres.repeat_interleave(50, 0) + 0.01 * torch.randn(400, 5))[torch.randperm(400)]
    seeds = x[kmeans_pp_seeds(x, 8)]
    nearest = torch.cdist(seeds, centres).argmin(1)
    assert sorted(nearest.tolist()) == list(range(8))


def test_initialisation_uses_the_first_batch_once_and_survives_save_and_load(tmp_path):
    info = DataInfo((2,), "continuous")
    model = dgm.build("gmm", data=info, components=4).train()
    batch = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 0.5]) + 10
    model.loss(batch)
    assert bool(model.initialised)
    assert (model.means.detach().unsqueeze(1) == batch).all(-1).any(1).all()  # every mean is a data point
    shrunk = batch.std(0) / 4 ** (1 / 2)
    assert torch.allclose(model.scales().detach(), shrunk.expand(4, 2), rtol=1e-4)
    means = model.means.detach().clone()
    model.loss(batch - 10)  # a second batch elsewhere: no new start
    assert torch.equal(model.means.detach(), means)

    write_record(tmp_path, RunRecord(model="gmm", config=dgm.registry.config_dict(model), data={"spec": "none"}))
    save_weights(tmp_path, model)
    loaded = load_model(tmp_path).train()
    assert bool(loaded.initialised)
    loaded.loss(batch - 10)
    assert torch.equal(loaded.means.detach(), means)


def test_a_batch_smaller_than_k_gives_distinct_components():
    model = dgm.build("gmm", data=DataInfo((2,), "continuous"), components=6).train()
    loss = model.loss(torch.tensor([[0.0, 1.0], [2.0, -1.0]]))["loss"]
    assert torch.isfinite(loss)
    assert torch.pdist(model.means.detach()).min() > 0


def test_training_gets_close_to_the_target_entropy_and_beats_the_independent_baseline(tmp_path):
    from dgm.train import TrainConfig, fit

    ds = dgm.load_dataset("toy2d:gmm8")
    torch.manual_seed(0)
    model = dgm.build("gmm", data=ds)
    fit(model, ds, TrainConfig(steps=200, batch_size=512, lr=1e-2, accelerator="cpu"), out=tmp_path / "gmm")
    x, _ = ds.transformed("test")
    nll = -model.log_prob(x).mean().item()
    entropy = ds.target.entropy()  # NLL - H(p) is the KL to the truth, up to sampling error
    assert nll - entropy < 0.02
    # the best independent Gaussian there is: per-dimension mean and standard deviation of train
    train, _ = ds.transformed("train")
    independent = dgm.build("independent", data=ds)
    with torch.no_grad():
        independent.table[0].copy_(torch.stack([train.mean(0), train.std(0).log()], -1))
    assert -independent.log_prob(x).mean().item() - nll > 1.0
