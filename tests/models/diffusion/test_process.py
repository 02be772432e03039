"""The mathematics of the diffusion process: schedules, noising, posterior, targets, samplers, bound."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.errors import ConfigError
from dgm.models.diffusion import samplers
from dgm.models.diffusion.bound import decoder_nll, nll_bound, prior_kl, strata
from dgm.models.diffusion.process import (
    PREDICTIONS,
    eps_from_x0,
    forward_jump,
    noised,
    posterior,
    target,
    x0_and_eps,
)
from dgm.models.diffusion.schedules import SCHEDULES, Schedule, betas_of, timestep_subsequence
from dgm.models.discrete import discretized_gaussian_log_prob

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: a second thread costs more than it saves


# ----- schedules -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("steps", [1, 7, 100, 1000])
def test_abar_strictly_decreasing_in_unit_interval(kind, steps):
    s = Schedule.named(kind, steps)
    assert s.steps == steps
    assert bool((s.abar > 0).all()) and bool((s.abar <= 1).all())
    assert bool((s.abar[1:] < s.abar[:-1]).all())
    assert torch.allclose(s.abar, torch.cumprod(1 - s.betas, 0))


def test_linear_schedule_ends_and_rescaling():
    b = betas_of("linear", 1000)
    assert math.isclose(float(b[0]), 1e-4) and math.isclose(float(b[-1]), 0.02)
    b100 = betas_of("linear", 100)  # Nichol & Dhariwal's rescaling: the same total noise
    assert math.isclose(float(b100[0]), 1e-3) and math.isclose(float(b100[-1]), 0.2)
    assert abs(float(Schedule.named("linear", 100).abar[-1]) / float(Schedule.named("linear", 1000).abar[-1])) < 10


def test_quadratic_and_cosine_follow_their_formulas():
    q = betas_of("quadratic", 50)
    assert torch.allclose(q.sqrt()[1:] - q.sqrt()[:-1], (q.sqrt()[1] - q.sqrt()[0]).expand(49), atol=1e-12)
    c = Schedule.named("cosine", 200)
    t = torch.arange(1, 201, dtype=torch.float64) / 200
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert torch.allclose(c.abar[:-1], f[:-1], rtol=1e-9)  # the last beta is clipped to 0.999


def test_schedule_errors():
    with pytest.raises(ConfigError, match="schedule must be one of"):
        betas_of("sigmoid", 10)
    with pytest.raises(ConfigError, match="positive integer"):
        betas_of("linear", 0)
    with pytest.raises(ConfigError, match=r"in \(0, 1\)"):
        Schedule(torch.tensor([0.1, 1.0]))


def test_timestep_subsequence():
    assert timestep_subsequence(1000, 1000) == list(range(999, -1, -1))
    sub = timestep_subsequence(1000, 20)
    assert len(sub) == 20 and sub[0] == 999 and sub[-1] == 0 and sub == sorted(sub, reverse=True)
    assert timestep_subsequence(10, 1) == [9]
    for bad in (0, 11, 2.5):
        with pytest.raises(ConfigError, match="--steps"):
            timestep_subsequence(10, bad)


# ----- forward process and posterior -----------------------------------------------------------
def test_closed_form_marginal_matches_iterated_one_step_process():
    s = Schedule.named("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -0.7]).double()
    x = x0.expand(200_000, 2).clone()
    for t in range(60):  # q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t)
        x = forward_jump(x, torch.randn(x.shape, generator=g, dtype=torch.float64), s.abar_at(t), s.abar_at(t - 1))
    a = float(s.abar[59])
    assert torch.allclose(x.mean(0), math.sqrt(a) * x0, atol=0.01)
    assert torch.allclose(x.var(0), torch.full((2,), 1 - a, dtype=torch.float64), rtol=0.02)
    one = forward_jump(x0, torch.ones(2).double(), s.abar[0], torch.tensor(1.0).double())
    assert torch.allclose(one, math.sqrt(1 - float(s.betas[0])) * x0 + math.sqrt(float(s.betas[0])))


@pytest.mark.parametrize("t,s", [(1, 0), (500, 499), (999, 998), (700, 300), (50, -1)])
def test_posterior_matches_gaussian_conditioning(t, s):
    """q(x_s | x_t, x_0) from the joint Gaussian of (x_s, x_t) given x_0, derived independently."""
    sch = Schedule.named("linear", 1000)
    a, b = float(sch.abar_at(t)), float(sch.abar_at(s))
    x0, x_t = 0.8, -0.3
    # x_s = sqrt(b) x0 + noise of var 1 - b; x_t = sqrt(a / b) x_s + noise of var 1 - a / b
    cov = math.sqrt(a / b) * (1 - b)
    mean = math.sqrt(b) * x0 + cov / (1 - a) * (x_t - math.sqrt(a) * x0)
    var = (1 - b) - cov**2 / (1 - a)
    post = posterior(sch.abar_at(t), sch.abar_at(s))
    assert math.isclose(
        float(post.mean(torch.tensor(x0, dtype=torch.float64), torch.tensor(x_t, dtype=torch.float64))),
        mean,
        rel_tol=1e-9,
        abs_tol=1e-12,
    )
    assert math.isclose(float(post.variance), var, rel_tol=1e-7, abs_tol=1e-15)
    if s == t - 1:  # Ho et al. eq. 7
        beta, ab_prev = float(sch.betas[t]), float(sch.abar_prev[t])
        assert math.isclose(float(post.variance), (1 - ab_prev) / (1 - a) * beta, rel_tol=1e-9)
        assert math.isclose(float(post.variance), float(sch.posterior_variance[t]), rel_tol=1e-9)


@pytest.mark.parametrize("kind", PREDICTIONS)
def test_prediction_targets_round_trip(kind):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(5, 3, generator=g).double(), torch.randn(5, 3, generator=g).double()
    abar = torch.tensor([0.999, 0.9, 0.5, 0.1, 1e-4]).double()
    x_t = noised(x0, eps, abar)
    got_x0, got_eps = x0_and_eps(kind, target(kind, x0, eps, abar), x_t, abar)
    assert torch.allclose(got_x0, x0, atol=1e-6) and torch.allclose(got_eps, eps, atol=1e-6)
    assert torch.allclose(eps_from_x0(x0, x_t, abar), eps)


def test_v_is_salimans_and_ho():
    x0, eps, a = torch.tensor([0.3]), torch.tensor([-1.2]), torch.tensor(0.64)
    assert torch.allclose(target("v", x0, eps, a), 0.8 * eps - 0.6 * x0)


# ----- samplers ---------------------------------------------------------------------------------
def oracle(x0_true):
    """A denoiser that knows the data point: x0 = x0_true and the eps that goes with it."""

    def denoise(x_t, t, schedule=Schedule.named("linear", 1000)):
        return x0_true.expand_as(x_t), eps_from_x0(x0_true.expand_as(x_t), x_t, schedule.abar[t])

    return denoise


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_step_with_the_true_noise_is_the_posterior_mean_plus_noise(variance):
    sch = Schedule.named("linear", 1000)
    x0 = torch.tensor([[0.5, -0.25, 1.0]]).double()
    eps = torch.tensor([[0.3, -1.1, 0.7]]).double()
    t = 400
    x_t = noised(x0, eps, sch.abar[t])
    beta, alpha, a = float(sch.betas[t]), float(sch.alphas[t]), float(sch.abar[t])
    # Ho et al. Algorithm 2 with the true noise, and eq. 7's posterior mean: the same number
    expected = (x_t - beta / math.sqrt(1 - a) * eps) / math.sqrt(alpha)
    post_mean = (
        math.sqrt(float(sch.abar_prev[t])) * beta * x0 + math.sqrt(alpha) * (1 - float(sch.abar_prev[t])) * x_t
    ) / (1 - a)
    assert torch.allclose(expected, post_mean, atol=1e-12)
    x0_hat, _ = x0_and_eps("eps", eps, x_t, sch.abar[t])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    got = samplers.ancestral_step(x_t, x0_hat, t, t - 1, sch, variance, g1)
    sigma2 = beta if variance == "beta" else float(sch.posterior_variance[t])
    z = torch.randn(x_t.shape, generator=g2).double()
    assert torch.allclose(got, expected + math.sqrt(sigma2) * z, atol=1e-9)


def test_ddim_eta0_is_deterministic_and_returns_the_single_training_point():
    sch = Schedule.named("linear", 1000)
    x0 = torch.tensor([0.25, -0.5, 0.75]).double()
    for steps in (1000, 50, 10):
        timesteps = timestep_subsequence(1000, steps)
        x_T = torch.randn(4, 3, generator=torch.Generator().manual_seed(steps)).double()
        out1 = samplers.ddim(oracle(x0), sch, x_T, timesteps, eta=0.0, generator=torch.Generator().manual_seed(1))
        out2 = samplers.ddim(oracle(x0), sch, x_T, timesteps, eta=0.0, generator=torch.Generator().manual_seed(2))
        assert torch.equal(out1, out2)
        assert torch.allclose(out1, x0.expand(4, 3), atol=1e-9)


def gaussian_optimal_denoiser(m: float, s: float, schedule: Schedule):
    """E[x_0 | x_t] for data N(m, s^2): the exact optimal denoiser."""

    def denoise(x_t, t):
        a = float(schedule.abar[t])
        x0 = m + math.sqrt(a) * s**2 / (a * s**2 + 1 - a) * (x_t - math.sqrt(a) * m)
        return x0, eps_from_x0(x0, x_t, schedule.abar[t])

    return denoise


@pytest.mark.parametrize(
    "sampler,steps,option",
    [
        ("ddpm", 1000, "beta"),
        ("ddpm", 1000, "posterior"),
        ("ddpm", 100, "beta"),
        ("ddim", 1000, 0.0),
        ("ddim", 200, 0.0),
        ("ddim", 1000, 1.0),
    ],
)
def test_samples_of_the_optimal_denoiser_have_the_data_mean_and_variance(sampler, steps, option):
    """Data N(1.5, 0.5^2). With few steps the fixed reverse variances are only approximately
    right (DDIM with 50 steps: std 2.6% low; ancestral with 50 and beta~: 10% low), so the
    cases are those where the sampler is exact up to the 20 000 draws' error."""
    m, s = 1.5, 0.5
    sch = Schedule.named("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(20_000, 1, generator=g).double()
    timesteps = timestep_subsequence(1000, steps)
    denoise = gaussian_optimal_denoiser(m, s, sch)
    if sampler == "ddpm":
        x = samplers.ancestral(denoise, sch, x_T, timesteps, variance=option, generator=g)
    else:
        x = samplers.ddim(denoise, sch, x_T, timesteps, eta=option, generator=g)
    assert abs(float(x.mean()) - m) < 0.02
    assert abs(float(x.std()) - s) < 0.02


def test_record_sees_every_step():
    sch = Schedule.named("cosine", 30)
    seen = []
    samplers.ddim(
        oracle(torch.zeros(2).double()),
        sch,
        torch.randn(1, 2).double(),
        timestep_subsequence(30, 5),
        record=lambda t, x, x0: seen.append(t),
    )
    assert seen == timestep_subsequence(30, 5)


def test_repaint_keeps_the_known_pixels():
    sch = Schedule.named("linear", 100)
    known = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)).double() * 2 - 1
    mask = torch.zeros(1, 1, 4, 4).double()
    mask[..., :2] = 1

    def denoise(x_t, t):  # a poor denoiser: the known part must stay exact anyway
        x0 = torch.tanh(x_t)
        return x0, eps_from_x0(x0, x_t, sch.abar[t])

    out = samplers.repaint(
        denoise,
        sch,
        torch.randn(3, 1, 4, 4).double(),
        timestep_subsequence(100, 10),
        known,
        mask,
        resample=3,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(out[..., :2], known[..., :2])
    assert not torch.allclose(out[..., 2:], known[..., 2:])


def test_repaint_of_a_single_point_fills_in_the_point():
    sch = Schedule.named("linear", 1000)
    x0 = torch.tensor([0.5, -0.5, 0.25, 1.0]).double()
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0]).double()
    out = samplers.repaint(
        oracle(x0), sch, torch.randn(2, 4).double(), timestep_subsequence(1000, 20), x0.expand(2, 4), mask, resample=2
    )
    assert torch.allclose(out, x0.expand(2, 4), atol=1e-6)


def test_sampler_errors():
    sch = Schedule.named("linear", 10)
    x = torch.zeros(1, 2)
    with pytest.raises(ConfigError, match="variance"):
        samplers.ancestral(oracle(torch.zeros(2)), sch, x, [9, 0], variance="learned")
    with pytest.raises(ConfigError, match="eta"):
        samplers.ddim(oracle(torch.zeros(2)), sch, x, [9, 0], eta=1.5)
    with pytest.raises(ConfigError, match="timesteps must decrease"):
        samplers.ddim(oracle(torch.zeros(2)), sch, x, [0, 9])


# ----- the bound ---------------------------------------------------------------------------------
def test_discretized_gaussian_sums_to_one_and_matches_the_cdf():
    for levels in (2, 17, 256):
        x = torch.arange(levels).double()[:, None]
        mean = torch.tensor([-3.0, -1.0, 0.0, 0.37, 1.0, 2.5]).double()
        log_scale = torch.tensor([-9.0, -3.0, -1.0, 0.0, 1.0, 4.0]).double()
        lp = discretized_gaussian_log_prob(x, mean, log_scale, levels)
        assert bool(torch.isfinite(lp).all())
        assert torch.allclose(torch.logsumexp(lp, 0), torch.zeros(6).double(), atol=1e-9)
    normal = torch.distributions.Normal(torch.tensor(0.1).double(), torch.tensor(0.3).double())
    c, half = 2 * 100 / 255 - 1, 1 / 255
    direct = math.log(
        float(
            normal.cdf(torch.tensor(c + half, dtype=torch.float64))
            - normal.cdf(torch.tensor(c - half, dtype=torch.float64))
        )
    )
    got = float(
        discretized_gaussian_log_prob(
            torch.tensor(100.0).double(),
            torch.tensor(0.1).double(),
            torch.tensor(math.log(0.3), dtype=torch.float64),
            256,
        )
    )
    assert math.isclose(got, direct, rel_tol=1e-9)


def test_strata_cover_every_kl_term_once():
    for count, k in ((999, 100), (10, 10), (10, 3), (1, 1)):
        blocks = strata(count, k)
        covered = [t for a, b in blocks for t in range(a, b)]
        assert covered == list(range(1, count + 1)) and len(blocks) == k


def gaussian_predict_x0(m: float, s: float, schedule: Schedule):
    def predict(x_t, t):
        a = schedule.abar[t].reshape(-1, *([1] * (x_t.dim() - 1)))
        return m + a.sqrt() * s**2 / (a * s**2 + 1 - a) * (x_t - a.sqrt() * m)

    return predict


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_bound_of_the_optimal_denoiser_is_above_and_near_the_true_nll(variance):
    """1-D Gaussian data N(m, s^2): E[bound] >= the exact cross-entropy, and close to it."""
    m, s = 0.3, 0.4
    sch = Schedule.named("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = (m + s * torch.randn(4000, 1, generator=g)).double()
    parts = nll_bound(gaussian_predict_x0(m, s, sch), x0, sch, variance, None, terms=None, generator=g)
    true_nll = -torch.distributions.Normal(m, s).log_prob(x0).sum(1).mean()
    gap = float(parts["nll"].mean() - true_nll)
    se = float(parts["nll"].std() / math.sqrt(4000))
    assert -3 * se < gap < (0.15 if variance == "beta" else 1.0)  # beta~: 0.55 nats looser
    assert torch.allclose(parts["nll"], parts["prior"] + parts["diffusion"] + parts["decoder"])


def test_stratified_bound_estimate_is_unbiased():
    m, s = 0.3, 0.4
    sch = Schedule.named("linear", 200)
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((6000, 2), 0.5).double()
    full = nll_bound(gaussian_predict_x0(m, s, sch), x0, sch, "beta", None, terms=None, generator=g)["nll"]
    few = nll_bound(gaussian_predict_x0(m, s, sch), x0, sch, "beta", None, terms=4, generator=g)["nll"]
    se = math.sqrt(float(full.var() + few.var()) / 6000)
    assert abs(float(full.mean() - few.mean())) < 4 * se


def test_prior_kl_and_decoder_formulas():
    sch = Schedule.named("linear", 1000)
    x0 = torch.tensor([[0.5, -1.0]]).double()
    a = float(sch.abar[-1])
    q = torch.distributions.Normal(math.sqrt(a) * x0, math.sqrt(1 - a))
    p = torch.distributions.Normal(torch.zeros(1, 2).double(), 1.0)
    assert torch.allclose(prior_kl(x0, sch), torch.distributions.kl_divergence(q, p).sum(1))
    dec = decoder_nll(x0, torch.tensor([[0.4, -0.9]]).double(), 0.01, None)
    assert torch.allclose(
        dec, -torch.distributions.Normal(torch.tensor([[0.4, -0.9]]).double(), 0.1).log_prob(x0).sum(1)
    )
