"""The adversarial losses, on the discriminator's raw outputs (logits, or critic values).

``real`` and ``fake`` are D's outputs (B,) on data and on generated samples. The losses with
targets take per-example targets (1 for data, 0 for samples unless smoothed or flipped, see
:mod:`dgm.models.gan.tricks`). Each returns what its player minimises:

================  ==========================================================  ======================================
loss              discriminator                                               generator
================  ==========================================================  ======================================
minimax           -E log D(x) - E log(1 - D(G(z)))  (Goodfellow et al. 2014)   E log(1 - D(G(z)))
non-saturating    as minimax                                                  -E log D(G(z))  (the paper's remedy)
wasserstein-gp    E C(G(z)) - E C(x) + lambda E (||grad C(x_hat)|| - 1)^2     -E C(G(z))  (Gulrajani et al. 2017)
hinge             E max(0, 1 - C(x)) + E max(0, 1 + C(G(z)))                   -E C(G(z))  (Lim & Ye 2017; Miyato 2018)
least-squares     1/2 E (C(x) - 1)^2 + 1/2 E C(G(z))^2                         1/2 E (C(G(z)) - 1)^2  (Mao et al. 2017)
================  ==========================================================  ======================================

with D = sigmoid(logit). At the optimal discriminator D*(x) = p(x) / (p(x) + q(x)) the minimax
value E_p log D* + E_q log(1 - D*) is -log 4 + 2 JS(p || q) (Goodfellow et al. 2014, Theorem 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from dgm import rng

LOSSES = ("minimax", "non-saturating", "wasserstein-gp", "hinge", "least-squares")
# losses whose discriminator is a classifier with targets (label smoothing and flipping apply)
WITH_TARGETS = ("minimax", "non-saturating", "least-squares")


def discriminator_terms(
    kind: str, real: Tensor, fake: Tensor, real_target: Tensor | None = None, fake_target: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The discriminator's loss per example, on data (B,) and on samples (B,); its loss is the
    sum of their means (plus the gradient penalty for ``wasserstein-gp``, see
    :func:`gradient_penalty`). Targets default to 1 for data and 0 for samples."""
    if kind in WITH_TARGETS:
        real_target = torch.ones_like(real) if real_target is None else real_target
        fake_target = torch.zeros_like(fake) if fake_target is None else fake_target
        if kind == "least-squares":
            return 0.5 * (real - real_target).square(), 0.5 * (fake - fake_target).square()
        # binary cross-entropy -[t log D + (1 - t) log(1 - D)], from the logits
        return (
            F.binary_cross_entropy_with_logits(real, real_target, reduction="none"),
            F.binary_cross_entropy_with_logits(fake, fake_target, reduction="none"),
        )
    if real_target is not None or fake_target is not None:
        raise ValueError(f"the {kind} loss has no targets to smooth or flip")
    if kind == "wasserstein-gp":
        return -real, fake
    if kind == "hinge":
        return F.relu(1.0 - real), F.relu(1.0 + fake)
    raise ValueError(f"unknown GAN loss {kind!r}; one of {', '.join(LOSSES)}")


def discriminator_loss(
    kind: str, real: Tensor, fake: Tensor, real_target: Tensor | None = None, fake_target: Tensor | None = None
) -> Tensor:
    """Mean of :func:`discriminator_terms` on data plus their mean on samples."""
    on_real, on_fake = discriminator_terms(kind, real, fake, real_target, fake_target)
    return on_real.mean() + on_fake.mean()


def generator_terms(kind: str, fake: Tensor) -> Tensor:
    """The generator's loss per sample (B,), from D's outputs on its samples (see the table)."""
    if kind == "minimax":
        return -F.softplus(fake)  # log(1 - sigmoid(l)) = -softplus(l)
    if kind == "non-saturating":
        return F.softplus(-fake)  # -log sigmoid(l) = softplus(-l)
    if kind == "least-squares":
        return 0.5 * (fake - 1.0).square()
    if kind in ("wasserstein-gp", "hinge"):
        return -fake
    raise ValueError(f"unknown GAN loss {kind!r}; one of {', '.join(LOSSES)}")


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """Mean of :func:`generator_terms`."""
    return generator_terms(kind, fake).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """E (||grad_x C(x_hat)||_2 - 1)^2 at x_hat = e x + (1 - e) x_fake, e ~ U[0, 1] per example
    (Gulrajani et al. 2017, Algorithm 1), differentiable in the critic's parameters."""
    e = rng.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator, real.device).to(real.dtype)
    x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def discriminator_outputs(kind: str, scores: Tensor) -> Tensor:
    """What D says about examples, for the logs: the probability sigmoid(l) of being data for the
    cross-entropy losses, the raw value otherwise (a critic's score is not a probability)."""
    return torch.sigmoid(scores) if kind in ("minimax", "non-saturating") else scores
