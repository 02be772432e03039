"""Contractive autoencoder (Rifai, Vincent, Muller, Glorot & Bengio 2011): the reconstruction loss
plus λ times the squared Frobenius norm of the encoder's Jacobian,

    L = Σ_x [ loss(x, g(f(x))) + λ ‖∂f(x)/∂x‖_F² ],

which makes the code insensitive to directions the data does not vary in.

The penalty is exact for any encoder: the K rows of the Jacobian are vector-Jacobian products
with the K unit vectors, computed in one batched backward pass (``is_grads_batched``, vmapped by
autograd) with the graph kept so that the penalty is trained. For the paper's one-layer sigmoid
encoder f(x) = s(Wx + b) the closed form is ‖J‖_F² = Σ_j (h_j (1 - h_j))² Σ_i W_ji² (eq. 5),
:func:`sigmoid_layer_jacobian_sq`, which the tests compare with the general one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dgm.errors import ConfigError
from dgm.models.latent.ae import AE, AEConfig
from dgm.registry import register


def jacobian_frobenius_sq(
    fn: Callable[[Tensor], Tensor], x: Tensor, create_graph: bool = True
) -> tuple[Tensor, Tensor]:
    """(fn(x), ‖∂fn(x)/∂x‖_F² per example) for ``fn`` mapping (B, *in) to (B, K) with examples
    independent (no batch norm): ``x`` (B, *in) -> (B, K), (B,). One batched backward pass of
    the K unit cotangents; differentiable when ``create_graph``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = fn(x)
        k = z.shape[-1]
        eye = torch.eye(k, dtype=z.dtype, device=z.device).unsqueeze(1).expand(k, *z.shape)  # (K, B, K)
        (rows,) = torch.autograd.grad(z, x, eye, create_graph=create_graph, is_grads_batched=True)  # (K, B, *in)
    return z, rows.square().flatten(2).sum((0, 2))


def sigmoid_layer_jacobian_sq(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """‖∂h/∂x‖_F² for h = sigmoid(x Wᵀ + b): Σ_j (h_j (1 - h_j))² ‖W_j‖² (Rifai et al. 2011,
    eq. 5). ``x`` (B, D), ``weight`` (K, D), ``bias`` (K,) -> (B,)."""
    h = torch.sigmoid(x @ weight.t() + bias)
    return ((h * (1 - h)).square() * weight.square().sum(1)).sum(-1)


@dataclass(frozen=True)
class CAEConfig(AEConfig):
    """Configuration of :class:`CAE`: ``contraction`` is λ, the weight of the penalty."""

    contraction: float = 0.1


@register("cae")
class CAE(AE):
    """Contractive autoencoder (Rifai et al. 2011): reconstruction + λ‖∂f/∂x‖_F², exact."""

    Config = CAEConfig

    @classmethod
    def check_config(cls, config: CAEConfig) -> None:
        super().check_config(config)
        if not 0 <= config.contraction < float("inf"):
            raise ConfigError(f"contraction (λ) must be a number >= 0, got {config.contraction}")

    def training_code(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The code of ``x`` and the penalty λ ‖∂f/∂x‖_F² (mean over the batch), the Jacobian
        taken in the encoder's input scale."""
        z, frob = jacobian_frobenius_sq(lambda v: self.code_head(self.features(v, cond)), self.encoder_input(x))
        return z, {"contraction": self.config.contraction * frob.mean()}
