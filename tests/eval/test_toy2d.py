"""Toy 2-D metrics against the analytic targets, checked on models whose answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import distributions as D

import dgm
from dgm.data.info import DataInfo
from dgm.data.targets import get_target, midpoint_grid
from dgm.errors import DataError, DgmError
from dgm.eval import evaluate
from dgm.eval.divergences import js_divergence
from dgm.eval.toy2d import js_to_target, kl_to_target, median_bandwidth, mode_coverage, rbf_mmd, toy2d_metrics
from dgm.models.base import GenerativeModel, ModelConfig

HQ_3STD = 1 - math.exp(-9 / 2)  # P(|z| <= 3) for z ~ N(0, I_2): the chi-square(2) cdf at 9


class AffineGaussianMixture(GenerativeModel):
    """Equal-weight mixture of N(mean_k, diag(std^2)) in raw units, pushed through the affine map
    y = shift + factor * x of the dataset's transforms (identity by default). Not registered.

    log q(y) = log q_x((y - shift) / factor) - sum log |factor|; computed with torch.distributions,
    independently of dgm.data.targets.
    """

    density = "exact"
    supports = frozenset({"continuous"})

    def __init__(self, means, std, shift=(0.0, 0.0), factor=(1.0, 1.0)):
        super().__init__(ModelConfig(DataInfo((2,), "continuous")))
        self.means = torch.as_tensor(means, dtype=torch.float64).reshape(-1, 2)
        self.std = torch.as_tensor(std, dtype=torch.float64).expand(2)
        self.shift = torch.as_tensor(shift, dtype=torch.float64)
        self.factor = torch.as_tensor(factor, dtype=torch.float64)

    def raw_log_prob(self, x):
        k = len(self.means)
        comp = D.Independent(D.Normal(self.means, self.std.expand(k, 2)), 1)
        return D.MixtureSameFamily(D.Categorical(torch.ones(k, dtype=torch.float64)), comp).log_prob(x.double())

    def log_prob(self, x, cond=None):
        return self.raw_log_prob((x.double() - self.shift) / self.factor) - self.factor.abs().log().sum()

    def sample(self, n, cond=None, generator=None):
        k = torch.randint(len(self.means), (n,), generator=generator)
        x = self.means[k] + self.std * torch.randn((n, 2), generator=generator, dtype=torch.float64)
        return (self.shift + self.factor * x).float()


class LooseBound(AffineGaussianMixture):
    """A bound model whose ELBO is log q(x) - slack: its KL bound is KL + slack."""

    density = "bound"
    slack = 0.3

    def elbo(self, x, cond=None):
        return super().log_prob(x) - self.slack


class SampleOnly(GenerativeModel):
    """A model without a density that samples from the given mixture modes (std as given)."""

    supports = frozenset({"continuous"})

    def __init__(self, means, std):
        super().__init__(ModelConfig(DataInfo((2,), "continuous")))
        self.inner = AffineGaussianMixture(means, std)

    def sample(self, n, cond=None, generator=None):
        return self.inner.sample(n, generator=generator)


@pytest.fixture(scope="module")
def gmm8():
    return dgm.load_dataset("toy2d:gmm8?n=2000&n_test=2000")


def affine_of(ds):
    """(shift, factor) of the dataset's transform chain y = shift + factor * x (per feature)."""
    y, _ = ds.apply_transforms(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    return y[0].double(), (y[1] - y[0]).double()


def broad_gaussian_kl(target, s: float) -> float:
    """KL(p || N(0, s^2 I)) for a mixture p with mean-square radius E|x|^2 = mean|mu_k|^2 + 2 std^2."""
    second_moment = float(target.modes.pow(2).sum(1).mean()) + 2 * target.std**2
    return math.log(2 * math.pi * s * s) + second_moment / (2 * s * s) - target.entropy()


# ----- KL ---------------------------------------------------------------------------------------


def test_kl_of_the_target_itself_is_zero(gmm8):
    target = gmm8.target
    est = kl_to_target(AffineGaussianMixture(target.modes, target.std), gmm8, n=20000)
    assert est.n == 20000 and not est.bound
    assert abs(est.kl) <= 3 * est.se + 1e-9
    assert abs(est.nll - est.entropy) < 3 * est.nll_se  # NLL of p under itself is H(p)
    assert "quadrature" in est.entropy_method


def test_broad_gaussian_kl_matches_closed_form_and_nll_minus_entropy(gmm8):
    s = 3.0
    est = kl_to_target(AffineGaussianMixture([0.0, 0.0], s), gmm8, n=20000)
    expected = broad_gaussian_kl(gmm8.target, s)
    assert expected > 0.5
    assert abs(est.kl - expected) < 3 * est.se + 1e-5
    # KL = NLL - H(p); the estimate differs from NLL - H(p) by noise only
    assert abs(est.kl - (est.nll - est.entropy)) < 3 * est.nll_se
    # the control variate is never worse than NLL - H(p), the better plain estimator for a flat q
    assert est.se <= est.nll_se * 1.001


def test_per_draw_difference_is_the_precise_estimator_for_a_model_close_to_the_target(gmm8):
    target = gmm8.target
    est = kl_to_target(AffineGaussianMixture(target.modes, 0.55), gmm8, n=20000)  # std 0.55 instead of 0.5
    assert 3 * est.se < est.kl < 0.05
    assert est.se < est.nll_se / 3  # the standard error NLL - H(p) would have


@pytest.mark.parametrize("transform", ["scale", "scale:-1,1"])
def test_kl_is_invariant_to_a_scale_transform(gmm8, transform):
    # The same density expressed in scaled units must give the same KL: the ladj accounts for it.
    scaled = dgm.load_dataset("toy2d:gmm8?n=2000&n_test=2000", transforms=[transform])
    shift, factor = affine_of(scaled)
    assert float(scaled.apply_transforms(torch.zeros(1, 2))[1]) == pytest.approx(float(factor.log().sum()))
    assert abs(float(factor.log().sum())) > 1.0
    raw = kl_to_target(AffineGaussianMixture([[0.5, -0.5]], 2.0), gmm8, n=20000)
    pushed = kl_to_target(AffineGaussianMixture([[0.5, -0.5]], 2.0, shift, factor), scaled, n=20000)
    assert pushed.kl == pytest.approx(raw.kl, abs=1e-4)


def test_bound_model_gives_an_upper_bound_named_kl_bound(gmm8):
    target = gmm8.target
    exact = kl_to_target(AffineGaussianMixture(target.modes, target.std), gmm8, n=5000)
    bound = kl_to_target(LooseBound(target.modes, target.std), gmm8, n=5000)
    assert bound.bound and bound.kl == pytest.approx(exact.kl + LooseBound.slack, abs=1e-9)
    metrics = toy2d_metrics(LooseBound(target.modes, target.std), gmm8, n=4000)
    assert "kl_bound" in metrics and "kl" not in metrics and "js" not in metrics  # JS needs log q
    assert "upper bound" in metrics["kl_bound"]["what"] and "no JS" in metrics["kl_bound"]["what"]


def test_kl_refuses_targets_without_density_models_without_density_and_other_data(tmp_path):
    moons = dgm.load_dataset("toy2d:moons?n=200&n_val=20&n_test=200")
    with pytest.raises(DataError, match="no analytic density.*gmm8, grid25, checkerboard, rings"):
        kl_to_target(AffineGaussianMixture([0.0, 0.0], 1.0), moons)
    gmm = dgm.load_dataset("toy2d:gmm8?n=200&n_val=20&n_test=200")
    with pytest.raises(DgmError, match="no density"):
        kl_to_target(SampleOnly([[0.0, 0.0]], 1.0), gmm)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32))
    with pytest.raises(DataError, match="toy2d:NAME"):
        kl_to_target(AffineGaussianMixture([0.0, 0.0], 1.0), dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}"))
    with pytest.raises(DgmError, match="n must be"):
        kl_to_target(AffineGaussianMixture([0.0, 0.0], 1.0), gmm, n=1)


# ----- MMD --------------------------------------------------------------------------------------


def test_rbf_mmd_is_near_zero_for_one_distribution_and_large_for_a_shift():
    target = get_target("gmm8")
    x = target.sample(6000, torch.Generator().manual_seed(1))
    y = target.sample(6000, torch.Generator().manual_seed(2))
    same = rbf_mmd(x, y)
    assert same.blocks == 3 and abs(same.value) < 3 * same.se + 1e-4
    shifted = rbf_mmd(x, y + torch.tensor([2.0, 0.0]), bandwidth=same.bandwidth)
    assert shifted.bandwidth == same.bandwidth
    assert shifted.value > 0.03 and shifted.value > 10 * shifted.se


def test_median_bandwidth_is_the_median_pairwise_distance_of_the_pooled_sample():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 2, generator=g), torch.randn(8, 2, generator=g) + 1
    z = torch.cat([x, y]).double().numpy()
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))[np.triu_indices(15, 1)]
    assert median_bandwidth(x, y) == pytest.approx(float(np.sort(d)[(len(d) - 1) // 2]))
    assert rbf_mmd(x, y).bandwidth == pytest.approx(median_bandwidth(x, y))


def test_rbf_mmd_refuses_bad_input():
    with pytest.raises(DgmError, match="N >= 2"):
        rbf_mmd(torch.zeros(1, 2), torch.zeros(5, 2))
    with pytest.raises(DgmError, match="same number of features"):
        rbf_mmd(torch.randn(5, 2), torch.randn(5, 3))
    with pytest.raises(DgmError, match="NaN"):
        rbf_mmd(torch.full((5, 2), math.nan), torch.randn(5, 2))
    with pytest.raises(DgmError, match="bandwidth"):
        rbf_mmd(torch.randn(5, 2), torch.randn(5, 2), bandwidth=0.0)


# ----- mode coverage ------------------------------------------------------------------------------


def test_hq_fraction_of_a_gaussian_is_the_rayleigh_probability():
    assert HQ_3STD == pytest.approx(0.98889, abs=1e-5)
    z = torch.randn(200000, 2, generator=torch.Generator().manual_seed(0))
    assert float((z.norm(dim=1) <= 3).double().mean()) == pytest.approx(HQ_3STD, abs=1e-3)  # the formula
    cov = mode_coverage(2.0 * z[:20000] + 5.0, [[5.0, 5.0]], std=2.0)
    assert cov.covered == 1 and cov.modes == 1
    assert cov.hq_fraction == pytest.approx(HQ_3STD, abs=4 * math.sqrt(HQ_3STD * (1 - HQ_3STD) / 20000))


def test_target_samples_cover_every_mode_with_the_analytic_hq_fraction():
    target = get_target("grid25")  # modes 40 std apart: no overlap, so hq is exactly the Rayleigh value
    x = target.sample(20000, torch.Generator().manual_seed(0))
    cov = mode_coverage(x, target.modes, target.std)
    assert cov.covered == 25 and sum(cov.counts) == round(cov.hq_fraction * 20000)
    assert cov.hq_fraction == pytest.approx(HQ_3STD, abs=4 * math.sqrt(HQ_3STD * (1 - HQ_3STD) / 20000))


def test_samples_from_half_the_modes_cover_half():
    target = get_target("gmm8")
    half = AffineGaussianMixture(target.modes[::2], target.std).sample(8000, generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(half, target.modes, target.std)
    assert cov.covered == 4 and cov.modes == 8
    assert cov.min_count == 200  # a fifth of 8000 / 8
    assert max(cov.counts[1::2]) < 20  # a few samples spill within 3 std of the missing neighbours...
    assert mode_coverage(half, target.modes, target.std, min_share=0).covered == 8  # ...which VEEGAN's rule counts


def test_mode_coverage_refuses_bad_input():
    with pytest.raises(DgmError, match="features"):
        mode_coverage(torch.randn(10, 3), torch.zeros(2, 2), std=1.0)
    with pytest.raises(DgmError, match="positive"):
        mode_coverage(torch.randn(10, 2), torch.zeros(2, 2), std=0.0)


# ----- toy2d_metrics ----------------------------------------------------------------------------


def check_entries(metrics):
    for name, entry in metrics.items():
        assert isinstance(entry["value"], float) and math.isfinite(entry["value"]), name
        assert isinstance(entry["unit"], str) and isinstance(entry["what"], str) and entry["what"], name
    json.dumps(metrics)


def test_toy2d_metrics_of_the_target_as_a_model(gmm8):
    target = gmm8.target
    metrics = toy2d_metrics(AffineGaussianMixture(target.modes, target.std), gmm8, n=20000)
    check_entries(metrics)
    assert list(metrics) == ["kl", "js", "mmd_rbf", "modes_covered", "hq_fraction"]
    assert abs(metrics["kl"]["value"]) <= 3 * metrics["kl"]["se"] + 1e-9
    assert 0 <= metrics["js"]["value"] < 1e-12 and metrics["js"]["n"] == 20000  # q = p: log 2 - H_b(1/2) = 0
    assert abs(metrics["mmd_rbf"]["value"]) < 3 * metrics["mmd_rbf"]["se"] + 1e-4
    assert "h = " in metrics["mmd_rbf"]["what"]
    assert metrics["modes_covered"]["value"] == 8.0 and metrics["modes_covered"]["of"] == 8
    assert "of 8" in metrics["modes_covered"]["what"]
    assert metrics["hq_fraction"]["value"] >= HQ_3STD - 3 * metrics["hq_fraction"]["se"]


def test_toy2d_metrics_of_a_sample_only_model_with_half_the_modes(gmm8):
    target = gmm8.target
    metrics = toy2d_metrics(SampleOnly(target.modes[:4], target.std), gmm8, n=4000)
    check_entries(metrics)
    assert set(metrics) == {"mmd_rbf", "modes_covered", "hq_fraction"}
    assert metrics["modes_covered"]["value"] == 4.0
    assert metrics["mmd_rbf"]["value"] > 10 * metrics["mmd_rbf"]["se"]


def test_toy2d_metrics_without_modes_or_density():
    board = dgm.load_dataset("toy2d:checkerboard?n=500&n_val=20&n_test=200")
    metrics = toy2d_metrics(AffineGaussianMixture([0.0, 0.0], 2.0), board, n=2000)
    assert set(metrics) == {"kl", "js", "mmd_rbf"}  # a uniform target has no modes
    moons = dgm.load_dataset("toy2d:moons?n=500&n_val=20&n_test=200")
    assert set(toy2d_metrics(AffineGaussianMixture([0.0, 0.0], 2.0), moons, n=2000)) == {"mmd_rbf"}


def test_toy2d_metrics_takes_drawn_samples_and_can_skip_kl(gmm8):
    target = gmm8.target
    model = AffineGaussianMixture(target.modes, target.std)
    samples = model.sample(1000, generator=torch.Generator().manual_seed(5))
    metrics = toy2d_metrics(model, gmm8, samples=samples, kl=False)
    assert set(metrics) == {"mmd_rbf", "modes_covered", "hq_fraction"}
    assert metrics["mmd_rbf"]["n"] == 1000 and "se" not in metrics["mmd_rbf"]  # one block: no standard error
    assert metrics["modes_covered"]["value"] == 8.0


# ----- JS ---------------------------------------------------------------------------------------


def gmm_model(dataset, means, std: float):
    """The registered ``gmm`` model with equal weights, the given means and isotropic std."""
    k = len(means)
    model = dgm.build("gmm", data=dataset, components=k, covariance="diag")
    model.set_components(torch.as_tensor(means), torch.full((k, 2), std), torch.full((k,), 1.0 / k))
    return model.eval()


def js_on_grid(target, model, low=-7.0, high=7.0, h=0.05) -> float:
    """JS(p || q) by the midpoint rule on a square grid: sum over cells of
    area * [p log(p / m) + q log(q / m)] / 2."""
    grid, area = midpoint_grid(low, high, h)
    with torch.no_grad():
        log_p, log_q = target.log_prob(grid), model.log_prob(grid.float()).double()
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    return float((log_p.exp() * (log_p - log_m) + log_q.exp() * (log_q - log_m)).sum()) * area / 2


def test_js_of_the_registered_gmm_model_is_zero_at_the_target_and_matches_quadrature(gmm8):
    target = gmm8.target
    same = js_to_target(gmm_model(gmm8, target.modes, target.std), gmm8, n=2000)
    assert same.n == 2000 and 0 <= same.value < 1e-10  # float32 log q: log p - log q ~ 1e-7, JS ~ 1e-15
    half = gmm_model(gmm8, target.modes[::2], target.std)  # every other mode
    expected = js_on_grid(target, half)
    # the modes barely overlap, so JS is close to (and below) the JS of the mode weights, 3/4 log(4/3)
    weights = float(js_divergence(torch.full((8,), 1 / 8.0), torch.tensor([0.25, 0.0] * 4)))
    assert weights - 0.005 < expected < weights
    est = js_to_target(half, gmm8, n=4000, seed=1)
    assert abs(est.value - expected) < 3 * est.se and est.se < 0.01


def test_js_is_invariant_to_a_scale_transform(gmm8):
    scaled = dgm.load_dataset("toy2d:gmm8?n=2000&n_test=2000", transforms=["scale:-1,1"])
    shift, factor = affine_of(scaled)
    raw = js_to_target(AffineGaussianMixture([[0.5, -0.5]], 2.0), gmm8, n=3000)
    pushed = js_to_target(AffineGaussianMixture([[0.5, -0.5]], 2.0, shift, factor), scaled, n=3000)
    assert raw.value > 0.1 and pushed.value == pytest.approx(raw.value, abs=1e-5)


def test_js_in_toy2d_metrics_reuses_the_given_samples_and_needs_an_exact_density(gmm8):
    target = gmm8.target
    model = gmm_model(gmm8, target.modes[:4], target.std)  # four neighbouring modes
    samples = model.sample(1500, generator=torch.Generator().manual_seed(0))
    metrics = toy2d_metrics(model, gmm8, n=5000, samples=samples)
    assert metrics["js"]["n"] == 1500 and "1500 model samples" in metrics["js"]["what"]
    est = js_to_target(model, gmm8, n=5000, samples=samples)  # the first 1500 of the same target draws
    assert metrics["js"]["value"] == est.value and est.n == 1500
    assert 0.1 < est.value < math.log(2) and est.value > 10 * est.se
    assert "js" not in toy2d_metrics(model, gmm8, samples=samples, kl=False)
    with pytest.raises(DgmError, match="JS\\(p\\|\\|q\\) needs the model's log q.*density 'bound'"):
        js_to_target(LooseBound(target.modes, target.std), gmm8, n=500)
    with pytest.raises(DgmError, match="density 'none'"):
        js_to_target(SampleOnly(target.modes, target.std), gmm8, n=500)


def test_dgm_eval_reports_js_with_kl_for_exact_models(gmm8):
    model = gmm_model(gmm8, gmm8.target.modes[:7], gmm8.target.std)  # one mode missing
    found = evaluate(model, gmm8, ["kl", "mmd"], n=500)
    assert list(found) == ["kl", "js", "mmd_rbf"] and found["js"]["n"] == 500
    assert found["js"]["value"] > 5 * found["js"]["se"]
    assert "js" not in evaluate(model, gmm8, ["mmd"], n=500)  # JS comes with the kl group
