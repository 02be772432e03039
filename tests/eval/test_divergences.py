"""KL and JS divergences: exact ones between probability vectors, Monte Carlo ones between densities."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from dgm.errors import DgmError
from dgm.eval.divergences import (
    js_divergence,
    js_from_draws,
    js_monte_carlo,
    js_terms,
    kl_divergence,
    kl_from_draws,
    kl_monte_carlo,
)

LOG_2 = math.log(2)

pytestmark = pytest.mark.usefixtures("one_thread")


def random_simplex(shape, generator, dim=-1):
    """Random probability vectors along ``dim`` (float64), no zero entries."""
    w = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.05
    return w / w.sum(dim, keepdim=True)


def log_density(dist):
    """(N, 1) points -> (N,) log-densities of a 1-D torch distribution."""
    return lambda x: dist.log_prob(x[:, 0])


def sampler(dist):
    """(n, generator) -> (n, 1) draws of a torch Normal, from the given generator."""
    return lambda n, g: (dist.loc + dist.scale * torch.randn(n, 1, generator=g, dtype=torch.float64)).reshape(n, 1)


def mv_sampler(dist):
    """(n, generator) -> (n, D) draws of a torch MultivariateNormal, from the given generator."""
    return lambda n, g: dist.loc + torch.randn(n, len(dist.loc), generator=g, dtype=torch.float64) @ dist.scale_tril.T


def uniform(low: float, high: float):
    """log-density (N, 1) -> (N,) and sampler (n, generator) -> (n, 1) of U[low, high)."""

    def log_prob(x):
        inside = (x[:, 0] >= low) & (x[:, 0] < high)
        return torch.full((len(x),), -math.log(high - low), dtype=torch.float64).masked_fill(~inside, -math.inf)

    return log_prob, lambda n, g: low + (high - low) * torch.rand(n, 1, generator=g, dtype=torch.float64)


# ----- probability vectors ----------------------------------------------------------------------


def test_kl_and_js_of_probability_vectors_match_hand_computed_values():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    kl_pq = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl_qp = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    m = (0.7, 0.3)
    js = 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])) + 0.5 * (
        0.9 * math.log(0.9 / m[0]) + 0.1 * math.log(0.1 / m[1])
    )
    assert float(kl_divergence(p, q)) == pytest.approx(kl_pq, rel=1e-6)  # 0.5108
    assert float(kl_divergence(q, p)) == pytest.approx(kl_qp, rel=1e-6)  # 0.3681: KL is not symmetric
    assert float(js_divergence(p, q)) == pytest.approx(js, rel=1e-6)  # 0.1017
    assert kl_divergence(p, q).dtype == torch.float32 and kl_divergence(p.double(), q).dtype == torch.float64
    # 0 log 0 = 0: a category with p = 0 adds nothing, whatever q is there
    assert float(kl_divergence(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))) == pytest.approx(LOG_2)
    assert float(kl_divergence(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))) == 0.0


def test_batched_vectors_along_any_dim_match_one_vector_at_a_time():
    g = torch.Generator().manual_seed(0)
    p, q = random_simplex((2, 5, 3), g, dim=1), random_simplex((2, 5, 3), g, dim=1)
    kl, js = kl_divergence(p, q, dim=1), js_divergence(p, q, dim=1)
    assert kl.shape == js.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            a, b = p[i, :, j].tolist(), q[i, :, j].tolist()
            mid = [(x + y) / 2 for x, y in zip(a, b, strict=True)]
            expected_kl = sum(x * math.log(x / y) for x, y in zip(a, b, strict=True))
            expected_js = 0.5 * sum(x * math.log(x / z) for x, z in zip(a, mid, strict=True)) + 0.5 * sum(
                y * math.log(y / z) for y, z in zip(b, mid, strict=True)
            )
            assert float(kl[i, j]) == pytest.approx(expected_kl, rel=1e-12)
            assert float(js[i, j]) == pytest.approx(expected_js, rel=1e-12)


def test_js_is_symmetric_bounded_by_log_2_and_kl_is_non_negative():
    g = torch.Generator().manual_seed(1)
    p, q = random_simplex((500, 6), g), random_simplex((500, 6), g)
    p[:100, :3] = 0  # some vectors with zeros, where q is not zero
    p = p / p.sum(-1, keepdim=True)
    js = js_divergence(p, q)
    assert torch.equal(js, js_divergence(q, p))
    assert bool((js > 0).all()) and bool((js <= LOG_2).all())
    kl = kl_divergence(p, q)
    assert bool((kl > 0).all()) and bool(torch.isfinite(kl).all())
    # KL is convex in its second argument, so KL(p || m) <= KL(p || q) / 2: JS <= (KL(p||q) + KL(q||p)) / 4
    assert bool((js <= (kl + kl_divergence(q, p)) / 4 + 1e-12).all())


def test_disjoint_supports_give_js_log_2_and_infinite_kl():
    p, q = torch.tensor([0.3, 0.7, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.5, 0.5])
    assert float(js_divergence(p.double(), q.double())) == pytest.approx(LOG_2, abs=1e-15)
    assert float(js_divergence(p, q)) == pytest.approx(LOG_2, rel=1e-7)  # float32 in, float32 out
    assert float(kl_divergence(p, q)) == math.inf and float(kl_divergence(q, p)) == math.inf
    # infinite only where q = 0 < p: q = 0 where p = 0 is fine
    assert float(kl_divergence(torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.5, 0.0, 0.5]))) == math.inf
    assert math.isfinite(float(kl_divergence(torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.75, 0.0]))))


def test_divergences_are_zero_only_for_equal_vectors_and_accurate_for_tiny_differences():
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    assert float(kl_divergence(p, p)) == 0.0 and float(js_divergence(p, p)) == 0.0
    delta = 1e-6 * torch.tensor([1.0, -3.0, 2.0], dtype=torch.float64)
    q = p + delta
    # second order: KL ~ chi^2 / 2 and JS ~ chi^2 / 8 with chi^2 = sum delta^2 / p (about 4e-11)
    chi2 = float((delta**2 / p).sum())
    assert float(kl_divergence(p, q)) == pytest.approx(chi2 / 2, rel=1e-3)
    assert float(js_divergence(p, q)) == pytest.approx(chi2 / 8, rel=1e-5)
    assert float(js_divergence(p, q)) > 0


def test_the_gan_value_at_the_optimal_discriminator_is_minus_log_4_plus_twice_js():
    # V(D, q) = sum_x p log D + q log(1 - D) is maximised by D* = p / (p + q), where it is -log 4 + 2 JS
    g = torch.Generator().manual_seed(2)
    p, q = random_simplex((6,), g), random_simplex((6,), g)

    def value(d):
        return float((p * d.log() + q * (1 - d).log()).sum())

    best = p / (p + q)
    assert value(best) == pytest.approx(-math.log(4) + 2 * float(js_divergence(p, q)), rel=1e-12)
    for _ in range(20):
        other = (best + 0.05 * torch.randn(6, generator=g, dtype=torch.float64)).clamp(0.01, 0.99)
        assert value(other) < value(best)


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([0.5, 0.5], [0.2, 0.3, 0.5], "same shape, got \\(2,\\) and \\(3,\\)"),
        ([1.2, -0.2], [0.5, 0.5], "p has a negative entry \\(-0.2\\)"),
        ([0.5, 0.5], [0.5, 0.6], "q does not sum to 1 along dim -1 \\(a sum of 1.1"),
        ([0.5, math.nan], [0.5, 0.5], "p has NaN or infinite entries"),
        (0.5, 0.5, "at least one dimension"),
    ],
)
def test_bad_probability_vectors_are_refused_with_the_problem_named(p, q, match):
    for divergence in (kl_divergence, js_divergence):
        with pytest.raises(DgmError, match=match):
            divergence(torch.tensor(p), torch.tensor(q))


def test_a_bad_dim_is_refused_and_float32_rounding_of_the_sum_accepted():
    with pytest.raises(ValueError, match="dim 2 is out of range"):  # a DgmError is a ValueError
        js_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), dim=2)
    # sums off by float32 rounding only are accepted
    p32 = torch.softmax(torch.randn(1000, generator=torch.Generator().manual_seed(0)), 0)
    assert float(kl_divergence(p32, p32)) == 0.0


# ----- Monte Carlo -------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2])
def test_monte_carlo_kl_of_gaussians_is_within_3_se_of_the_closed_form(dim):
    g = torch.Generator().manual_seed(dim)
    a = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    p = D.MultivariateNormal(torch.zeros(dim, dtype=torch.float64), a @ a.T + 0.5 * torch.eye(dim))
    q = D.MultivariateNormal(torch.full((dim,), 0.7, dtype=torch.float64), 2.0 * torch.eye(dim, dtype=torch.float64))
    # KL(N0 || N1) = 1/2 [tr(S1^-1 S0) + |m1 - m0|^2_{S1^-1} - k + log det S1 / det S0]
    s0, s1, dm = p.covariance_matrix, q.covariance_matrix, q.loc - p.loc
    closed = 0.5 * float(
        torch.trace(torch.linalg.solve(s1, s0)) + dm @ torch.linalg.solve(s1, dm) - dim + s1.logdet() - s0.logdet()
    )
    assert closed == pytest.approx(float(D.kl_divergence(p, q)), rel=1e-12)
    est = kl_monte_carlo(p.log_prob, mv_sampler(p), q.log_prob, n=20000, generator=torch.Generator().manual_seed(9))
    assert est.n == 20000 and 0 < est.se < 0.05 * closed
    assert abs(est.value - closed) < 3 * est.se
    # with the exact entropy H(p) as control variate: still unbiased, never a larger standard error
    g = torch.Generator().manual_seed(9)
    cv = kl_monte_carlo(p.log_prob, mv_sampler(p), q.log_prob, n=20000, generator=g, entropy_p=float(p.entropy()))
    assert abs(cv.value - closed) < 3 * cv.se and cv.se <= est.se * 1.001


def js_by_quadrature(p: D.Normal, q: D.Normal) -> float:
    """JS of two 1-D densities by the trapezoid rule on a fine grid covering both."""
    low = min(float(p.loc - 12 * p.scale), float(q.loc - 12 * q.scale))
    high = max(float(p.loc + 12 * p.scale), float(q.loc + 12 * q.scale))
    x = torch.linspace(low, high, 400_001, dtype=torch.float64)
    log_p, log_q = p.log_prob(x), q.log_prob(x)
    log_m = torch.logaddexp(log_p, log_q) - LOG_2
    return float(torch.trapezoid(0.5 * (log_p.exp() * (log_p - log_m) + log_q.exp() * (log_q - log_m)), x))


@pytest.mark.parametrize("q_loc, q_scale", [(0.5, 1.0), (0.0, 3.0), (2.0, 0.3), (6.0, 1.0)])
def test_monte_carlo_js_of_gaussians_is_within_3_se_of_quadrature(q_loc, q_scale):
    p, q = D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), D.Normal(torch.tensor(q_loc), q_scale)
    expected = js_by_quadrature(p, q)
    assert 0.02 < expected < LOG_2
    g = torch.Generator().manual_seed(0)
    est = js_monte_carlo(log_density(p), sampler(p), log_density(q), sampler(q), n=20000, generator=g)
    assert est.n == 20000 and 0 < est.se < 0.02
    assert abs(est.value - expected) < 3 * est.se


def test_js_estimate_agrees_with_the_plain_means_of_log_p_minus_log_m_and_is_more_precise():
    # JS = 1/2 E_p[log p - log m] + 1/2 E_q[log q - log m]: the plain estimate of that formula and
    # ours (mean of its expectation given the point, log 2 - H_b(D)) estimate the same number
    p, q = D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), D.Normal(torch.tensor(0.5, dtype=torch.float64), 1.0)
    g = torch.Generator().manual_seed(3)
    n = 20000
    x, y = sampler(p)(n, g)[:, 0], sampler(q)(n, g)[:, 0]
    lpx, lqx, lpy, lqy = p.log_prob(x), q.log_prob(x), p.log_prob(y), q.log_prob(y)
    a = lpx - (torch.logaddexp(lpx, lqx) - LOG_2)  # log p - log m at x ~ p
    b = lqy - (torch.logaddexp(lpy, lqy) - LOG_2)  # log q - log m at y ~ q
    plain, plain_se = float(a.mean() + b.mean()) / 2, math.sqrt(float(a.var() + b.var()) / n) / 2
    est = js_from_draws(lpx, lqx, lpy, lqy)
    assert abs(est.value - plain) < 3 * math.hypot(est.se, plain_se)
    assert abs(est.value - js_by_quadrature(p, q)) < 3 * est.se
    assert est.se < plain_se / 3
    # the terms are the conditional expectations of log 2D and log 2(1 - D), D = p / (p + q)
    t = torch.linspace(-30, 30, 61, dtype=torch.float64)
    d = torch.sigmoid(t)
    assert torch.allclose(js_terms(t), d * torch.log(2 * d) + (1 - d) * torch.log(2 * (1 - d)), atol=1e-12)


def test_monte_carlo_js_is_symmetric_zero_for_one_distribution_and_log_2_for_disjoint_supports():
    g = torch.Generator().manual_seed(4)
    lpx, lqx, lpy, lqy = torch.randn(4, 100, generator=g, dtype=torch.float64)
    assert js_from_draws(lpx, lqx, lpy, lqy) == js_from_draws(lqy, lpy, lqx, lpx)  # swap p and q
    p = D.Normal(torch.tensor(1.0, dtype=torch.float64), 2.0)
    same = js_monte_carlo(log_density(p), sampler(p), log_density(p), sampler(p), n=1000, generator=g)
    assert same.value == 0.0 and same.se == 0.0
    (log_a, draw_a), (log_b, draw_b), (log_wide, draw_wide) = uniform(0, 1), uniform(2, 3), uniform(0, 2)
    apart = js_monte_carlo(log_a, draw_a, log_b, draw_b, n=1000, generator=g)
    assert apart.value == pytest.approx(LOG_2, abs=1e-15) and apart.se == 0.0
    assert kl_monte_carlo(log_wide, draw_wide, log_a, n=1000, generator=g).value == math.inf  # q = 0 < p at draws
    assert kl_monte_carlo(log_a, draw_a, log_wide, n=1000, generator=g).value == pytest.approx(math.log(2))


def test_the_same_generator_gives_the_same_estimate():
    p, q = D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), D.Normal(torch.tensor(1.0, dtype=torch.float64), 2.0)

    def estimate(seed):
        g = torch.Generator().manual_seed(seed)
        return js_monte_carlo(log_density(p), sampler(p), log_density(q), sampler(q), n=500, generator=g)

    assert estimate(0) == estimate(0) and estimate(0) != estimate(1)


def test_monte_carlo_refuses_bad_input():
    p = D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(DgmError, match="n must be an integer >= 2"):
        kl_monte_carlo(log_density(p), sampler(p), log_density(p), n=1, generator=g)
    with pytest.raises(DgmError, match="sample_q\\(n, generator\\) must return n = 10 points"):
        js_monte_carlo(log_density(p), sampler(p), log_density(p), lambda n, gen: torch.zeros(n + 1, 1), n=10)
    with pytest.raises(
        DgmError, match="log_q\\(x\\) must be n = 10 log-densities, shape \\(10,\\), got shape \\(10, 1\\)"
    ):
        kl_monte_carlo(log_density(p), sampler(p), lambda x: p.log_prob(x), n=10, generator=g)
    with pytest.raises(DgmError, match="log q has 1 NaN"):
        kl_from_draws(torch.zeros(5), torch.tensor([0.0, 0, 0, 0, math.nan]))
    with pytest.raises(DgmError, match="both -inf at 1 of the 3 draws of q"):
        inf = -math.inf
        js_from_draws(torch.zeros(3), torch.zeros(3), torch.tensor([0.0, 0, inf]), torch.tensor([0.0, 0, inf]))
    with pytest.raises(DgmError, match="N >= 2"):
        js_from_draws(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1))
