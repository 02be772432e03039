"""Named data transforms that keep track of their log-determinant.

A transform maps raw data x to model data y and returns, per example, the log-abs-det of its
Jacobian ``ladj = log|det dy/dx|`` (shape (N,)), so that a model density q on y gives the
density of the data in its own units::

    log p(x) = log q(y) + ladj

Transforms are chained in order; the ladj of a chain is the sum of the ladjs. Each transform
also maps the :class:`DataInfo` it receives to the one it produces, and refuses data it does
not fit with a :class:`DataError` that names the fix.

======================  ==================================================================
``binarize``            y = 1[x > max/2], max = levels - 1 (binary data; ladj 0)
``binarize:stochastic`` y ~ Bernoulli(x / max), redrawn for every batch (ladj 0)
``dequantize``          y = x + u, u ~ U[0, 1)^D: integers 0..K-1 -> continuous [0, K) (ladj 0)
``scale``, ``scale:a,b``  affine map of the known range onto [0, 1] (or [a, b], e.g. -1,1)
``logit``, ``logit:α``  y = logit(α + (1 - 2α) x) for x in [0, 1] (default α = 1e-6)
======================  ==================================================================

Text and audio (``text:``, ``wav:``) take no transform: their levels are categories (characters,
μ-law codes) that sequence models take as they are, and their samples are decoded from them.

Binarizing redefines the data: likelihoods are then those of the binarized data, not of the
grey levels. Dequantizing gives ladj 0 because each integer cell has unit volume, and
log P(x) >= E_u[log q(x + u)] (Theis et al., 2016), so a continuous density on y bounds the
discrete likelihood of x.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from dgm import rng
from dgm.data.info import DataInfo
from dgm.errors import DataError
from dgm.nn.bijectors.logit import Logit as LogitBijector

LOGIT_ALPHA = 1e-6  # α of ``logit`` without an argument

# ----- the mathematics: one pure function per transform --------------------------------------


def binarize(x: Tensor, threshold: float) -> Tensor:
    """Deterministic binarization y = 1[x > threshold] (floats in {0, 1})."""
    return (x > threshold).to(x.dtype)


def binarize_stochastic(x: Tensor, max_value: float, generator: torch.Generator | None = None) -> Tensor:
    """Stochastic binarization y ~ Bernoulli(x / max_value) (Salakhutdinov & Murray, 2008)."""
    return rng.bernoulli((x / max_value).clamp(0.0, 1.0), generator)


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantization y = x + u with u ~ U[0, 1)^D, elementwise."""
    return x + rng.rand(x.shape, generator, x.device).to(x.dtype)


def affine(x: Tensor, low: Tensor, factor: Tensor, new_low: float) -> tuple[Tensor, Tensor]:
    """y = new_low + factor (x - low) per feature; ladj = sum_d log|factor_d| for every example.

    ``low`` and ``factor`` broadcast against one example (a scalar or the example's shape).
    """
    y = new_low + factor.to(x) * (x - low.to(x))
    per_dim = torch.log(factor.abs().to(torch.float64)).expand(x.shape[1:])
    return y, per_dim.sum().expand(x.shape[0]).to(x.device)


def affine_inverse(y: Tensor, low: Tensor, factor: Tensor, new_low: float) -> Tensor:
    """x = low + (y - new_low) / factor, the inverse of :func:`affine`."""
    return low.to(y) + (y - new_low) / factor.to(y)


def logit(x: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """y = logit(s) with s = α + (1 - 2α) x, for x in [0, 1] (RealNVP): the
    :class:`~dgm.nn.bijectors.Logit` bijector, with its ladj summed in float64."""
    y, ladj = LogitBijector(alpha)(x.to(torch.float64))
    return y.to(x.dtype), ladj


def logit_inverse(y: Tensor, alpha: float) -> Tensor:
    """x = (sigmoid(y) - α) / (1 - 2α), the inverse of :func:`logit`, clipped to [0, 1]."""
    return LogitBijector(alpha).inverse(y)[0].clamp(0.0, 1.0)


def _zero_ladj(x: Tensor) -> Tensor:
    return torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)


# ----- transform objects (fitted to one dataset; picklable for DataLoader workers) ------------


@dataclass(frozen=True)
class Transform:
    """A fitted transform: ``forward(x, generator) -> (y, ladj)`` and a best-effort inverse."""

    text: str  # the name as given, e.g. "scale:-1,1"

    stochastic = False

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def to_display(self, y: Tensor) -> Tensor:
        """Map transformed values back to this transform's input space, best effort."""
        raise NotImplementedError


@dataclass(frozen=True)
class Binarize(Transform):
    """``binarize[:stochastic]``: threshold at max/2, or Bernoulli(x / max); inverse y * max."""

    max_value: float  # levels - 1 of the input
    random: bool  # stochastic binarization

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.random

    def forward(self, x, generator=None):
        if self.random:
            return binarize_stochastic(x, self.max_value, generator), _zero_ladj(x)
        return binarize(x, 0.5 * self.max_value), _zero_ladj(x)

    def to_display(self, y):
        return y * self.max_value


@dataclass(frozen=True)
class Dequantize(Transform):
    """``dequantize``: y = x + U[0, 1); inverse floor(y)."""

    levels: int  # K of the input integers 0..K-1
    stochastic = True

    def forward(self, x, generator=None):
        return dequantize(x, generator), _zero_ladj(x)

    def to_display(self, y):
        return torch.floor(y).clamp(0, self.levels - 1)


@dataclass(frozen=True, eq=False)
class Scale(Transform):
    """``scale[:a,b]``: the affine map of the input range onto [a, b]; inverse unscale."""

    low: Tensor  # start of the input range, scalar or per feature
    factor: Tensor  # (new_high - new_low) / (high - low), scalar or per feature
    new_low: float

    def forward(self, x, generator=None):
        return affine(x, self.low, self.factor, self.new_low)

    def to_display(self, y):
        return affine_inverse(y, self.low, self.factor, self.new_low)


@dataclass(frozen=True)
class Logit(Transform):
    """``logit[:alpha]``: y = logit(alpha + (1 - 2 alpha) x); inverse through the sigmoid."""

    alpha: float

    def forward(self, x, generator=None):
        # Continuous data scaled by its train range can step outside [0, 1] on val/test.
        return logit(x.clamp(0.0, 1.0), self.alpha)

    def to_display(self, y):
        return logit_inverse(y, self.alpha)


# ----- fitting a chain of names to a dataset ---------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """What is known about the data at one point of the chain: its DataInfo and a range
    [low, high] that every value lies in (``None`` when only the train split's range is known)."""

    info: DataInfo
    low: float | None = None
    high: float | None = None
    raw: bool = False  # raw data: scale may use the per-feature range of the train split


TrainRange = Callable[[], tuple[Tensor, Tensor]]  # per-feature (min, max) of the raw train split
Fitter = Callable[[str, str | None, Domain, TrainRange], tuple[Transform, Domain]]


def _fit_binarize(text: str, arg: str | None, dom: Domain, train_range: TrainRange):
    if arg not in (None, "stochastic"):
        raise DataError(f"unknown binarize option '{arg}' in '{text}'; use binarize or binarize:stochastic")
    if dom.info.support == "continuous":
        raise DataError(
            f"'{text}' needs discrete data with known levels, got {dom.info.describe()}; "
            "binarize image data before dequantize/scale, or drop it"
        )
    info = replace(dom.info, support="binary", levels=2)
    return Binarize(text, float(dom.info.levels - 1), arg == "stochastic"), Domain(info, 0.0, 1.0)


def _fit_dequantize(text: str, arg: str | None, dom: Domain, train_range: TrainRange):
    if arg is not None:
        raise DataError(f"'{text}': dequantize takes no option; write dequantize")
    if dom.info.support == "continuous":
        raise DataError(f"'{text}' needs discrete data (integer levels), got {dom.info.describe()}; drop dequantize")
    levels = int(dom.info.levels)
    info = replace(dom.info, support="continuous", levels=None)
    return Dequantize(text, levels), Domain(info, 0.0, float(levels))


def _parse_interval(text: str, arg: str | None) -> tuple[float, float]:
    if arg is None:
        return 0.0, 1.0
    try:
        a, b = (float(v) for v in arg.split(","))
    except ValueError:
        a, b = math.nan, math.nan
    if not a < b:
        raise DataError(f"bad target range in '{text}'; write scale (to [0,1]) or scale:-1,1")
    return a, b


def _fit_scale(text: str, arg: str | None, dom: Domain, train_range: TrainRange):
    a, b = _parse_interval(text, arg)
    if dom.low is not None and dom.high is not None:
        low, high = torch.tensor(dom.low), torch.tensor(dom.high)
    elif dom.raw:
        low, high = train_range()
    else:
        raise DataError(f"'{text}' cannot follow a transform with an unbounded range; put scale first")
    width = high - low
    width = torch.where(width > 0, width, torch.ones_like(width))  # constant features: shift only
    factor = ((b - a) / width).to(torch.float32)
    info = replace(dom.info, support="continuous", levels=None)
    return Scale(text, low.to(torch.float32), factor, a), Domain(info, a, b)


def _fit_logit(text: str, arg: str | None, dom: Domain, train_range: TrainRange):
    try:
        alpha = LOGIT_ALPHA if arg is None else float(arg)
    except ValueError:
        alpha = math.nan
    if not 0 < alpha < 0.5:
        raise DataError(f"bad alpha in '{text}'; write logit or logit:0.05 (0 < alpha < 0.5)")
    in_unit = dom.low is not None and dom.high is not None and dom.low >= 0 and dom.high <= 1
    if dom.info.support != "continuous" or not in_unit:
        raise DataError(
            f"'{text}' needs continuous data in [0, 1], got {dom.info.describe()}; "
            "put scale before it (e.g. --transform dequantize --transform scale --transform logit)"
        )
    return Logit(text, alpha), Domain(dom.info, None, None)


FITTERS: dict[str, Fitter] = {
    "binarize": _fit_binarize,
    "dequantize": _fit_dequantize,
    "scale": _fit_scale,
    "logit": _fit_logit,
}
KNOWN = ("binarize", "binarize:stochastic", "dequantize", "scale", "scale:-1,1", "logit", "logit:0.05")
# What each transform does to a likelihood reported in the data's own units: "same" (a bijection
# whose ladj is added back), "bound" (a continuous density bounds the discrete likelihood) or
# "redefines" (the likelihood is of other data).
LIKELIHOOD = {"binarize": "redefines", "dequantize": "bound", "scale": "same", "logit": "same"}


def transform_base(text: str) -> str:
    """The transform's name without its argument: ``"logit:0.05"`` -> ``"logit"``."""
    return text.strip().partition(":")[0]


def logit_alpha(text: str) -> float:
    """The α of a ``logit[:α]`` transform name (:data:`LOGIT_ALPHA` without one); infinity for
    any other transform."""
    if transform_base(text) != "logit":
        return math.inf
    arg = text.strip().partition(":")[2]
    return float(arg) if arg else LOGIT_ALPHA


def likelihood_effect(names: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """For a chain of transform ``names``: the names that redefine the data (runs are comparable
    by likelihood only when these and the raw data agree) and whether the reported NLL is an
    upper bound on the raw data's (after ``dequantize``). Unknown names count as redefining."""
    base = [transform_base(text) for text in names]
    redefining = tuple(t for t, b in zip(names, base, strict=True) if LIKELIHOOD.get(b, "redefines") == "redefines")
    return redefining, any(LIKELIHOOD.get(b) == "bound" for b in base)


def raw_domain(info: DataInfo) -> Domain:
    """The range known for raw data: [0, levels - 1] for binary/discrete, unknown for continuous."""
    if info.support == "continuous":
        return Domain(info, raw=True)
    return Domain(info, 0.0, float(info.levels - 1))


def fit_transforms(names: Sequence[str], raw_info: DataInfo, train_x: Tensor) -> tuple[tuple[Transform, ...], DataInfo]:
    """Fit the chain ``names`` to data of ``raw_info`` whose raw train split is ``train_x``.

    Returns the fitted transforms and the DataInfo after them.
    """
    names = tuple(names)
    if names and raw_info.is_sequence:
        raise DataError(
            f"transform '{names[0]}' does not apply to {raw_info.describe()}: characters and mu-law levels are "
            "categories that sequence models take as they are; drop --transform"
        )
    dom, chain = raw_domain(raw_info), []

    def train_range() -> tuple[Tensor, Tensor]:
        return train_x.amin(dim=0), train_x.amax(dim=0)

    for text in names:
        if not isinstance(text, str):
            raise DataError(f"a transform is a name such as 'binarize', got {text!r}")
        base, colon, arg = text.strip().partition(":")
        if base not in FITTERS:
            raise DataError(f"unknown transform '{text}'; known transforms: {', '.join(KNOWN)}")
        transform, dom = FITTERS[base](text.strip(), arg if colon else None, dom, train_range)
        chain.append(transform)
    return tuple(chain), dom.info


def apply_transforms(
    chain: Sequence[Transform], x: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Run ``x`` (N, *shape) through ``chain``; returns y and the summed ladj (N,) float64."""
    ladj = _zero_ladj(x)
    for transform in chain:
        x, step = transform.forward(x, generator)
        ladj = ladj + step
    return x, ladj


def undo_transforms(chain: Sequence[Transform], y: Tensor) -> Tensor:
    """Map model-space values back to raw units through the chain's best-effort inverses."""
    for transform in reversed(chain):
        y = transform.to_display(y)
    return y
