"""DDPM: a denoising diffusion probabilistic model (Ho et al. 2020) with the improvements since.

Training draws t uniformly from 0..T-1 and noise eps ~ N(0, I), forms
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps and regresses the network's output on its target,
eps (Ho et al.'s L_simple), x_0 or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho
2022): ``loss = mean ||f(x_t, t, y) - target||^2``. Images of L levels are scaled to [-1, 1];
vectors are divided by ``scale``. The network is a UNet for images (:class:`dgm.nn.unet.UNet`)
and a residual MLP for vectors (:class:`~.denoisers.MLPDenoiser`).

Sampling runs a sampler of :mod:`~.samplers` with any number of steps up to T: ancestral DDPM or
DDIM (Song et al. 2021), chosen per call (``dgm sample RUN --sampler ddim --steps 20``); the
defaults are in the config (DDIM with 50 steps: 1 000 network passes per image is minutes on a
CPU). With ``conditional=True`` labels are dropped (replaced by a "no label" embedding) with
probability ``label_dropout`` in training, and sampling mixes the two predictions with guidance
scale w (Ho & Salimans 2022): f = f(x, t, none) + w (f(x, t, y) - f(x, t, none)); w = 0 is the
unconditional model, w = 1 the conditional one, w > 1 trades diversity for fidelity to the label.
The predicted x_0 of images is clipped to [-1, 1] while sampling (``clip``).

``elbo`` is minus the variational bound of :mod:`~.bound` (``density = "bound"``), on the
discrete images themselves (bits/dim comparable with the exact models') or on vectors in nats.

>>> import dgm
>>> model = dgm.build("ddpm", data=dgm.DataInfo((2,), "continuous"), steps=20, hidden=16, layers=1)
>>> x = model.sample(3, generator=torch.Generator().manual_seed(0), sampler="ddpm")
>>> x.shape, model.elbo(x).shape
(torch.Size([3, 2]), torch.Size([3]))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel, ModelConfig, as_batch
from dgm.models.diffusion import samplers
from dgm.models.diffusion.bound import nll_bound
from dgm.models.diffusion.denoisers import MLPDenoiser
from dgm.models.diffusion.process import (
    PREDICTIONS,
    eps_from_x0,
    noised,
    target,
    x0_and_eps,
)
from dgm.models.diffusion.schedules import SCHEDULES, Schedule, timestep_subsequence
from dgm.nn.unet import unet_for
from dgm.registry import register
from dgm.rng import randn

SAMPLERS = ("ddpm", "ddim")
BOUND_TERMS = 100  # KL terms of the bound evaluated per example by default (of T - 1)


@dataclass(frozen=True)
class DDPMConfig(ModelConfig):
    """Configuration of :class:`DDPM`."""

    steps: int = 1000  # T, steps of the forward process
    schedule: Literal["linear", "quadratic", "cosine"] = "linear"
    prediction: Literal["eps", "x0", "v"] = "eps"  # what the network predicts
    variance: Literal["beta", "posterior"] = "beta"  # sigma_t^2 of the reverse steps: beta_t or beta~_t
    sampler: Literal["ddpm", "ddim"] = "ddim"  # default sampler (dgm sample --sampler)
    sample_steps: int = 50  # default number of sampling steps (at most T; dgm sample --steps)
    eta: float = 1.0  # DDIM's eta (0: deterministic; 1 samples better from briefly trained networks)
    guidance: float = 1.0  # classifier-free guidance scale w of conditional models (dgm sample --guidance)
    label_dropout: float = 0.1  # probability of training a conditional model without its label
    clip: bool = True  # clip the predicted x_0 of images to [-1, 1] while sampling
    bound_terms: int = 0  # KL terms of the bound per example (0: 100, or all T - 1 if fewer)
    scale: float = 1.0  # vectors are divided by this before diffusion (the bound accounts for it)
    # the UNet of images (dgm.nn.unet; mults and patch () and 0: chosen from the image size)
    channels: int = 32
    mults: tuple[int, ...] = ()  # channel multiplier of each resolution
    blocks: int = 1  # residual blocks per resolution and side
    attention: bool = True  # self-attention at the lowest resolution
    heads: int = 4
    patch: int = 0  # pixel-unshuffle factor at the input
    groups: int = 0  # GroupNorm groups (0: chosen per layer by the UNet)
    dropout: float = 0.0
    # the MLP of vectors
    hidden: int = 128
    layers: int = 3
    time_dim: int = 64


@register("ddpm")
class DDPM(GenerativeModel):
    """Denoising diffusion (DDPM/DDIM samplers, eps/x0/v, classifier-free guidance, inpainting)."""

    family = "diffusion"
    density = "bound"
    can_condition = True
    supports = frozenset({"binary", "discrete", "continuous"})
    sample_options: ClassVar[tuple[str, ...]] = ("sampler", "steps", "eta", "guidance")
    train_defaults = {"ema": 0.999, "batch_size": 64}  # sampling uses the average of the weights
    Config = DDPMConfig

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        info = config.data
        self.schedule = Schedule.named(config.schedule, config.steps)
        self.levels = None if info.support == "continuous" else int(info.levels or 2)
        classes = info.num_classes if config.conditional else 0
        if info.is_image:
            sizes = {"mults": tuple(config.mults)} if config.mults else {}
            sizes.update({"patch": config.patch} if config.patch else {})
            sizes.update({"groups": config.groups} if config.groups else {})
            self.net = unet_for(
                info.shape,
                channels=config.channels,
                blocks=config.blocks,
                attention=config.attention,
                heads=config.heads,
                num_classes=classes,
                dropout=config.dropout,
                **sizes,
            )
            # the sizes chosen from the image go into the saved config, so the run rebuilds the
            # same network if a later dgm chooses differently
            self.config = dataclasses.replace(config, mults=self.net.mults, patch=self.net.patch)
        else:
            self.net = MLPDenoiser(info.dim, config.hidden, config.layers, config.time_dim, classes)

    @classmethod
    def check_config(cls, config: DDPMConfig) -> None:
        super().check_config(config)
        info = config.data
        if info.is_sequence:
            raise DataError(
                f"ddpm models images and vectors, got {info.describe()}; for text and audio use transformer or wavenet"
            )
        if len(info.shape) not in (1, 3):
            raise DataError(f"ddpm takes images (C, H, W) or vectors (D,), got shape {tuple(info.shape)}")
        if info.support != "continuous" and (info.levels or 2) < 2:
            raise DataError(f"ddpm needs the number of levels of discrete data, got {info.describe()}")
        if config.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {config.schedule!r}")
        if config.prediction not in PREDICTIONS:
            raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {config.prediction!r}")
        samplers.check_variance(config.variance)
        if config.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {config.sampler!r}")
        for name in ("steps", "sample_steps", "channels", "blocks", "heads", "hidden", "layers", "time_dim"):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ddpm needs {name} to be a positive integer, got {value!r}")
        if config.time_dim % 2:
            raise ConfigError(f"ddpm needs an even time_dim (sines and cosines), got {config.time_dim}")
        if any(not isinstance(m, int) or m < 1 for m in config.mults):
            raise ConfigError(f"mults must be positive channel multipliers, one per resolution, got {config.mults!r}")
        if config.groups < 0:
            raise ConfigError(f"groups must be 0 (chosen by the UNet) or positive, got {config.groups}")
        if config.patch < 0:
            raise ConfigError(f"patch must be 0 (chosen from the image size) or positive, got {config.patch}")
        if config.bound_terms < 0:
            raise ConfigError(f"bound_terms must be 0 (the default count) or positive, got {config.bound_terms}")
        for name, low, high in (("eta", 0, 1), ("label_dropout", 0, 1), ("dropout", 0, 1)):
            value = getattr(config, name)
            if not low <= value <= high:
                raise ConfigError(f"ddpm needs {name} in [{low}, {high}], got {value}")
        if config.label_dropout >= 1:
            raise ConfigError("label_dropout must be below 1 (1 never shows the labels)")
        if not (math.isfinite(config.guidance) and config.guidance >= 0):
            raise ConfigError(f"guidance must be a number >= 0, got {config.guidance}")
        if not (math.isfinite(config.scale) and config.scale > 0):
            raise ConfigError(f"scale must be a positive number, got {config.scale}")

    # ----- data <-> diffusion space ----------------------------------------------------------
    def to_diffusion(self, x: Tensor) -> Tensor:
        """Data (B, *shape) as the process sees it: levels scaled to [-1, 1], vectors / scale."""
        self.flat_x(x)  # shape check
        x = x.to(device=self.device, dtype=self.dtype)
        if self.levels is not None:
            return x * (2.0 / (self.levels - 1)) - 1.0
        return x / self.config.scale

    def to_data(self, y: Tensor) -> Tensor:
        """The inverse of :meth:`to_diffusion`, rounded to the nearest level for discrete data."""
        if self.levels is not None:
            return ((y.clamp(-1, 1) + 1) * (self.levels - 1) / 2).round()
        return y * self.config.scale

    # ----- the network --------------------------------------------------------------------------
    def _labels(self, cond: Tensor | None, n: int) -> Tensor | None:
        cond = self.check_cond(cond, n)
        return None if cond is None else cond.long()

    def _null(self, n: int) -> Tensor:
        return torch.full((n,), self.config.data.num_classes, dtype=torch.long, device=self.device)

    def output(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None, guidance: float = 1.0) -> Tensor:
        """The network's prediction at x_t and timesteps t (B,), guided with scale ``guidance``
        for a conditional model: f(none) + w (f(y) - f(none)) (one pass for w = 0 or 1)."""
        t = t.to(device=x_t.device, dtype=x_t.dtype)
        if cond is None or guidance == 1:
            return self.net(x_t, t, cond)
        null = self._null(x_t.shape[0])
        if guidance == 0:
            return self.net(x_t, t, null)
        both = self.net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, null]))
        with_label, without = both.chunk(2)
        return without + guidance * (with_label - without)

    def denoiser(self, cond: Tensor | None, guidance: float) -> samplers.Denoise:
        """``denoise(x_t, t) -> (x0, eps)`` for the samplers: guided, x0 clipped for images."""
        clip = self.config.clip and self.levels is not None

        def denoise(x_t: Tensor, t: int) -> tuple[Tensor, Tensor]:
            abar = self.schedule.abar[t]
            steps = torch.full((x_t.shape[0],), float(t), device=x_t.device)
            x0, eps = x0_and_eps(self.config.prediction, self.output(x_t, steps, cond, guidance), x_t, abar)
            if clip:
                x0 = x0.clamp(-1, 1)
                eps = eps_from_x0(x0, x_t, abar)
            return x0, eps

        return denoise

    def predict_x0(self, cond: Tensor | None) -> Callable[[Tensor, Tensor], Tensor]:
        """x0_theta(x_t, t) with per-example timesteps, unguided and unclipped (for the bound)."""

        def predict(x_t: Tensor, t: Tensor) -> Tensor:
            abar = self.schedule.abar[t.cpu()]
            return x0_and_eps(self.config.prediction, self.output(x_t, t.float(), cond), x_t, abar)[0]

        return predict

    # ----- the contract -----------------------------------------------------------------------
    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """mean ||f(x_t, t, y) - target||^2 with t ~ U{0..T-1} and eps ~ N(0, I)."""
        x, cond = as_batch(batch)
        x0 = self.to_diffusion(x)
        n = x0.shape[0]
        labels = self._labels(cond, n)
        if labels is not None and self.training and self.config.label_dropout > 0:
            drop = torch.rand(n, device=self.device) < self.config.label_dropout
            labels = torch.where(drop, self._null(n), labels)
        t = torch.randint(0, self.schedule.steps, (n,), device=self.device)
        eps = torch.randn_like(x0)
        abar = self.schedule.abar[t.cpu()]
        out = self.output(noised(x0, eps, abar), t, labels)
        mse = (out - target(self.config.prediction, x0, eps, abar)).pow(2).mean()
        return {"loss": mse, "mse": mse.detach()}

    def bound_terms(self) -> int:
        """The number of KL terms of the bound evaluated per example (see :mod:`~.bound`)."""
        count = max(self.schedule.steps - 1, 0)
        terms = self.config.bound_terms or BOUND_TERMS
        return min(terms, count)

    def bound_note(self) -> str:
        """How the bound was computed, for the metric's description."""
        count, terms = self.schedule.steps - 1, self.bound_terms()
        if terms == count:
            return f"T = {self.schedule.steps} steps ({self.config.schedule} schedule), all {count} KL terms evaluated"
        return (
            f"T = {self.schedule.steps} steps ({self.config.schedule} schedule), the sum of its {count} KL terms "
            f"estimated from {terms} stratified timesteps per example"
        )

    def nll_bound(self, x: Tensor, cond: Tensor | None = None, generator: torch.Generator | None = None) -> dict:
        """The bound on -log p(x) per example and its parts (prior, diffusion, decoder), in nats
        of the data's own units (see :func:`~.bound.nll_bound`)."""
        x0 = self.to_diffusion(x)
        labels = self._labels(cond, x0.shape[0])
        parts = nll_bound(
            self.predict_x0(labels), x0, self.schedule, self.config.variance, self.levels, self.bound_terms(), generator
        )
        if self.levels is None:  # densities of x = scale * x0
            parts["nll"] = parts["nll"] + self.config.data.dim * math.log(self.config.scale)
        return parts

    def elbo(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Minus the variational bound: a lower bound on log p(x), (B,)."""
        return -self.nll_bound(x, cond)["nll"].to(self.dtype)

    def sample(
        self,
        n: int,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
        record: samplers.Record | None = None,
    ) -> Tensor:
        """``n`` samples with ``sampler`` ("ddpm" or "ddim") in ``steps`` steps (defaults from the
        config); ``record(t, x_t, x0)`` sees every step in diffusion space."""
        labels = self._labels(cond, n)
        denoise, timesteps, run = self._sampling(labels, sampler, steps, eta, guidance)
        x_T = randn((n, *self.config.data.shape), generator, self.device).to(self.dtype)
        return self.to_data(run(denoise, self.schedule, x_T, timesteps, generator=generator, record=record))

    def inpaint(
        self,
        x: Tensor,
        keep: Tensor,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        resample: int = 5,
        guidance: float | None = None,
    ) -> Tensor:
        """Fill in ``x`` (B, *shape) where ``keep`` (broadcastable, 1 = known) is 0, RePaint-style
        (:func:`~.samplers.repaint`) with ``steps`` respaced ancestral steps of ``resample`` rounds."""
        known = self.to_diffusion(x)
        labels = self._labels(cond, known.shape[0])
        denoise, timesteps, _ = self._sampling(labels, "ddpm", steps, None, guidance)
        x_T = randn(known.shape, generator, self.device).to(self.dtype)
        keep = torch.as_tensor(keep, device=self.device, dtype=self.dtype)
        out = samplers.repaint(
            denoise, self.schedule, x_T, timesteps, known, keep, resample, self.config.variance, generator
        )
        return self.to_data(out)

    def _sampling(self, labels, sampler, steps, eta, guidance):
        config = self.config
        sampler = config.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        steps = min(config.sample_steps, self.schedule.steps) if steps is None else steps
        timesteps = timestep_subsequence(self.schedule.steps, steps)
        guidance = config.guidance if guidance is None else float(guidance)
        if not (math.isfinite(guidance) and guidance >= 0):
            raise ConfigError(f"--guidance must be a number >= 0 (1: the conditional model), got {guidance}")
        if labels is None and guidance != config.guidance:
            raise ConfigError("--guidance needs a model trained with conditional=true (classifier-free guidance)")
        if sampler == "ddpm" and eta is not None:
            raise ConfigError("--eta is DDIM's; drop it or use --sampler ddim")
        eta = config.eta if eta is None else eta
        if sampler == "ddpm":

            def run(denoise, schedule, x, timesteps, generator=None, record=None):
                return samplers.ancestral(denoise, schedule, x, timesteps, config.variance, generator, record)

        else:

            def run(denoise, schedule, x, timesteps, generator=None, record=None):
                return samplers.ddim(denoise, schedule, x, timesteps, eta, generator, record)

        return self.denoiser(labels, guidance), timesteps, run
