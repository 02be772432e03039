"""Random draws that take an explicit ``torch.Generator``.

Every sampling method in dgm takes ``generator=``; the same generator state gives the same
samples on any device, because draws are made on the generator's device (the CPU for
``torch.Generator()``) and then moved to the model's device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def rand(shape, generator: torch.Generator | None = None, device=None) -> Tensor:
    """Uniform draws on [0, 1) of ``shape``, placed on ``device``."""
    u = torch.rand(shape, generator=generator, device=_gen_device(generator))
    return u.to(device) if device is not None else u


def randn(shape, generator: torch.Generator | None = None, device=None) -> Tensor:
    """Standard normal draws of ``shape``, placed on ``device``."""
    z = torch.randn(shape, generator=generator, device=_gen_device(generator))
    return z.to(device) if device is not None else z


def bernoulli(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw x ~ Bernoulli(probs) elementwise, as floats in {0, 1}."""
    return bernoulli_from_uniform(probs, rand(probs.shape, generator, probs.device))


def bernoulli_from_uniform(probs: Tensor, u: Tensor) -> Tensor:
    """x = 1[u < probs] for uniforms ``u`` of the shape of ``probs``: a Bernoulli draw whose
    randomness was drawn beforehand (what :func:`bernoulli` does with fresh uniforms)."""
    return (u < probs).to(probs.dtype)


def categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw an index from softmax(logits) over the last axis, by the Gumbel-max trick.

    argmax_k (logits_k + g_k) with g_k = -log(-log U_k) is distributed as softmax(logits).
    Returns a long tensor of shape ``logits.shape[:-1]``.
    """
    return categorical_from_uniform(logits, rand(logits.shape, generator, logits.device))


def categorical_from_uniform(logits: Tensor, u: Tensor) -> Tensor:
    """The Gumbel-max draw of :func:`categorical` from uniforms ``u`` of the shape of ``logits``."""
    u = u.clamp(1e-20, 1.0 - 1e-7)
    return torch.argmax(logits - torch.log(-torch.log(u)), dim=-1)


def make_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed``, or ``None`` for torch's global generator."""
    if seed is None:
        return None
    return torch.Generator().manual_seed(int(seed))
