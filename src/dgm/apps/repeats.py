"""K draws per example: what completion and inpainting share.

>>> samples, labels = draws_per_example(model, x, 4, None, 0, 64, lambda xb, cb, g: model.complete(xb, keep, cb, g))
>>> samples.shape                                  # (B, 4, *data.shape)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel
from dgm.rng import make_generator

# draw(x_batch, labels_batch or None, generator) -> a batch of samples, on the model's device
Draw = Callable[[Tensor, Tensor | None, torch.Generator | None], Tensor]


@torch.no_grad()
def draws_per_example(
    model: GenerativeModel, x, k: int, cond, seed: int | None, batch_size: int, draw: Draw
) -> tuple[Tensor, Tensor | None]:
    """``k`` draws of ``draw`` for each example of ``x`` (B, *data.shape, model space): the K
    copies of an example sit together, go through ``draw`` in batches of ``batch_size`` on the
    model's device, in eval mode (restored after), from one generator seeded with ``seed`` (a
    seed and batch size always give the same draws). Returns the draws (B, K, *shape) as float32
    on the CPU and the labels (B,) as integers (or None)."""
    if k < 1:
        raise ConfigError(f"-n (completions per input) must be at least 1, got {k}")
    shape = tuple(model.config.data.shape)
    x = torch.as_tensor(x, dtype=torch.float32)
    if tuple(x.shape[1:]) != shape:
        raise DataError(f"inputs must have shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    labels = None if cond is None else torch.as_tensor(cond).long()
    repeated = x.repeat_interleave(k, 0)
    repeated_labels = None if labels is None else labels.repeat_interleave(k, 0)
    generator = make_generator(seed)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, repeated.shape[0], batch_size):
            xb = repeated[i : i + batch_size].to(model.device, model.dtype)
            cb = None if repeated_labels is None else repeated_labels[i : i + batch_size].to(model.device)
            out.append(draw(xb, cb, generator).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).view(x.shape[0], k, *shape), labels
