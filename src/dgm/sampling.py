"""Drawing samples from any model: reproducible, in batches, with class labels when needed."""

from __future__ import annotations

import torch
from torch import Tensor

from dgm.models.base import GenerativeModel
from dgm.rng import make_generator


def sample_labels(model: GenerativeModel, n: int) -> Tensor | None:
    """Labels 0, 1, ..., K-1 repeated (one row per class in a grid), for conditional models."""
    if not model.conditional:
        return None
    return torch.arange(n) % model.config.data.num_classes


@torch.no_grad()
def draw_samples(
    model: GenerativeModel, n: int, seed: int | None = 0, cond: Tensor | None = None, batch_size: int = 1000
) -> Tensor:
    """``n`` samples in model space on the CPU, drawn ``batch_size`` at a time from one generator
    seeded with ``seed``, so a seed (and batch size) always gives the same samples. Conditional
    models get ``cond`` (default: :func:`sample_labels`)."""
    was_training = model.training
    model.eval()
    if cond is None:
        cond = sample_labels(model, n)
    generator = make_generator(seed)
    out = []
    for i in range(0, n, batch_size):
        c = None if cond is None else cond[i : i + batch_size].to(model.device)
        out.append(model.sample(min(batch_size, n - i), cond=c, generator=generator).cpu())
    model.train(was_training)
    return torch.cat(out)
