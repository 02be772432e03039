"""Uses of a trained model's latent space: interpolation, attribute vectors, 2-D maps of the
codes, decoded grids, reconstructions and denoising.

The mathematics are plain functions on codes ``z`` (..., K):

- :func:`lerp`: z(t) = (1 - t) z_a + t z_b.
- :func:`slerp`: the direction moves along the great circle (Shoemake 1985, "Animating rotation
  with quaternion curves"; White 2016, "Sampling generative networks"), the norm linearly.
- :func:`attribute_vector`: v = mean(z | label b) - mean(z | label a) (Larsen et al. 2016;
  White 2016), and :func:`apply_attribute`: z + alpha v.
- :func:`latent_projection`: the codes themselves when K = 2, else their top two principal
  components.
- :func:`grid_coordinates`: Kingma & Welling's (2014, fig. 4) grid Φ^{-1}(p) over evenly
  spaced probabilities p, so a grid of decoded latents covers the prior N(0, I).

The other functions take a model with ``has_latent`` and its dataset and compute what each
picture of :mod:`dgm.viz.latent` shows, in model space on the CPU; they check indices and
labels and raise one-line :class:`ConfigError` / :class:`DataError` naming the valid values.
Codes are the encoder's means (:func:`dgm.eval.representation.latent_means`); conditional models
get each example's label.

Models with a latent space but no encoder (``has_encoder`` False: GANs, whose generator maps z to
x and nothing maps x back) have no codes of data. For them :func:`interpolation` and
:func:`attribute_rows` work on prior draws instead: the two ends of a path are the latents
z ~ N(0, I) drawn with seeds i and j (:func:`prior_draw`, the latent of ``dgm sample RUN -n 1
--seed i``), and the attribute vector is estimated on generated samples classified by the shipped
digit classifier (:func:`generated_attribute_rows`). Maps, reconstructions and denoising need an
encoder and say so (:func:`check_encoder`).

>>> import dgm
>>> from dgm.runs import load_dataset_of
>>> model, ds = dgm.load("runs/vae"), load_dataset_of("runs/vae")
>>> path = interpolation(model, ds, 0, 5, steps=8)     # decoded linear and spherical paths
>>> path.linear.shape, path.spherical.shape            # (8, 1, 8, 8) each, model space
>>> gan = dgm.load("runs/dcgan")                       # no encoder: 0 and 5 are seeds of z
>>> interpolation(gan, ds, 0, 5, steps=8).z_from       # (100,), the prior draw of seed 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from typing import NamedTuple

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.eval.representation import latent_means
from dgm.models.base import GenerativeModel
from dgm.models.latent.noise import check_noise, corrupt
from dgm.rng import make_generator

GENERATOR_TOOLS = ("dgm interpolate", "dgm attribute", "dgm sample")  # what works without an encoder
SAMPLES = 5000  # latents drawn for a generated attribute vector
MIN_CLASS_SAMPLES = 10  # samples per class below which a class mean of z is mostly noise

# ----- the mathematics -------------------------------------------------------------------------


def _alphas(alphas, like: Tensor) -> Tensor:
    """``alphas`` as a 1-D float tensor (A,) of ``like``'s dtype and device."""
    t = torch.as_tensor(alphas, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)
    if t.dim() != 1 or t.numel() == 0:
        raise ConfigError(f"alphas must be a non-empty list of numbers, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ConfigError(f"alphas must be finite numbers, got {t.tolist()}")
    return t


def lerp(z_a: Tensor, z_b: Tensor, alphas) -> Tensor:
    """Linear interpolation z(t) = (1 - t) z_a + t z_b at each t in ``alphas``.

    ``z_a`` and ``z_b`` (..., K) give (..., A, K); t = 0 and t = 1 return the endpoints exactly.
    """
    t = _alphas(alphas, z_a)
    a, b = z_a.unsqueeze(-2), z_b.unsqueeze(-2)  # (..., 1, K)
    w = t.unsqueeze(-1)  # (A, 1)
    out = a + w * (b - a)  # (..., A, K)
    return torch.where(w == 1, b, torch.where(w == 0, a, out))


def slerp(z_a: Tensor, z_b: Tensor, alphas, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation: the direction on the great circle, the norm linearly.

    With u = z / |z|, cos Ω = u_a · u_b and r(t) = |z_a| + t (|z_b| - |z_a|),

        d(t) = [sin((1 - t) Ω) u_a + sin(t Ω) u_b] / sin Ω,    z(t) = r(t) d(t) / |d(t)|

    (Shoemake 1985; White 2016 for generative models). For endpoints of equal norm the path stays
    on the sphere of that norm (|z(t)| = |z_a| up to rounding), where the straight line cuts
    inside it to latents the prior rarely draws. Where the endpoints are parallel, antiparallel
    (no unique great circle) or zero (sin Ω < ``eps``) it falls back to :func:`lerp`.
    ``z_a`` and ``z_b`` (..., K) give (..., A, K); t = 0 and t = 1 return the endpoints exactly.
    """
    t = _alphas(alphas, z_a)
    a64, b64, t64 = z_a.double(), z_b.double(), t.double()
    r_a, r_b = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)  # (..., 1)
    u_a, u_b = a64 / r_a.clamp_min(1e-300), b64 / r_b.clamp_min(1e-300)
    cos = (u_a * u_b).sum(-1, keepdim=True).clamp(-1.0, 1.0)  # (..., 1)
    omega = torch.acos(cos).unsqueeze(-2)  # (..., 1, 1)
    sin = torch.sin(omega)
    w = t64.unsqueeze(-1)  # (A, 1)
    safe = sin.clamp_min(eps)
    d = (torch.sin((1 - w) * omega) * u_a.unsqueeze(-2) + torch.sin(w * omega) * u_b.unsqueeze(-2)) / safe
    r = r_a.unsqueeze(-2) + w * (r_b - r_a).unsqueeze(-2)  # (..., A, 1)
    out = r * d / d.norm(dim=-1, keepdim=True).clamp_min(1e-300)  # (..., A, K)
    out = torch.where(sin < eps, lerp(a64, b64, t64), out).to(z_a.dtype)
    a, b, w = z_a.unsqueeze(-2), z_b.unsqueeze(-2), t.unsqueeze(-1)
    return torch.where(w == 1, b, torch.where(w == 0, a, out))


def attribute_vector(z: Tensor, labels: Tensor | None, a: int, b: int) -> Tensor:
    """The attribute vector v = mean(z_i : y_i = b) - mean(z_i : y_i = a), shape (K,).

    ``z`` (N, K) codes with ``labels`` (N,). Adding v to a code of class a moves it toward class
    b (Larsen et al. 2016, "Autoencoding beyond pixels"; White 2016). A DataError names the
    labels present when either group is empty or there are no labels.
    """
    if labels is None:
        raise DataError("attribute vectors need labelled data; this data has no labels")
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.numel() != z.shape[0]:
        raise DataError(f"got {z.shape[0]} codes but {labels.numel()} labels")
    means = []
    for label in (a, b):
        group = z[labels.to(z.device) == label]
        if group.shape[0] == 0:
            raise DataError(f"no example has label {label}; labels present: {_present(labels)}")
        means.append(group.double().mean(0))
    return (means[1] - means[0]).to(z.dtype)


def apply_attribute(z: Tensor, v: Tensor, alphas) -> Tensor:
    """z + alpha v for each alpha: ``z`` (..., K), ``v`` (K,) give (..., A, K); alpha = 0 returns
    ``z`` exactly."""
    t = _alphas(alphas, z)
    w = t.unsqueeze(-1)  # (A, 1)
    base = z.unsqueeze(-2)  # (..., 1, K)
    return torch.where(w == 0, base, base + w * v.to(z))


class Projection(NamedTuple):
    """Codes seen in two dimensions: ``points`` (N, 2), or (N, 1) for a 1-d latent; ``explained``
    the fraction of the codes' variance the points keep (1.0 when they are the codes);
    ``components`` (2, K) and ``mean`` (K,) of the PCA, or None when the points are the codes."""

    points: Tensor
    explained: float
    components: Tensor | None = None
    mean: Tensor | None = None

    def describe(self, k: int) -> str:
        """'2-d latent' or 'PCA of 16-d latent, 63% of variance'."""
        if self.components is None:
            return f"{k}-d latent"
        return f"PCA of {k}-d latent, {self.explained:.0%} of variance"


def latent_projection(z: Tensor, fit_on: Tensor | None = None) -> Projection:
    """The codes ``z`` (N, K) themselves when K <= 2, else their projection on the top two
    principal directions of ``fit_on`` (default ``z``).

    With centred codes C = fit_on - mean = U S V^T (SVD), the points are (z - mean) V_{:2} and
    explained = (s_1² + s_2²) / Σ s_k² (1.0 when the codes do not vary at all). Signs are fixed so
    that each direction's largest-magnitude entry is positive, so the same codes always give the
    same picture.
    """
    if z.dim() != 2 or z.shape[0] == 0:
        raise DataError(f"codes must have shape (N, K) with N >= 1, got {tuple(z.shape)}")
    if z.shape[1] <= 2:
        return Projection(z, 1.0)
    fit = (z if fit_on is None else fit_on).double()
    mean = fit.mean(0)  # (K,)
    _, s, vh = torch.linalg.svd(fit - mean, full_matrices=False)  # vh (min(N, K), K)
    top = torch.zeros(2, z.shape[1], dtype=torch.float64)
    top[: min(2, vh.shape[0])] = vh[:2]
    biggest = top.abs().argmax(dim=1)  # (2,)
    signs = torch.sign(top[torch.arange(2), biggest])
    top = top * torch.where(signs == 0, torch.ones_like(signs), signs).unsqueeze(1)
    total = float((s**2).sum())
    explained = float((s[:2] ** 2).sum()) / total if total > 0 else 1.0
    points = (z.double() - mean) @ top.T  # (N, 2)
    return Projection(points.to(z.dtype), explained, top.to(z.dtype), mean.to(z.dtype))


def grid_coordinates(n: int, span: float = 0.95, codes: Tensor | None = None) -> Tensor:
    """``n`` grid coordinates per latent axis, shape (n, K) with K = 2 (or the codes' K).

    The probabilities p_j = (1 - span)/2 + span j/(n - 1), j = 0..n-1, cover the central ``span``
    of each axis; the coordinates are the quantiles at p_j: of N(0, 1), Φ^{-1}(p_j) (Kingma &
    Welling 2014, so the grid covers the prior of a VAE), or with ``codes`` (N, K) the empirical
    quantiles of each axis (for autoencoders, which have no prior).
    """
    if n < 2:
        raise ConfigError(f"a decoded grid needs at least 2 points per axis, got {n}")
    if not 0 < span < 1:
        raise ConfigError(f"span is the central probability a grid covers, in (0, 1), got {span}")
    p = (1 - span) / 2 + span * torch.linspace(0, 1, n, dtype=torch.float64)  # (n,)
    if codes is None:
        return torch.special.ndtri(p).unsqueeze(1).expand(n, 2).float()
    return torch.quantile(codes.double(), p, dim=0).float()  # (n, K)


# ----- checks ----------------------------------------------------------------------------------


def latent_model_names() -> list[str]:
    """Names of the registered models with a latent space."""
    from dgm.registry import list_models

    return [row["name"] for row in list_models() if row["latent"]]


def require_latent(model: GenerativeModel) -> None:
    """A ConfigError naming the models that have a latent space unless ``model`` has one."""
    if not model.has_latent:
        names = latent_model_names()
        which = ", ".join(names) if names else "a model with a latent space"
        raise ConfigError(
            f"model '{model.name or type(model).__name__}' has no latent space (has_latent is False); "
            f"latent tools need {which}"
        )


def check_encoder(model: GenerativeModel, what: str) -> None:
    """A ConfigError unless ``model`` has an encoder: ``what`` (codes of data, reconstructions)
    needs one. The message names the latent tools that work without (a GAN's)."""
    require_latent(model)
    if not model.has_encoder:
        raise ConfigError(
            f"{what} needs an encoder, and model '{model.name or type(model).__name__}' has none "
            f"(has_encoder is False): it maps latents to data, not data to latents; for this model use "
            f"{', '.join(GENERATOR_TOOLS[:-1])} or {GENERATOR_TOOLS[-1]}"
        )


def check_class(model: GenerativeModel, label: int) -> int:
    """``label`` if it is a class of a conditional ``model``'s data (0..K-1); a ConfigError if
    the model is not conditional or the label is out of range."""
    if not model.conditional:
        raise ConfigError(
            f"a label is for conditional models; '{model.name or type(model).__name__}' was trained without "
            f"conditional=true: drop --label"
        )
    k = model.config.data.num_classes
    if not 0 <= label < k:
        raise ConfigError(f"label {label} is not a class of this {model.name}'s data: use 0..{k - 1}")
    return int(label)


def _present(labels: Tensor) -> str:
    return ", ".join(str(v) for v in torch.unique(torch.as_tensor(labels)).tolist())


def check_index(index: int, dataset, split: str = "test") -> int:
    """``index`` if it addresses an example of ``split``, else a ConfigError naming the range."""
    n = dataset.split(split).n
    if not 0 <= index < n:
        raise ConfigError(
            f"example {index} is not in the {split} split of '{dataset.spec}' ({n} examples); use 0..{n - 1}"
        )
    return index


def require_labels(dataset, split: str, what: str) -> Tensor:
    """The labels of ``split``; a DataError saying ``what`` needs labels when there are none."""
    labels = dataset.split(split).y
    if labels is None:
        raise DataError(f"{what} need labelled data; '{dataset.spec}' has no labels")
    return labels


def check_label(label: int, labels: Tensor, where: str) -> int:
    """``label`` if some example of ``labels`` has it, else a DataError listing those present."""
    if not bool((labels == label).any()):
        raise DataError(f"no example in {where} has label {label}; labels present: {_present(labels)}")
    return label


# ----- encoding and decoding -------------------------------------------------------------------


def _cond(model: GenerativeModel, labels: Tensor | None) -> Tensor | None:
    """The labels a conditional model needs (None for others)."""
    if not model.conditional:
        return None
    if labels is None:
        raise DataError(f"conditional model '{model.name}' needs labelled data")
    return labels


def encode(model: GenerativeModel, x: Tensor, labels: Tensor | None = None) -> Tensor:
    """Codes (N, K) on the CPU: the encoder's means of model-space ``x``; a conditional model
    gets ``labels``. A ConfigError for a model without an encoder (:func:`check_encoder`)."""
    check_encoder(model, "encoding data")
    return latent_means(model, x, cond=_cond(model, labels))


@torch.no_grad()
def decode(model: GenerativeModel, z: Tensor, labels: Tensor | None = None, batch_size: int = 500) -> Tensor:
    """The decoder's means (N, *data.shape) of codes ``z`` (N, K), in model space on the CPU,
    computed in batches in eval mode (the mode is restored after)."""
    require_latent(model)
    cond = _cond(model, labels)
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, z.shape[0], batch_size):
        zb = z[i : i + batch_size].to(model.device, model.dtype)
        cb = None if cond is None else cond[i : i + batch_size].to(model.device)
        out.append(model.decode(zb, cond=cb).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, *model.config.data.shape)


class Codes(NamedTuple):
    """Examples of one split and their codes: ``x`` (N, *shape) model space, ``z`` (N, K),
    labels ``y`` (N,) or None, and ``index`` (N,) their positions in the split."""

    x: Tensor
    z: Tensor
    y: Tensor | None
    index: Tensor


def pick(n_total: int, n: int | None, seed: int | None) -> Tensor:
    """``n`` of ``n_total`` positions drawn without replacement (all of them for None or
    n >= n_total), sorted; the same seed picks the same ones."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    if n < 1:
        raise ConfigError(f"the number of examples must be at least 1, got {n}")
    return torch.randperm(n_total, generator=make_generator(seed or 0))[:n].sort().values


def split_codes(
    model: GenerativeModel, dataset, split: str = "test", n: int | None = None, seed: int = 0, index=None
) -> Codes:
    """Encode ``n`` examples of ``split`` picked by ``seed`` (all by default), or the examples
    at ``index``. Stochastic transforms draw their noise from ``seed``."""
    check_encoder(model, "encoding data")
    data = dataset.split(split)
    chosen = pick(data.n, n, seed) if index is None else torch.as_tensor(index, dtype=torch.long).reshape(-1)
    x, _ = dataset.apply_transforms(data.x[chosen], make_generator(seed))
    y = None if data.y is None else data.y[chosen]
    return Codes(x, encode(model, x, y), y, chosen)


# ----- what each picture shows -----------------------------------------------------------------


class Grid(NamedTuple):
    """A decoded grid: ``x`` (n*n, *shape) model space, row-major with the first row at the
    largest z_2 (so it reads like a plot with z_2 upwards); ``coords`` (n, 2) the grid values
    of z_1 and z_2 (increasing); ``prior`` True for N(0, 1) quantiles, False for the codes';
    ``span`` the central probability the grid covers on each axis."""

    x: Tensor
    coords: Tensor
    prior: bool
    span: float


def decoded_grid(
    model: GenerativeModel, n: int = 15, span: float = 0.95, cond: int | None = None, codes: Tensor | None = None
) -> Grid:
    """Decode a regular n x n grid over a 2-d latent (Kingma & Welling 2014, fig. 4).

    The grid lies at the quantiles of :func:`grid_coordinates`: of the prior N(0, I) for models
    with a bound (VAEs), and of ``codes`` (N, 2) for models without a prior (autoencoders; the
    prior is used when no codes are given). Conditional models decode every point with label
    ``cond``. A ConfigError says how to get a 2-d latent when ``model.latent_dim != 2``.
    """
    require_latent(model)
    if model.latent_dim != 2:
        raise ConfigError(
            f"a decoded grid needs a 2-d latent, but this {model.name} has latent_dim={model.latent_dim}; "
            f"train one with --set latent_dim=2"
        )
    prior = model.density == "bound" or codes is None
    coords = grid_coordinates(n, span, None if prior else codes)  # (n, 2)
    z1 = coords[:, 0].repeat(n)  # columns: z_1 increasing left to right
    z2 = coords.flip(0)[:, 1].repeat_interleave(n)  # rows: z_2 decreasing top to bottom
    z = torch.stack([z1, z2], dim=1)  # (n*n, 2)
    labels = None
    if model.conditional:
        if cond is None:
            raise ConfigError(f"conditional model '{model.name}' needs a label for its decoded grid")
        labels = torch.full((n * n,), int(cond), dtype=torch.long)
        model.check_cond(labels, n * n)
    return Grid(decode(model, z, labels), coords, prior, span)


class Interpolation(NamedTuple):
    """Decoded paths between two latents: ``alphas`` (S,), ``linear`` and ``spherical``
    (S, *shape) model space, the ends ``x_from`` and ``x_to`` (*shape) and their latents
    ``z_from`` and ``z_to`` (K,). With ``seeds`` False the ends are two examples of the data
    (``x_*`` the examples, ``z_*`` their codes); with ``seeds`` True (a model without an encoder)
    they are the prior draws of two seeds (``x_*`` = decode(z_*)). ``label`` is the label every
    point was decoded with, if one was given."""

    alphas: Tensor
    linear: Tensor
    spherical: Tensor
    x_from: Tensor
    x_to: Tensor
    z_from: Tensor | None = None
    z_to: Tensor | None = None
    seeds: bool = False
    label: int | None = None


def check_latent_seed(seed: int, name: str = "seed") -> int:
    """``seed`` if it can seed a prior draw (an integer in 0..MAX_SEED), else a ConfigError that
    calls it ``name``."""
    from dgm.train.config import MAX_SEED

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"{name} must be an integer in 0..{MAX_SEED} (the seed of a latent z ~ N(0, I) for a model "
            f"without an encoder), got {seed!r}"
        )
    return seed


def prior_draw(model: GenerativeModel, seed: int) -> Tensor:
    """The latent z ~ N(0, I) (K,) on the CPU that ``model.prior_sample`` draws first from a
    generator seeded with ``seed``: the latent of ``dgm sample RUN -n 1 --seed seed``."""
    require_latent(model)
    return model.prior_sample(1, generator=make_generator(check_latent_seed(seed)))[0].float().cpu()


def _labels_of(model: GenerativeModel, label: int | None, n: int) -> Tensor | None:
    """``n`` copies of ``label`` (checked by :func:`check_class`), or None without a label."""
    return None if label is None else torch.full((n,), check_class(model, label), dtype=torch.long)


def _paths(model, z_a: Tensor, z_b: Tensor, alphas: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
    """The decoded :func:`lerp` and :func:`slerp` paths between ``z_a`` and ``z_b`` (K,)."""
    linear = decode(model, lerp(z_a, z_b, alphas), labels)
    return linear, decode(model, slerp(z_a, z_b, alphas), labels)


def interpolation(
    model: GenerativeModel,
    dataset,
    i: int,
    j: int,
    steps: int = 8,
    split: str = "test",
    seed: int = 0,
    label: int | None = None,
) -> Interpolation:
    """Decode :func:`lerp` and :func:`slerp` between two latents at ``steps`` evenly spaced t in
    [0, 1]: the codes of examples ``i`` and ``j`` of ``split``, or for a model without an encoder
    (a GAN) the prior draws of seeds ``i`` and ``j`` (:func:`prior_interpolation`; ``split`` and
    ``seed`` play no part).

    A conditional model decodes every point with ``label`` when one is given; without one, a
    conditional autoencoder decodes with the label of ``i`` for t < 1/2 and of ``j`` from there
    on, and a conditional GAN is refused (its samples have no label of their own). ``label`` is
    refused for an unconditional model.
    """
    if not model.has_encoder:
        return prior_interpolation(model, i, j, steps=steps, label=label)
    if steps < 2:
        raise ConfigError(f"an interpolation needs at least 2 steps (its two ends), got {steps}")
    check_index(i, dataset, split)
    check_index(j, dataset, split)
    alphas = torch.linspace(0, 1, steps)
    labels = _labels_of(model, label, steps)
    codes = split_codes(model, dataset, split, seed=seed, index=[i, j])
    if labels is None and codes.y is not None:
        labels = torch.where(alphas < 0.5, codes.y[0], codes.y[1])
    linear, spherical = _paths(model, codes.z[0], codes.z[1], alphas, labels)
    return Interpolation(alphas, linear, spherical, codes.x[0], codes.x[1], codes.z[0], codes.z[1], False, label)


def prior_interpolation(
    model: GenerativeModel, seed_a: int, seed_b: int, steps: int = 8, label: int | None = None
) -> Interpolation:
    """Decode :func:`lerp` and :func:`slerp` between the prior draws z_a, z_b ~ N(0, I) of seeds
    ``seed_a`` and ``seed_b`` (:func:`prior_draw`) at ``steps`` evenly spaced t in [0, 1]; the
    ends ``x_from`` = decode(z_a) and ``x_to`` = decode(z_b). A conditional model (a cgan)
    decodes every point with ``label``, which it needs: a ConfigError names the classes."""
    require_latent(model)
    if steps < 2:
        raise ConfigError(f"an interpolation needs at least 2 steps (its two ends), got {steps}")
    if model.conditional and label is None:
        k = model.config.data.num_classes
        raise ConfigError(
            f"conditional model '{model.name}' has no encoder, so nothing gives its images a label: "
            f"choose the class they are decoded with, --label L with L in 0..{k - 1}"
        )
    check_latent_seed(seed_a, "the first seed")
    check_latent_seed(seed_b, "the last seed")
    z_a, z_b = prior_draw(model, seed_a), prior_draw(model, seed_b)
    alphas = torch.linspace(0, 1, steps)
    labels = _labels_of(model, label, steps)
    linear, spherical = _paths(model, z_a, z_b, alphas, labels)
    ends = decode(model, torch.stack([z_a, z_b]), None if labels is None else labels[:2])
    return Interpolation(alphas, linear, spherical, ends[0], ends[1], z_a, z_b, True, label)


class AttributeRows(NamedTuple):
    """Examples moved along an attribute vector: ``alphas`` (A,), ``x`` (E, *shape) the examples,
    ``rows`` (E, A, *shape) their decoded codes z + alpha v, ``index`` (E,) their positions in
    the split, and ``norm`` = |v| next to ``spread`` = the codes' RMS distance to their mean.
    For a model without an encoder the examples are generated samples, ``index`` their positions
    among the draws, and ``counts`` = (n_a, n_b) the draws classified a and b (None for data)."""

    alphas: Tensor
    x: Tensor
    rows: Tensor
    index: Tensor
    norm: float
    spread: float
    counts: tuple[int, int] | None = None


def _check_counts(examples: int, samples: int | None) -> None:
    if examples < 1:
        raise ConfigError(f"the number of examples must be at least 1, got {examples}")
    if samples is not None and samples < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {samples}")


def _spread(z: Tensor) -> float:
    """The RMS distance of codes (N, K) to their mean."""
    return float((z - z.mean(0)).pow(2).sum(1).mean().sqrt())


def _moved_rows(model, z: Tensor, v: Tensor, alphas: Tensor, labels: Tensor | None) -> Tensor:
    """decode(z + alpha v) for codes (E, K) and each alpha: (E, A, *shape)."""
    moved = apply_attribute(z, v, alphas)  # (E, A, K)
    e, n_alpha = moved.shape[:2]
    rows = decode(model, moved.reshape(e * n_alpha, -1), None if labels is None else labels.repeat_interleave(n_alpha))
    return rows.reshape(e, n_alpha, *rows.shape[1:])


def attribute_rows(
    model: GenerativeModel,
    dataset,
    a: int,
    b: int,
    alphas: Sequence[float] = (-2, -1, 0, 1, 2),
    examples: int = 4,
    split: str = "test",
    seed: int = 0,
    samples: int | None = None,
) -> AttributeRows:
    """Move ``examples`` examples of label ``a`` of ``split`` along v = :func:`attribute_vector`
    from a to b, estimated on the train split, and decode z + alpha v for each alpha.

    Conditional models keep each example's label, so the rows show what the code alone carries
    of the a -> b difference. DataErrors name the labels present. A model without an encoder (a
    GAN) estimates v on ``samples`` generated samples instead (:func:`generated_attribute_rows`,
    default :data:`SAMPLES`; ``split`` plays no part); ``samples`` is refused for other models.
    """
    if not model.has_encoder:
        return generated_attribute_rows(
            model, dataset, a, b, alphas, examples, SAMPLES if samples is None else samples, seed
        )
    _check_counts(examples, None)
    if samples is not None:
        raise ConfigError(
            f"a number of samples is for models without an encoder (a GAN); the vector of '{model.name}' "
            f"comes from the codes of the train split: drop --samples"
        )
    alphas = _alphas(alphas, torch.zeros(0))
    labels = require_labels(dataset, split, "attribute vectors")
    train_labels = require_labels(dataset, "train", "attribute vectors")
    for label in (a, b):
        check_label(label, train_labels, f"the train split of '{dataset.spec}'")
    check_label(a, labels, f"the {split} split of '{dataset.spec}'")
    train = split_codes(model, dataset, "train", seed=seed)
    v = attribute_vector(train.z, train.y, a, b)  # (K,)
    candidates = torch.nonzero(labels == a).reshape(-1)
    chosen = candidates[pick(len(candidates), examples, seed)]
    codes = split_codes(model, dataset, split, seed=seed, index=chosen)
    rows = _moved_rows(model, codes.z, v, alphas, codes.y)
    return AttributeRows(alphas, codes.x, rows, chosen, float(v.norm()), _spread(train.z))


def digit_space(dataset, what: str):
    """The feature space of the shipped digit classifier for ``dataset``'s images
    (:func:`dgm.eval.features.feature_space`); a DataError naming the data it takes otherwise."""
    from dgm.eval.features import DIGIT_SPACES, feature_space

    info = dataset.raw_info
    if info.is_image and tuple(info.shape) in DIGIT_SPACES:
        return feature_space(info)
    shapes = " or ".join("x".join(map(str, shape)) for shape in DIGIT_SPACES)
    kind = "images" if info.is_image else "data"
    raise DataError(
        f"{what} classifies generated samples with dgm's digit classifier, which takes grey digits of shape "
        f"{shapes}; '{dataset.spec}' has {kind} of shape {'x'.join(map(str, info.shape))}, for which no "
        f"classifier ships"
    )


def classify_samples(dataset, x: Tensor, batch_size: int = 500) -> Tensor:
    """The classes (N,) the shipped digit classifier predicts, argmax_y p(y | x), for model-space
    images ``x`` (N, *shape) of ``dataset`` (shown in [0, 1] through ``dataset.to_display``)."""
    space = digit_space(dataset, "classifying samples")
    return space.probs(dataset.to_display(x), batch_size).argmax(1)


def generated_attribute_vector(z: Tensor, predicted: Tensor, a: int, b: int, least: int = MIN_CLASS_SAMPLES) -> Tensor:
    """v = mean(z_i : ŷ_i = b) - mean(z_i : ŷ_i = a), shape (K,), for latents ``z`` (N, K) whose
    decoded samples a classifier assigns to classes ``predicted`` (N,): :func:`attribute_vector`
    with predicted labels. A DataError names the counts and the fix when class a or b has fewer
    than ``least`` samples."""
    predicted = torch.as_tensor(predicted).reshape(-1)
    n = predicted.numel()
    n_a, n_b = int((predicted == a).sum()), int((predicted == b).sum())
    if min(n_a, n_b) < least:
        few = min(n_a, n_b)
        fix = (
            f"draw more with --samples {math.ceil(n * 2 * least / few / 1000) * 1000}"
            if few
            else "train the model longer or choose classes it draws (dgm eval RUN -m classes shows them)"
        )
        raise DataError(
            f"the digit classifier assigns {n_a} of {n} generated samples to class {a} and {n_b} to class {b}; "
            f"an attribute vector needs at least {least} of each: {fix}"
        )
    return attribute_vector(z, predicted, a, b)


def generated_attribute_rows(
    model: GenerativeModel,
    dataset,
    a: int,
    b: int,
    alphas: Sequence[float] = (-2, -1, 0, 1, 2),
    examples: int = 4,
    samples: int = SAMPLES,
    seed: int = 0,
) -> AttributeRows:
    """Attribute rows of a model without an encoder (a GAN), from its own samples.

    Draw ``samples`` latents z ~ N(0, I) with ``seed``, decode them and classify the samples with
    the shipped digit classifier (:func:`classify_samples`); v = mean z of the samples classified
    b - mean z of those classified a (:func:`generated_attribute_vector`). Then ``examples`` of
    the samples classified a (picked by ``seed``) are moved to z + alpha v and decoded; alpha = 0
    gives the sample back. A conditional GAN is refused: its label, not z, sets the class.
    """
    require_latent(model)
    _check_counts(examples, samples)
    alphas = _alphas(alphas, torch.zeros(0))
    if model.conditional:
        raise ConfigError(
            f"conditional model '{model.name}' takes its class from the label, not from z, so there is no class "
            f"direction in z to find: compare its classes with dgm sample RUN --cond L, or morph within one with "
            f"dgm interpolate RUN --from S --to T --label L"
        )
    space = digit_space(dataset, "an attribute vector of a model without an encoder")
    classes = int(space.network.config.num_classes)
    for label in (a, b):
        if not 0 <= label < classes:
            raise ConfigError(f"class {label} is not one the digit classifier predicts: use 0..{classes - 1}")
    z = model.prior_sample(samples, generator=make_generator(seed)).float().cpu()  # (N, K)
    x = decode(model, z)  # (N, *shape)
    predicted = classify_samples(dataset, x)
    v = generated_attribute_vector(z, predicted, a, b)  # (K,)
    candidates = torch.nonzero(predicted == a).reshape(-1)
    chosen = candidates[pick(len(candidates), examples, seed)]
    rows = _moved_rows(model, z[chosen], v, alphas, None)
    counts = (int((predicted == a).sum()), int((predicted == b).sum()))
    return AttributeRows(alphas, x[chosen], rows, chosen, float(v.norm()), _spread(z), counts)


def reconstructions(
    model: GenerativeModel, dataset, n: int = 10, split: str = "test", seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``n`` examples of ``split`` picked by ``seed`` and their reconstructions decode(mean of
    q(z | x)), both (n, *shape) in model space."""
    check_encoder(model, "a reconstruction")
    codes = split_codes(model, dataset, split, n=n, seed=seed)
    return codes.x, decode(model, codes.z, codes.y)


def config_noise(model: GenerativeModel) -> tuple[str, float] | None:
    """(noise, noise_level) of a model whose config has those fields (a denoising
    autoencoder; its ``noise="auto"`` resolved for its data), else None."""
    from dgm.models.latent.dae import noise_kind

    names = {f.name for f in fields(model.config)}
    if {"noise", "noise_level"} <= names:
        return noise_kind(str(model.config.noise), model.config.data), float(model.config.noise_level)
    return None


def default_noise(model: GenerativeModel, dataset) -> tuple[str, float]:
    """The corruption of a denoising picture: a denoising autoencoder's own (config ``noise``,
    ``noise_level``); for other models masking of p = 0.25 on binary and discrete data, and
    Gaussian noise of σ = 0.25 x the train split's standard deviation (in model space) on
    continuous data."""
    own = config_noise(model)
    if own is not None:
        return own
    kind = "gaussian" if dataset.info.support == "continuous" else "masking"
    return kind, noise_level(kind, dataset)


def noise_level(kind: str, dataset) -> float:
    """The default level of noise ``kind``: 0.25 x the train split's standard deviation (model
    space) for Gaussian noise on continuous data, else 0.25 (a probability, or for Gaussian noise
    on discrete data a fraction of the level range)."""
    if kind == "gaussian" and dataset.info.support == "continuous":
        x, _ = dataset.transformed("train")
        return round(0.25 * float(x.std()), 4)
    return 0.25


class Denoising(NamedTuple):
    """Denoising triples, each (n, *shape) in model space: the examples ``x``, their corrupted
    copies ``corrupted`` and the model's ``output`` = reconstruct(corrupted); ``kind`` and
    ``level`` of the noise."""

    x: Tensor
    corrupted: Tensor
    output: Tensor
    kind: str
    level: float


def denoising(
    model: GenerativeModel,
    dataset,
    n: int = 10,
    kind: str | None = None,
    level: float | None = None,
    split: str = "test",
    seed: int = 0,
) -> Denoising:
    """Corrupt ``n`` examples of ``split`` with :func:`dgm.models.latent.noise.corrupt` (noise
    drawn from ``seed``) and reconstruct them. ``kind`` and ``level`` default to
    :func:`default_noise`; with only ``level`` given, the default kind takes it."""
    check_encoder(model, "denoising")
    default_kind, default_level = default_noise(model, dataset)
    kind = default_kind if kind is None else kind
    if level is None:
        level = default_level if kind == default_kind else noise_level(kind, dataset)
    check_noise(kind, level, dataset.info)
    codes = split_codes(model, dataset, split, n=n, seed=seed)
    noisy = corrupt(codes.x, dataset.info, kind, level, make_generator(seed))
    output = decode(model, encode(model, noisy, codes.y), codes.y)
    return Denoising(codes.x, noisy, output, kind, float(level))


def grid_extent(coords: Tensor) -> tuple[float, float, float, float]:
    """(z1_min, z1_max, z2_min, z2_max) of grid coordinates (n, 2), for drawing its extent."""
    return float(coords[0, 0]), float(coords[-1, 0]), float(coords[0, 1]), float(coords[-1, 1])


__all__ = [
    "AttributeRows",
    "Codes",
    "Denoising",
    "Grid",
    "Interpolation",
    "Projection",
    "apply_attribute",
    "attribute_rows",
    "attribute_vector",
    "check_class",
    "check_encoder",
    "check_index",
    "check_label",
    "check_latent_seed",
    "classify_samples",
    "decode",
    "decoded_grid",
    "default_noise",
    "denoising",
    "digit_space",
    "encode",
    "generated_attribute_rows",
    "generated_attribute_vector",
    "grid_coordinates",
    "grid_extent",
    "interpolation",
    "latent_projection",
    "lerp",
    "pick",
    "prior_draw",
    "prior_interpolation",
    "reconstructions",
    "require_latent",
    "slerp",
    "split_codes",
]
