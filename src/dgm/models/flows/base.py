"""What every normalizing flow shares: a standard normal base, the change of variables, sampling.

A flow is an invertible map ``f`` from data to base (:mod:`dgm.nn.bijectors`: ``forward`` is
data -> base) with a standard normal base density, so its density is exact (Dinh et al. 2017,
eq. 3; Papamakarios et al. 2021, "Normalizing Flows for Probabilistic Modeling and Inference")::

    log p(x | y) = log N(f(x; y); 0, I) + log |det ∂f/∂x|,
    log N(z; 0, I) = -|z|² / 2 - (D / 2) log(2 pi),

and it samples by pushing base draws back, ``x = f⁻¹(z; y)`` with ``z ~ N(0, T² I)``, where
the temperature ``T`` shrinks the draws towards the base's mode (Kingma & Dhariwal 2018, section
5). Class labels ``y`` (``conditional=True``) go to every conditioner network of the flow.

A subclass only builds its bijector from its config (:meth:`FlowModel.build_flow`). The base
puts a fixed :class:`~dgm.nn.bijectors.ActNorm` in front when ``standardize`` is set: it is fitted
to the first training batch (per feature for vectors, per channel for images), so that data of
any scale (pixels in [0, 256) after ``--transform dequantize``, toy points in [-4, 4], a user's
CSV) reaches the flow with zero mean and unit variance, as the spline flows' bounded interval
and the conditioners' initial weights expect.

Flows take continuous data; discrete images become continuous with ``--transform dequantize``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from dgm import rng
from dgm.data.transforms import logit_alpha
from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel, ModelConfig, check_temperature
from dgm.nn.bijectors import ActNorm, Bijector, Compose, sum_except_batch

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class FlowConfig(ModelConfig):
    """Fields every flow config has.

    - ``standardize``: an ActNorm before the flow, fitted to the first training batch and then
      fixed (trained in the data's units, it would move by the learning rate per step).
    """

    standardize: bool = True


MAX_LOGIT_ALPHA = 1e-3  # a flat flow on images wants the logit transform with α at most this (see FlowModel.notes)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) = -|z|² / 2 - (D / 2) log(2 pi) per example: (B, *event) -> (B,)."""
    dim = math.prod(z.shape[1:])
    return -0.5 * sum_except_batch(z.square()) - 0.5 * dim * LOG_2PI


def check_positive(name: str, config: FlowConfig, *fields: str) -> None:
    """Refuse a config of model ``name`` whose size or bound ``fields`` are not positive: numbers
    must be > 0, tuples (hidden layers) non-empty with every entry > 0. The error names every
    bad field with its value."""
    bad = []
    for field in fields:
        value = getattr(config, field)
        ok = bool(value) and all(v > 0 for v in value) if isinstance(value, tuple) else value > 0
        if not ok:
            bad.append(f"{field}={value!r}")
    if bad:
        raise ConfigError(
            f"{name} needs positive {', '.join(fields)} (hidden: at least one layer), got {', '.join(bad)}; "
            "--set them to positive values"
        )


def check_coupling_input(name: str, config: FlowConfig, levels: int | None = None) -> None:
    """Refuse data a coupling flow cannot split: vectors of fewer than 2 dimensions, and for a
    multi-scale flow (``levels`` given) images that ``levels`` squeezes cannot halve."""
    if levels is not None and config.data.is_image:
        check_levels(config, levels)
    elif config.data.dim < 2:
        raise ConfigError(f"{name}'s couplings need at least 2 dimensions, got {config.data.describe()}")


def check_levels(config: FlowConfig, levels: int) -> None:
    """Refuse a multi-scale flow whose ``levels`` squeezes do not divide the image size.

    Each level halves the height and width, so both must be multiples of 2^levels; the error
    names the two fixes: resize the images, or use fewer levels.
    """
    if levels < 1:
        raise ConfigError(f"config key 'levels' must be at least 1, got {levels}")
    info = config.data
    if not info.is_image:
        return
    _, h, w = info.shape
    step = 2**levels
    if h % step or w % step:
        fewer = max((k for k in range(levels) if h % 2**k == 0 and w % 2**k == 0), default=0)
        hint = f" or --set levels={fewer}" if fewer >= 1 else ""
        raise DataError(
            f"{levels} levels of squeezing need a height and width that are multiples of {step}, got "
            f"images of {h}x{w}; resize them (folder:PATH?size=N with N a multiple of {step}){hint}"
        )


class FlowModel(GenerativeModel):
    """Base class of the normalizing flows: exact log-density by the change of variables."""

    family = "flow"
    density = "exact"
    can_condition = True
    has_temperature = True
    supports = frozenset({"continuous"})
    Config = FlowConfig
    # the flow acts on images as (C, H, W) tensors (convolutions); otherwise on flat vectors (D,)
    convolutional: ClassVar[bool] = False

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        body = self.build_flow()
        standardize = ActNorm(self.event_shape[0], trainable=False)
        self.flow: Bijector = Compose([standardize, body]) if config.standardize else body

    def build_flow(self) -> Bijector:
        """The model's bijector (data -> base) on events of shape :attr:`event_shape`."""
        raise NotImplementedError

    def notes(self, transforms: Sequence[str] = ()) -> list[str]:
        """A flow on flattened images gets a note unless the data went through a logit transform
        with α <= :data:`MAX_LOGIT_ALPHA`. Every pixel is a dimension with a scale of its own,
        fitted to the first batch, so a pixel dark in all of it has the tiny spread of the
        dequantization noise and a test image that lights it is extremely improbable. Before the
        logit a dark pixel lies in [α, α + 1/L); with α well below 1/L its logit spreads over
        log(1 + 1/(α L)), as widely as the lit pixels' values. On mnist5k, 90 s of nsf: test
        119.7 bits/dim with ``-t dequantize`` only, 13.8 with ``-t scale -t logit:0.05``, 1.73
        with ``-t scale -t logit`` (α = 1e-6); maf 2 601 and 2.11. Convolutional flows share
        each channel's scale over its pixels."""
        flat_image = self.config.data.is_image and len(self.event_shape) == 1
        if not flat_image or any(logit_alpha(t) <= MAX_LOGIT_ALPHA for t in transforms):
            return []
        return [
            f"{self.name} sees every pixel as a dimension with a scale of its own, fitted to the first batch: without "
            f"a logit transform of alpha <= {MAX_LOGIT_ALPHA:g} a pixel dark in all of it makes test images that light "
            "it extremely improbable (nsf on mnist5k: 119.7 bits/dim without, 13.8 with logit:0.05, 1.73 with "
            "logit); add -t scale -t logit after -t dequantize"
        ]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one example as the flow sees it: (C, H, W) for a convolutional flow on
        images, else the flattened (D,)."""
        info = self.config.data
        return tuple(info.shape) if self.convolutional and info.is_image else (info.dim,)

    @property
    def num_classes(self) -> int:
        """Classes the conditioners embed: the data's when conditional, else 0 (no embedding)."""
        return self.config.data.num_classes if self.config.conditional else 0

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x | cond) in nats, (B,): log N(f(x); 0, I) + log |det ∂f/∂x|."""
        x = self.flat_x(x).view(-1, *self.event_shape)  # (B, *event)
        cond = self.check_cond(cond, x.shape[0])
        z, ladj = self.flow(x, cond)
        return standard_normal_log_prob(z) + ladj

    def sample_and_log_prob(
        self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``n`` samples (n, *data.shape) and their log-density (n,), in one inverse pass:
        log p(x) = log N(z; 0, I) - log |det ∂x/∂z| at x = f⁻¹(z). Differentiable (reparameterised)."""
        cond = self.check_cond(cond, n)
        z = rng.randn((n, *self.event_shape), generator, self.device).to(self.dtype)
        x, ladj = self.flow.inverse(z, cond)
        return x.reshape(n, *self.config.data.shape), standard_normal_log_prob(z) - ladj

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> Tensor:
        """``n`` samples (n, *data.shape): x = f⁻¹(T z), z ~ N(0, I) drawn from ``generator``.

        ``temperature`` T = 1 samples the model; T < 1 trades diversity for typicality, and
        T = 0 gives the image of the base's mode, f⁻¹(0), n times.
        """
        temperature = check_temperature(temperature)
        cond = self.check_cond(cond, n)
        z = rng.randn((n, *self.event_shape), generator, self.device).to(self.dtype)
        x, _ = self.flow.inverse(z * temperature, cond)
        return x.reshape(n, *self.config.data.shape)
