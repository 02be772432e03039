"""Toy 2-D evaluation against the analytic targets of :mod:`dgm.data.targets`.

- :func:`kl_to_target`: KL(p || q) = E_p[log p(x) - log q(x)] = NLL - H(p), from fresh target
  draws, for models with a density (an upper bound for models with an ELBO).
- :func:`js_to_target`: JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, from fresh
  target draws and model samples, for models with an exact density.
- :func:`rbf_mmd`: unbiased MMD^2 with a Gaussian (RBF) kernel and the median-heuristic bandwidth.
- :func:`mode_coverage`: modes captured and fraction of high-quality samples for the Gaussian
  mixtures gmm8 and grid25 (Srivastava et al. 2017, VEEGAN).
- :func:`toy2d_metrics`: every metric that applies, as metrics.json entries.

Everything is measured in the data's raw units: model densities include the log-det of the
dataset's transforms and model samples are mapped back with ``dataset.to_display``.

>>> ds = load_dataset("toy2d:gmm8", transforms=["scale"])
>>> metrics = toy2d_metrics(model, ds)       # {"kl": {"value": ..., "se": ...}, "js": ..., "mmd_rbf": ..., ...}
>>> metrics["modes_covered"]["value"], metrics["modes_covered"]["of"]
(8.0, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dgm.data.targets import TARGETS, GaussianMixture, Target
from dgm.errors import DataError, DgmError
from dgm.eval.divergences import DivergenceEstimate, js_from_draws, kl_from_draws
from dgm.eval.likelihood import per_example_log_prob
from dgm.eval.sample_quality import mmd2_unbiased
from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples

# Target draws for evaluation use seed + FRESH_SEED_OFFSET, never a split's seed (train 1,
# val 2, test 3), so they are fresh data the model was not trained or selected on.
FRESH_SEED_OFFSET = 10_000
DENSITY_TARGETS = tuple(name for name, make in TARGETS.items() if make().has_density)


def toy_target(dataset, need_density: bool = False) -> Target:
    """The analytic target of a ``toy2d:NAME`` dataset; a DataError naming the fix otherwise."""
    target = dataset.target
    if target is None or tuple(dataset.raw_info.shape) != (2,):
        raise DataError(
            f"toy 2-D metrics need a toy2d:NAME dataset of 2-D points with an analytic target, got "
            f"'{dataset.spec}' ({dataset.raw_info.describe()}); use e.g. toy2d:gmm8"
        )
    if need_density and not target.has_density:
        raise DataError(
            f"toy2d:{target.name} has no analytic density, so KL(p||q) cannot be computed; compare "
            f"samples (rbf_mmd) or use a target with one: {', '.join(DENSITY_TARGETS)}"
        )
    return target


def fresh_target_draws(target: Target, n: int, seed: int) -> Tensor:
    """``n`` draws (n, 2) float32 from ``target``, from a generator seeded seed + FRESH_SEED_OFFSET."""
    if not isinstance(n, int) or n < 2:
        raise DgmError(f"n must be an integer >= 2 (20000 by default), got {n!r}")
    return target.sample(n, torch.Generator().manual_seed(FRESH_SEED_OFFSET + int(seed)))


@torch.no_grad()
def data_log_density(model: GenerativeModel, dataset, x: Tensor, batch_size: int = 1000) -> Tensor:
    """log q(x) (N,) float64 of raw points x (N, 2) in raw units: the model's log_prob of
    y = T(x) plus the transforms' ladj. Bound models give the ELBO instead, a lower bound.
    Points outside the transforms' domain (NaN, e.g. logit outside [0, 1]) get -inf."""
    if model.density == "none":
        raise DgmError(
            f"model '{model.name}' has no density (density 'none'); use the sample metrics "
            "(rbf_mmd, mode_coverage) for it"
        )
    kind = "log_prob" if model.density == "exact" else "elbo"
    was_training = model.training
    model.eval()
    y, ladj = dataset.apply_transforms(x)  # toy data is continuous: its transforms are deterministic
    log_q = per_example_log_prob(model, y, batch_size=batch_size, kind=kind) + ladj.double()
    model.train(was_training)
    return torch.nan_to_num(log_q, nan=-math.inf)


@dataclass(frozen=True)
class KLEstimate:
    """KL(p || q) in nats from ``n`` target draws, with its parts; see :func:`kl_to_target`."""

    kl: float  # E_p[log p(x) - log q(x)], control-variate estimate
    se: float  # standard error of kl (of the control-variate estimate)
    nll: float  # cross-entropy -E_p[log q(x)] (nats/example)
    nll_se: float
    entropy: float  # H(p) = -E_p[log p(x)], from the target
    entropy_method: str
    n: int
    bound: bool  # True when q's ELBO was used: kl and nll are then upper bounds


def kl_to_target(model: GenerativeModel, dataset, n: int = 20000, seed: int = 0, batch_size: int = 1000) -> KLEstimate:
    """KL(p || q) between the analytic target p of a ``toy2d`` dataset and the model q, in nats.

    Draws n fresh x ~ p (seed + FRESH_SEED_OFFSET); with d(x) = log p(x) - log q(x), where
    log q(x) = model.log_prob(T(x)) + ladj (see :func:`data_log_density`), KL = E_p[d(x)]
    = NLL - H(p), with NLL = -E_p[log q(x)] and H(p) = -E_p[log p(x)] known from the target.
    The two natural estimators, mean(d) and mean(-log q) - H(p), are unbiased but their errors
    differ by orders of magnitude: mean(d) is far better for q close to p (log p and log q rise
    and fall together), NLL - H(p) for a poor, flat q. Both are members of the control-variate
    family mean(d - c u) with u(x) = log p(x) + H(p), which has mean 0; the returned estimate uses
    the variance-minimising c = Cov(d, u) / Var(u), so its standard error is never worse than
    either (c = 0 gives mean(d), c = 1 gives NLL - H(p)). For bound models (density "bound")
    -ELBO replaces -log q and the result is an upper bound on KL.

    Raises a DataError for datasets without an analytic density (moons, spirals) and a DgmError
    for models without a density.
    """
    target = toy_target(dataset, need_density=True)
    log_p, log_q = _at_target_draws(model, dataset, target, n, seed, batch_size)
    return _kl_estimate(model, target, log_p, log_q)


def _at_target_draws(model: GenerativeModel, dataset, target: Target, n: int, seed: int, batch_size: int):
    """log p(x) and log q(x), both (n,) float64, at n fresh draws x ~ p of the target (raw units)."""
    x = fresh_target_draws(target, n, seed)
    return target.log_prob(x).double(), data_log_density(model, dataset, x, batch_size).double()


def _kl_estimate(model: GenerativeModel, target: Target, log_p: Tensor, log_q: Tensor) -> KLEstimate:
    """:class:`KLEstimate` from log p and log q at draws of the target; H(p) is the control variate."""
    entropy = target.entropy()
    est = kl_from_draws(log_p, log_q, entropy_p=entropy)
    return KLEstimate(
        kl=est.value,
        se=est.se,
        nll=float(-log_q.mean()),
        nll_se=float(log_q.std() / math.sqrt(est.n)),
        entropy=entropy,
        entropy_method=target.entropy_method,
        n=est.n,
        bound=model.density == "bound",
    )


def js_to_target(
    model: GenerativeModel,
    dataset,
    n: int = 20000,
    seed: int = 0,
    batch_size: int = 1000,
    samples: Tensor | None = None,
) -> DivergenceEstimate:
    """JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, between the analytic target p
    of a ``toy2d`` dataset and a model q with an exact density, in nats (in [0, log 2]).

    Uses the first k = min(n, len(samples)) of the model samples y ~ q and of n fresh target
    draws x ~ p (seed + FRESH_SEED_OFFSET), as :func:`toy2d_metrics` does. ``samples`` are in
    model space (as from :func:`dgm.sampling.draw_samples`; by default n drawn with ``seed``) and
    are mapped to raw units with ``dataset.to_display``; log q in raw units includes the
    transforms' ladj (:func:`data_log_density`). The estimate is
    :func:`dgm.eval.divergences.js_from_draws`.

    Raises a DataError for datasets without an analytic density and a DgmError for models
    without an exact density: JS needs log q, which an ELBO (a lower bound) does not give.
    """
    target = toy_target(dataset, need_density=True)
    _need_exact_density(model)
    if samples is None:
        samples = draw_samples(model, n, seed=seed, batch_size=batch_size)
    y = _points(dataset.to_display(samples), "model samples")[:n]
    x = fresh_target_draws(target, n, seed)[: len(y)]  # as toy2d_metrics, which shares the draws with KL
    log_p, log_q = target.log_prob(x).double(), data_log_density(model, dataset, x, batch_size).double()
    return _js_estimate(model, dataset, target, log_p, log_q, y, batch_size)


def _need_exact_density(model: GenerativeModel) -> None:
    if model.density != "exact":
        has = "an ELBO, a lower bound on log q" if model.density == "bound" else "no density"
        raise DgmError(
            f"JS(p||q) needs the model's log q(x), and model '{model.name}' (density '{model.density}') has {has}; "
            "use kl_to_target (an upper bound for bound models) or rbf_mmd"
        )


def _js_estimate(
    model: GenerativeModel, dataset, target: Target, log_p_x: Tensor, log_q_x: Tensor, y: Tensor, batch_size: int
) -> DivergenceEstimate:
    """JS from log p, log q at target draws x and the model samples y (raw units, as many as x)."""
    log_p_y, log_q_y = target.log_prob(y).double(), data_log_density(model, dataset, y, batch_size).double()
    return js_from_draws(log_p_x, log_q_x, log_p_y, log_q_y)


def _points(x, name: str, min_rows: int = 2) -> Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.dim() != 2 or x.shape[0] < min_rows:
        raise DgmError(f"{name} must be an (N, F) array with N >= {min_rows}, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise DgmError(f"{name} has {bad} points with NaN or infinite values; the model may have diverged")
    return x


def median_bandwidth(x: Tensor, y: Tensor, max_points: int = 1000) -> float:
    """Median heuristic (Gretton et al. 2012): h = median{|z_i - z_j| : i < j} over the pooled
    sample z = (first max_points rows of x, first max_points rows of y), Euclidean distances
    (the lower median when the number of pairs is even)."""
    z = torch.cat([x[:max_points], y[:max_points]]).double()
    h = float(torch.pdist(z).median())
    if not h > 0:
        raise DgmError("all points coincide, so the median-heuristic bandwidth is 0; give a bandwidth")
    return h


@dataclass(frozen=True)
class MMDEstimate:
    """Unbiased MMD^2 with an RBF kernel; see :func:`rbf_mmd`."""

    value: float  # mean of the per-block unbiased MMD^2 (can be slightly negative)
    se: float  # std over blocks / sqrt(blocks); NaN for one block
    bandwidth: float  # h of k(a, b) = exp(-|a - b|^2 / (2 h^2))
    blocks: int


def rbf_mmd(x, y, bandwidth: float | None = None, block_size: int = 2000) -> MMDEstimate:
    """Unbiased MMD^2 (Gretton et al. 2012) between samples x (m, F) and y (n, F) with the kernel
    k(a, b) = exp(-|a - b|^2 / (2 h^2)); h = ``bandwidth``, or :func:`median_bandwidth` of x and y.

    To bound memory the rows are cut into B = max(1, min(m, n) // block_size) consecutive blocks
    and :func:`dgm.eval.sample_quality.mmd2_unbiased` is averaged over the block pairs (still
    unbiased for i.i.d. rows), which also gives a standard error.
    """
    x, y = _points(x, "x"), _points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise DgmError(f"x and y must have the same number of features, got {x.shape[1]} and {y.shape[1]}")
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise DgmError(f"the RBF bandwidth must be positive, got {bandwidth!r}")

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        d2 = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        return torch.exp(-d2 / (2 * h * h))

    blocks = max(1, min(len(x), len(y)) // block_size)
    values = torch.stack(
        [mmd2_unbiased(a, b, kernel) for a, b in zip(x.tensor_split(blocks), y.tensor_split(blocks), strict=True)]
    )
    se = float(values.std() / math.sqrt(blocks)) if blocks > 1 else math.nan
    return MMDEstimate(float(values.mean()), se, h, blocks)


@dataclass(frozen=True)
class ModeCoverage:
    """Mode coverage of samples of a Gaussian mixture; see :func:`mode_coverage`."""

    covered: int  # modes with at least min_count high-quality samples
    modes: int  # number of modes K
    hq_fraction: float  # fraction of samples within n_std std of their nearest mode
    counts: tuple[int, ...]  # high-quality samples per mode
    min_count: int  # high-quality samples a mode needs to count as captured


def mode_coverage(samples, means, std: float, n_std: float = 3.0, min_share: float = 0.2) -> ModeCoverage:
    """Modes captured and high-quality fraction, after VEEGAN (Srivastava et al. 2017, Sec. 5.1).

    As in VEEGAN, a sample is *high quality* when its Euclidean distance to the nearest mode mean
    is at most n_std * std (isotropic components N(mean_k, std^2 I)), and is assigned to that
    mode. For a perfect model with well-separated modes the high-quality fraction is the 2-D
    Rayleigh probability 1 - exp(-n_std^2 / 2), 0.9889 for n_std = 3.

    A mode is *captured* when at least min_count = max(1, ceil(min_share * N / K)) high-quality
    samples are assigned to it: ``min_share`` (default 0.2) of the N / K a perfect model gives it.
    VEEGAN counts a mode with a single sample (``min_share=0`` gives that rule), which with
    N = 2500 works for its narrow modes but not for wide ones at large N: in gmm8 (std 0.5 on a
    circle of radius 4) the 3-std discs of neighbours are only 0.06 apart, and about 0.06% of a
    mode's samples land within 3 std of each neighbour, so a model missing every other mode
    would still be credited with all 8 at N = 20000.

    samples (N, 2), means (K, 2), both in the same (raw) units.
    """
    samples, means = _points(samples, "samples"), _points(means, "means", min_rows=1)
    if samples.shape[1] != means.shape[1]:
        raise DgmError(f"samples have {samples.shape[1]} features but the means have {means.shape[1]}")
    if not (std > 0 and n_std > 0 and min_share >= 0):
        raise DgmError(f"std and n_std must be positive and min_share >= 0, got {std!r}, {n_std!r}, {min_share!r}")
    dist, nearest = torch.cdist(samples, means).min(dim=1)  # (N,), (N,)
    hq = dist <= n_std * std
    counts = torch.bincount(nearest[hq], minlength=len(means))
    min_count = max(1, math.ceil(min_share * len(samples) / len(means)))
    return ModeCoverage(
        covered=int((counts >= min_count).sum()),
        modes=len(means),
        hq_fraction=float(hq.double().mean()),
        counts=tuple(int(c) for c in counts),
        min_count=min_count,
    )


def toy2d_metrics(
    model: GenerativeModel,
    dataset,
    n: int = 20000,
    seed: int = 0,
    batch_size: int = 1000,
    samples: Tensor | None = None,
    kl: bool = True,
) -> dict:
    """Toy 2-D metrics of ``model`` on a ``toy2d`` dataset, as metrics.json entries
    ``{name: {"value", "unit", "what", "se"?, "n"?}}``:

    - ``kl`` (exact models) or ``kl_bound`` (bound models), from n target draws, when the
      target has a density and ``kl`` is true;
    - ``js`` (exact models, with ``kl``): :func:`js_to_target` from the model samples and as many
      of the same target draws (no JS for bound models: it needs log q, which a bound does not give);
    - ``mmd_rbf``: :func:`rbf_mmd` between the model samples and as many fresh target draws;
    - for Gaussian mixtures (gmm8, grid25): ``modes_covered`` (with ``"of"`` = K) and
      ``hq_fraction`` from :func:`mode_coverage`.

    ``samples`` are model-space samples (as from :func:`dgm.sampling.draw_samples`); by default
    n are drawn with ``seed``. They are mapped to raw units with ``dataset.to_display``; target
    draws use another random stream.
    """
    target = toy_target(dataset)
    if samples is None:
        samples = draw_samples(model, n, seed=seed, batch_size=batch_size)
    samples = dataset.to_display(samples)
    m = len(samples)
    metrics = {}
    if kl and model.density != "none" and target.has_density:
        log_p, log_q = _at_target_draws(model, dataset, target, n, seed, batch_size)
        est = _kl_estimate(model, target, log_p, log_q)
        name, kind = ("kl_bound", "upper bound on KL(p||q) using -ELBO") if est.bound else ("kl", "KL(p||q)")
        metrics[name] = {
            "value": est.kl,
            "se": est.se,
            "unit": "nats",
            "n": n,
            "what": f"{kind} = NLL - H(p) to the analytic target {target.name} over {est.n} fresh target draws "
            f"(NLL {est.nll:.4f}, H(p) {est.entropy:.4f}; control-variate mean of log p - log q)"
            + ("; no JS(p||q): it needs log q, which a bound does not give" if est.bound else ""),
        }
        if model.density == "exact":
            y = _points(samples, "model samples")[: min(n, m)]
            k = len(y)
            js = _js_estimate(model, dataset, target, log_p[:k], log_q[:k], y, batch_size)
            metrics["js"] = {
                "value": js.value,
                "se": js.se,
                "unit": "nats",
                "n": k,
                "what": f"JS(p||q) = KL(p||m)/2 + KL(q||m)/2, m = (p+q)/2, between the analytic target "
                f"{target.name} (p) and the model (q), by Monte Carlo over {k} fresh target draws and {k} model "
                "samples: mean of log 2 - H_b(D), D = p/(p+q) the optimal discriminator (0 <= JS <= log 2)",
            }
    mmd = rbf_mmd(samples, fresh_target_draws(target, m, seed))
    metrics["mmd_rbf"] = {
        "value": mmd.value,
        **({"se": mmd.se} if mmd.blocks > 1 else {}),
        "unit": "MMD^2",
        "n": m,
        "what": f"unbiased MMD^2 between model samples and fresh target draws, RBF kernel exp(-d^2/(2h^2)) with "
        f"h = {mmd.bandwidth:.4g} (median pairwise distance of the pooled samples), mean over {mmd.blocks} blocks",
    }
    if isinstance(target, GaussianMixture):
        cov = mode_coverage(samples, target.modes, target.std)
        metrics["modes_covered"] = {
            "value": float(cov.covered),
            "of": cov.modes,
            "unit": "modes",
            "n": m,
            "what": f"modes (of {cov.modes}) that are the nearest mode of at least {cov.min_count} high-quality "
            f"samples (a fifth of n/{cov.modes}), those within 3 std = {3 * target.std:g} of it "
            "(after VEEGAN, Srivastava et al. 2017)",
        }
        p = cov.hq_fraction
        metrics["hq_fraction"] = {
            "value": p,
            "se": math.sqrt(p * (1 - p) / m),
            "unit": "fraction",
            "n": m,
            "what": "fraction of samples within 3 std of their nearest mode; "
            "a perfect model gives about 1 - exp(-9/2) = 0.989",
        }
    return metrics
