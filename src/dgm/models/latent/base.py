"""What every autoencoder of the latent-variable family shares: an encoder from data to a code,
a decoder from a latent z to the parameters of an observation head p(x | z)
(:mod:`dgm.models.heads`), class conditioning, and the methods of a latent space.

Networks (:mod:`dgm.nn`): with ``net="auto"`` images of at least 8x8 get the convolutional
encoder and decoder sized from their shape (:mod:`dgm.nn.conv`), everything else an MLP with
``hidden`` layers (the decoder mirrors them). The encoder sees x scaled to [0, 1] for discrete
data (x / (L - 1)) and x itself for continuous data. A conditional model (``conditional=True``)
concatenates a learned class embedding to the encoder's features and to z (Sohn et al. 2015).

Shapes: ``encode`` (B, *data.shape) -> code (B, K) (or a tuple whose first element is the
mean, for a VAE); ``decode`` (B, K) -> (B, *data.shape), the head's mean in model space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from dgm import rng
from dgm.data.info import DataInfo
from dgm.errors import ConfigError
from dgm.models.base import GenerativeModel, ModelConfig, check_temperature
from dgm.models.heads import Head, make_head
from dgm.nn.conv import ConvDecoder, ConvEncoder
from dgm.nn.mlp import MLP

EMBEDDING_DIM = 16  # size of the class embedding of conditional models
MIN_CONV_SIZE = 8  # images smaller than this get MLPs with net="auto"


@dataclass(frozen=True)
class AutoencoderConfig(ModelConfig):
    """Fields every model of the family has.

    - ``latent_dim``: K, the size of z (2 gives latent maps without projection).
    - ``net``: ``auto`` (conv for images of at least 8x8, MLP otherwise), ``mlp`` or ``conv``.
    - ``hidden``: MLP layer sizes of the encoder (the decoder mirrors them); the last is also
      the size of the conv encoder's features.
    - ``channels``: channels of the first conv level (doubled per level, up to 4x).
    - ``decoder``: the observation head, ``auto`` (from the data) or bernoulli, categorical,
      logistic, gaussian; ``sigma``: the Gaussian's fixed std, ``None`` to learn one per dimension;
      ``mixtures``: components of the logistic mixture.
    """

    latent_dim: int = 16
    net: Literal["auto", "mlp", "conv"] = "auto"
    hidden: tuple[int, ...] = (512, 256)
    channels: int = 32
    decoder: str = "auto"
    sigma: float | None = None
    mixtures: int = 3


def uses_conv(config: AutoencoderConfig) -> bool:
    """Whether ``config`` builds convolutional networks."""
    info = config.data
    if config.net == "auto":
        return info.is_image and min(info.shape[1:]) >= MIN_CONV_SIZE
    return config.net == "conv"


class LatentModel(GenerativeModel):
    """Base of ``ae``, ``dae``, ``cae`` and the VAEs; see the module docstring."""

    family = "latent"
    has_latent = True
    has_encoder = True
    can_condition = True
    Config = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        info = config.data
        self.latent_dim = config.latent_dim
        self.head: Head = make_head(info, config.decoder, config.sigma, config.mixtures)
        features = config.hidden[-1]
        emb = EMBEDDING_DIM if config.conditional else 0
        self.embedding = nn.Embedding(info.num_classes, emb) if config.conditional else None
        per_dim = self.head.params_per_dim
        if uses_conv(config):
            self.encoder = nn.Sequential(ConvEncoder(info.shape, features, config.channels), nn.SiLU())
            self.decoder = nn.Sequential(
                nn.Linear(config.latent_dim + emb, features),
                nn.SiLU(),
                ConvDecoder(features, info.shape, per_dim, config.channels),
            )
        else:
            self.encoder = nn.Sequential(MLP(info.dim, config.hidden[:-1], features), nn.SiLU())
            self.decoder = MLP(config.latent_dim + emb, config.hidden[::-1], info.dim * per_dim)
        self.code_head = nn.Linear(features + emb, self.code_features())

    @classmethod
    def check_config(cls, config: AutoencoderConfig) -> None:
        super().check_config(config)
        bad = [f"{f}={getattr(config, f)}" for f in ("latent_dim", "channels", "mixtures") if getattr(config, f) < 1]
        if not config.hidden or min(config.hidden) < 1:
            bad.append(f"hidden={config.hidden}")
        if bad:
            raise ConfigError(f"{cls.name} needs positive sizes, got {', '.join(bad)}; --set them to positive values")
        if config.net not in ("auto", "mlp", "conv"):
            raise ConfigError(f"net must be auto, mlp or conv, got {config.net!r}")
        info: DataInfo = config.data
        if config.net == "conv" and not info.is_image:
            raise ConfigError(f"net=conv needs image data, got {info.describe()}; use --set net=mlp")

    def code_features(self) -> int:
        """Outputs of the encoder's last layer: K for a deterministic code, more for a VAE."""
        return self.latent_dim

    # ----- networks -----------------------------------------------------------------------
    def encoder_input(self, x: Tensor) -> Tensor:
        """Model-space x (B, *shape) as the encoder sees it: levels scaled to [0, 1]."""
        info = self.config.data
        x = x.to(device=self.device, dtype=self.dtype)
        return x / (info.levels - 1) if info.support != "continuous" else x

    def features(self, x_in: Tensor, cond: Tensor | None) -> Tensor:
        """Encoder features (B, F) of encoder input ``x_in`` (with the class embedding)."""
        h = self.encoder(x_in if uses_conv(self.config) else x_in.flatten(1))
        return self._with_label(h, cond)

    def _with_label(self, h: Tensor, cond: Tensor | None) -> Tensor:
        cond = self.check_cond(cond, h.shape[0])
        return h if cond is None else torch.cat([h, self.embedding(cond).to(h.dtype)], -1)

    def decoder_params(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Head parameters (*lead, D, P) of p(x | z) for latents z (*lead, K)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        if cond is not None and len(lead) > 1:  # (k, B, K): the labels of the B examples, k times
            cond = torch.as_tensor(cond, device=self.device).reshape(-1).repeat(lead[0])
        out = self.decoder(self._with_label(flat.to(self.dtype), cond))
        info, per = self.config.data, self.head.params_per_dim
        if uses_conv(self.config):  # (N, C * P, H, W) -> (N, C, H, W, P) -> (N, D, P)
            c, h, w = info.shape
            out = out.view(-1, c, per, h, w).permute(0, 1, 3, 4, 2)
        return out.reshape(*lead, info.dim, per)

    # ----- the latent space ---------------------------------------------------------------
    def encode(self, x: Tensor, cond: Tensor | None = None):
        """The code of ``x``: (B, K) for a deterministic autoencoder."""
        self.flat_x(x)  # checks the shape
        return self.code_head(self.features(self.encoder_input(x), cond))

    def code_mean(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The deterministic code (the posterior mean for a VAE), (B, K)."""
        code = self.encode(x, cond)
        return code[0] if isinstance(code, tuple) else code

    def decode(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """The head's mean E[x | z] in model space, (B, *data.shape)."""
        return self.head.mean(self.decoder_params(z, cond)).view(-1, *self.config.data.shape)

    def reconstruct(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """decode(code mean of x): the model's reconstruction of ``x``, (B, *data.shape)."""
        return self.decode(self.code_mean(x, cond), cond)

    def reconstruction_log_prob(self, x: Tensor, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x | z) per example: x (B, *shape), z (*lead, B, K) -> (*lead, B)."""
        flat = self.flat_x(x)
        return self.head.log_prob(self.decoder_params(z, cond), flat.expand(*z.shape[:-1], -1))

    # ----- sampling -----------------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None, temperature: float) -> Tensor:
        """``n`` latents (n, K) from the model's prior, scaled by ``temperature``."""
        return temperature * rng.randn((n, self.latent_dim), generator, self.device).to(self.dtype)

    @torch.no_grad()
    def sample(
        self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """x ~ p(x | z), z from :meth:`prior_sample`, shape (n, *data.shape)."""
        temperature = check_temperature(temperature)
        cond = self.check_cond(cond, n)
        z = self.prior_sample(n, generator, temperature)
        x = self.head.sample(self.decoder_params(z, cond), generator)
        return x.view(n, *self.config.data.shape).float()
