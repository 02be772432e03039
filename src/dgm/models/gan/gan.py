"""Generative adversarial networks (Goodfellow et al. 2014): ``gan``, ``dcgan`` and ``cgan``.

A generator G maps z ~ N(0, I) to samples, a discriminator D scores data against samples; the
engine trains them in turn on every batch (``parts = ("discriminator", "generator")``, one
optimizer each, the other part frozen), with the losses of :mod:`.losses`:

- discriminator step: fakes G(z) drawn without gradients, D's loss on data and fakes (with the
  targets of :mod:`.tricks` and, for ``wasserstein-gp``, the gradient penalty);
- generator step (once every ``n_critic`` discriminator steps): G's loss through D.

Images of L levels are scaled to [-1, 1] and the generator ends in tanh (Radford et al. 2015);
vectors are modelled as they are, with a linear output. Networks: MLPs (``gan``), the DCGAN of
Radford et al. sized from the image (``dcgan``), and either with labels (``cgan``: a label
embedding in G, a projection discriminator, Miyato & Koyama 2018).

The switches of the lecture notes are config fields, all off by default: one-sided label
smoothing, label flipping, instance noise annealed to 0, dropout in D, spectral normalisation
in D, separate learning rates for D and G (the two time-scale update rule, Heusel et al. 2017).
The moving average of the weights is the engine's ``--ema``. A GAN has no density
(``density = "none"``): ``dgm eval`` reports sample metrics (FD, class histograms, mode
coverage), and the runs keep the last weights (a discriminator's validation loss says nothing
about the samples).

>>> import dgm
>>> model = dgm.build("gan", data=dgm.DataInfo((2,), "continuous"), hidden=16)
>>> model.sample(3, generator=torch.Generator().manual_seed(0)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from dgm import rng
from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel, ModelConfig, as_batch, check_temperature
from dgm.models.gan import losses, tricks
from dgm.models.gan.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    dcgan_init,
    default_features,
)
from dgm.registry import register

ARCHITECTURES = ("auto", "mlp", "dcgan")
NORMS = ("auto", "batch", "layer", "none")
MIN_SIDE = 4  # the smallest image side the DCGAN networks take (smaller: the MLPs)
IMAGE_LATENT, VECTOR_LATENT = 100, 8  # latent_dim = 0: DCGAN's z in R^100 for images


@dataclass(frozen=True)
class GANConfig(ModelConfig):
    """Configuration of the GAN models (``0`` / ``"auto"``: chosen from the data and the loss,
    and written into the saved config)."""

    loss: Literal["minimax", "non-saturating", "wasserstein-gp", "hinge", "least-squares"] = "non-saturating"
    architecture: Literal["auto", "mlp", "dcgan"] = "mlp"  # auto: dcgan for images, mlp for vectors
    latent_dim: int = 0  # 0: 100 for images (DCGAN), 8 for vectors
    n_critic: int = 0  # discriminator steps per generator step (0: 5 for wasserstein-gp, else 1)
    gp_weight: float = 10.0  # lambda of the gradient penalty (wasserstein-gp)
    label_smoothing: float = 0.0  # one-sided: data targets 1 - s
    label_flip: float = 0.0  # probability of swapping each target in D's step
    instance_noise: float = 0.0  # std of noise on D's inputs at the start (model units: [-1, 1] for images)
    noise_steps: int = 2000  # discriminator steps over which the instance noise falls linearly to 0
    dropout: float = 0.0  # dropout in D
    spectral_norm: bool = False  # spectral normalisation of D's layers (Miyato et al. 2018)
    norm: Literal["auto", "batch", "layer", "none"] = "auto"  # D's normalisation (auto: batch for dcgan, none for
    # mlp, layer with the gradient penalty, none with spectral normalisation)
    lr_discriminator: float = 0.0  # 0: the run's --lr (TTUR: e.g. 4e-4 with --lr 1e-4)
    lr_generator: float = 0.0  # 0: the run's --lr
    hidden: int = 128  # MLP width
    layers: int = 3  # MLP hidden layers
    features: int = 0  # DCGAN feature maps (0: 64 for images of 64 pixels or more, else 32)


@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    architecture: Literal["auto", "mlp", "dcgan"] = "dcgan"


@dataclass(frozen=True)
class CGANConfig(GANConfig):
    """The projection discriminator's setting (Miyato & Koyama 2018): hinge loss, spectral
    normalisation in D, and D faster than G (TTUR: 4e-4 against the run's --lr, 2e-4 by
    default). On mnist5k in 2 000 iterations: FD-digits 79; with hinge and spectral norm at one
    learning rate 228 (samples varying little within a class); with the DCGAN's non-saturating
    loss and batch norm 200, one image per class whatever z (docs/gan.md)."""

    conditional: bool = True
    architecture: Literal["auto", "mlp", "dcgan"] = "auto"
    loss: Literal["minimax", "non-saturating", "wasserstein-gp", "hinge", "least-squares"] = "hinge"
    spectral_norm: bool = True
    lr_discriminator: float = 4e-4


@register("gan")
class GAN(GenerativeModel):
    """GAN with MLP generator and discriminator (minimax, non-saturating, WGAN-GP, hinge, LSGAN)."""

    family = "gan"
    density = "none"
    has_latent = True  # decode(z) and prior_sample; no encoder
    can_condition = True
    has_temperature = True
    supports = frozenset({"binary", "discrete", "continuous"})
    parts = ("discriminator", "generator")
    # Radford et al.'s Adam settings; the last weights, not the lowest validation loss
    # and the mode / class-collapse monitor every 250 batches where the data allows it
    train_defaults = {"lr": 2e-4, "betas": (0.5, 0.999), "batch_size": 64, "keep": "last", "monitor_every": 250}
    Config = GANConfig

    def __init__(self, config: GANConfig):
        super().__init__(config)
        self.config = config = self.resolved(config)
        info = config.data
        self.levels = None if info.support == "continuous" else int(info.levels or 2)
        classes = info.num_classes if config.conditional else 0
        if config.architecture == "dcgan":
            self.generator = DCGANGenerator(config.latent_dim, info.shape, config.features, classes)
            self.discriminator = DCGANDiscriminator(
                info.shape, config.features, classes, config.dropout, config.spectral_norm, config.norm
            )
            self.apply(dcgan_init)
        else:
            self.generator = MLPGenerator(config.latent_dim, info.dim, config.hidden, config.layers, classes)
            self.discriminator = MLPDiscriminator(
                info.dim, config.hidden, config.layers, classes, config.dropout, config.spectral_norm, config.norm
            )
        # discriminator steps taken: counts the n_critic cycle and the instance-noise annealing,
        # and is saved with the weights so a resumed run goes on where it stopped
        self.register_buffer("d_steps", torch.zeros((), dtype=torch.long))

    @classmethod
    def resolved(cls, config: GANConfig) -> GANConfig:
        """``config`` with its automatic choices made from the data and the loss."""
        info = config.data
        architecture = config.architecture
        if architecture == "auto":
            architecture = "dcgan" if info.is_image and min(info.shape[1:]) >= MIN_SIDE else "mlp"
        norm = config.norm
        if norm == "auto":
            if config.spectral_norm or architecture == "mlp":
                norm = "none"
            elif config.loss == "wasserstein-gp":
                norm = "layer"  # batch norm couples the examples the penalty treats one by one
            else:
                norm = "batch"
        features = config.features or (default_features(info.shape) if info.is_image else 32)
        return dataclasses.replace(
            config,
            architecture=architecture,
            norm=norm,
            latent_dim=config.latent_dim or (IMAGE_LATENT if info.is_image else VECTOR_LATENT),
            n_critic=config.n_critic or (5 if config.loss == "wasserstein-gp" else 1),
            features=features,
        )

    @classmethod
    def check_config(cls, config: GANConfig) -> None:
        super().check_config(config)
        info = config.data
        if info.is_sequence:
            raise DataError(f"GANs model images and vectors, got {info.describe()}; for text and audio use transformer")
        if config.loss not in losses.LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(losses.LOSSES)}, got {config.loss!r}")
        if config.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {config.architecture!r}")
        if config.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {config.norm!r}")
        if cls.resolved(config).architecture == "dcgan":
            if not info.is_image:
                raise DataError(f"dcgan generates images (C, H, W), got {info.describe()}; for vectors use gan")
            if min(info.shape[1:]) < MIN_SIDE:
                raise DataError(
                    f"dcgan's strided convolutions need images of at least {MIN_SIDE}x{MIN_SIDE}, got "
                    f"{info.describe()}; use gan (MLPs)"
                )
            if info.support == "continuous":
                raise DataError(
                    f"dcgan takes images of integer levels (it scales them to [-1, 1] itself), got "
                    f"{info.describe()}; drop --transform"
                )
        for name in ("latent_dim", "n_critic", "features"):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a positive integer (or 0 for the automatic choice), got {value!r}")
        for name in ("hidden", "layers", "noise_steps"):
            value = getattr(config, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("label_smoothing", "label_flip", "dropout"):
            if not 0 <= getattr(config, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(config, name)}")
        if config.label_flip > 0.5:
            raise ConfigError(
                f"label_flip above 0.5 swaps most labels (D learns the opposite): got {config.label_flip}"
            )
        if (config.label_smoothing or config.label_flip) and config.loss not in losses.WITH_TARGETS:
            raise ConfigError(
                f"label smoothing and flipping change the targets of {', '.join(losses.WITH_TARGETS)}; "
                f"the {config.loss} loss has none: drop label_smoothing/label_flip or change the loss"
            )
        for name in ("gp_weight", "instance_noise", "lr_discriminator", "lr_generator"):
            value = getattr(config, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        if config.norm == "batch" and config.loss == "wasserstein-gp":
            raise ConfigError(
                "the gradient penalty is per example and batch norm mixes the examples of a batch: "
                "use norm=layer (the default with wasserstein-gp) or norm=none"
            )

    # ----- data <-> model units ---------------------------------------------------------------
    def to_model(self, x: Tensor) -> Tensor:
        """Data (B, *shape) in the networks' units: levels scaled to [-1, 1], vectors as they are."""
        x = x.to(device=self.device, dtype=self.dtype)
        return x * (2.0 / (self.levels - 1)) - 1.0 if self.levels is not None else x

    def to_data(self, y: Tensor) -> Tensor:
        """The inverse of :meth:`to_model`, rounding to the nearest level."""
        if self.levels is not None:
            return ((y.clamp(-1, 1) + 1) * (self.levels - 1) / 2).round()
        return y

    def generate(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """G(z) in model units, (B, *shape)."""
        out = self.generator(z, cond)
        if self.config.architecture == "mlp":
            out = torch.tanh(out) if self.levels is not None else out
            out = out.reshape(z.shape[0], *self.config.data.shape)
        return out

    def critic(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """D's raw scores (B,) of model-unit inputs."""
        if self.config.architecture == "mlp":
            x = x.reshape(x.shape[0], -1)
        return self.discriminator(x, cond)

    def prior_sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """``n`` latents z ~ N(0, temperature^2 I), (n, latent_dim)."""
        return temperature * rng.randn((n, self.config.latent_dim), generator, self.device).to(self.dtype)

    # ----- training ---------------------------------------------------------------------------
    def part_parameters(self, part: str):
        if part not in self.parts:
            raise KeyError(part)
        return (self.discriminator if part == "discriminator" else self.generator).parameters()

    def part_lr(self, part: str, lr: float) -> float:
        own = self.config.lr_discriminator if part == "discriminator" else self.config.lr_generator
        return own or lr

    def part_share(self, part: str) -> float:
        return 1.0 / self.config.n_critic if part == "generator" else 1.0

    def trains_part(self, part: str) -> bool:
        return part != "generator" or int(self.d_steps) % self.config.n_critic == 0

    def noise_std(self) -> float:
        """The instance noise's std at the current discriminator step."""
        cfg = self.config
        return tricks.instance_noise_std(cfg.instance_noise, int(self.d_steps), cfg.noise_steps)

    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """The loss of ``part``; with no part (validation) D's loss on held-out data, and G's."""
        x, cond = as_batch(batch)
        x = self.to_model(x.reshape(x.shape[0], *self.config.data.shape))
        cond = self.check_cond(cond, x.shape[0])
        if part == "discriminator":
            return self._discriminator_step(x, cond)
        if part == "generator":
            return self._generator_step(x.shape[0], cond)
        if part is not None:
            raise KeyError(part)
        with torch.no_grad():
            out = self._discriminator_step(x, cond, count=False)
            out["g_loss"] = self._generator_step(x.shape[0], cond)["loss"]
        return out

    def _discriminator_step(self, x: Tensor, cond: Tensor | None, count: bool = True) -> dict[str, Tensor]:
        cfg, n = self.config, x.shape[0]
        with torch.no_grad():
            fake = self.generate(self.prior_sample(n), cond)
        std = self.noise_std()
        real_scores = self.critic(tricks.add_noise(x, std), cond)
        fake_scores = self.critic(tricks.add_noise(fake, std), cond)
        targets = {}
        if cfg.loss in losses.WITH_TARGETS and (cfg.label_smoothing or cfg.label_flip):
            kw = {"device": x.device, "dtype": real_scores.dtype}
            targets = {
                "real_target": tricks.real_targets(n, cfg.label_smoothing, cfg.label_flip, **kw),
                "fake_target": tricks.fake_targets(n, cfg.label_flip, **kw),
            }
        loss = losses.discriminator_loss(cfg.loss, real_scores, fake_scores, **targets)
        out = {
            "d_real": losses.discriminator_outputs(cfg.loss, real_scores).mean().detach(),
            "d_fake": losses.discriminator_outputs(cfg.loss, fake_scores).mean().detach(),
        }
        if cfg.loss == "wasserstein-gp" and torch.is_grad_enabled():
            penalty = losses.gradient_penalty(lambda h: self.critic(h, cond), x, fake)
            loss = loss + cfg.gp_weight * penalty
            out["gradient_penalty"] = penalty.detach()
        if std > 0:
            out["noise_std"] = torch.tensor(std)
        if count and self.training:
            self.d_steps += 1
        return {"loss": loss, **out}

    def _generator_step(self, n: int, cond: Tensor | None) -> dict[str, Tensor]:
        fake = self.generate(self.prior_sample(n), cond)
        scores = self.critic(tricks.add_noise(fake, self.noise_std()), cond)
        return {
            "loss": losses.generator_loss(self.config.loss, scores),
            "d_fake": losses.discriminator_outputs(self.config.loss, scores).mean().detach(),
        }

    # ----- sampling and the latent space -----------------------------------------------------
    @torch.no_grad()
    def decode(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """G(z) in data units, (B, *shape): the latent tools' decoder (a GAN has no encoder)."""
        z = z.to(device=self.device, dtype=self.dtype)
        return self.to_data(self.generate(z, self.check_cond(cond, z.shape[0])))

    @torch.no_grad()
    def sample(
        self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """``n`` samples G(z), z ~ N(0, T^2 I) (T < 1: the truncation of Brock et al. 2019, roughly)."""
        return self.decode(self.prior_sample(n, generator, check_temperature(temperature)), cond)

    @classmethod
    def shrink_hints(cls, config: GANConfig) -> tuple[str, ...]:
        if cls.resolved(config).architecture == "mlp":
            return ("shrink it with --set hidden=... or --set layers=...",)
        return ("shrink it with --set features=... (the DCGAN's feature maps)",)


@register("dcgan")
class DCGAN(GAN):
    """DCGAN (Radford et al. 2015) for images, sized from the data: strided convolutions, batch norm."""

    supports = frozenset({"binary", "discrete"})
    Config = DCGANConfig


@register("cgan")
class CGAN(GAN):
    """Class-conditional GAN: label embedding in G, projection discriminator (Miyato & Koyama 2018)."""

    Config = CGANConfig

    @classmethod
    def check_config(cls, config: GANConfig) -> None:
        if config.conditional and config.data.num_classes < 1:
            raise DataError(
                f"cgan is class-conditional and needs labelled data; {config.data.describe()} has no labels: "
                "use gan (vectors) or dcgan (images)"
            )
        super().check_config(config)
