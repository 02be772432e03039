"""Denoising autoencoder (Vincent, Larochelle, Bengio & Manzagol 2008): the encoder sees a
corrupted x̃ ~ C(x̃ | x) and the decoder must reconstruct the clean x, so the code has to capture
the structure that undoes the corruption rather than copy the input.

Noise (:mod:`.noise`): ``noise="auto"`` masks a fraction ``noise_level`` of the dimensions (sets
them to 0; the paper's masking noise) for binary and discrete data and adds Gaussian noise of std
``noise_level`` for continuous data; ``gaussian``, ``masking`` and ``flip`` (binary) choose it.

>>> import dgm
>>> dae = dgm.build("dae", data=dgm.DataInfo((1, 8, 8), "binary", 2), noise="masking", noise_level=0.5)
>>> float(dae.loss(torch.ones(4, 1, 8, 8))["loss"]) > 0
True
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from dgm.data.info import DataInfo
from dgm.models.latent.ae import AE, AEConfig
from dgm.models.latent.noise import check_noise, corrupt
from dgm.registry import register


@dataclass(frozen=True)
class DAEConfig(AEConfig):
    """Configuration of :class:`DAE`: the training corruption ``noise`` and its ``noise_level``."""

    noise: str = "auto"
    noise_level: float = 0.25


def noise_kind(noise: str, info: DataInfo) -> str:
    """``noise`` with ``auto`` resolved: masking for binary and discrete data, else gaussian."""
    if noise != "auto":
        return noise
    return "gaussian" if info.support == "continuous" else "masking"


@register("dae")
class DAE(AE):
    """Denoising autoencoder (Vincent et al. 2008): reconstruct x from a corrupted copy."""

    Config = DAEConfig

    @classmethod
    def check_config(cls, config: DAEConfig) -> None:
        super().check_config(config)
        check_noise(noise_kind(config.noise, config.data), config.noise_level, config.data)

    def training_code(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The code of a corrupted copy of ``x`` (of ``x`` itself in eval mode, where the loss is
        the plain reconstruction loss)."""
        if self.training:
            config = self.config
            x = corrupt(x, config.data, noise_kind(config.noise, config.data), config.noise_level)
        return self.encode(x, cond), {}
