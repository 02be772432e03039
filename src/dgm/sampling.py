"""Drawing samples from any model: reproducible, in batches, with class labels when needed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dgm.errors import ConfigError
from dgm.models.base import GenerativeModel
from dgm.rng import make_generator


def sample_labels(model: GenerativeModel, n: int, classes: Sequence[int] | None = None) -> Tensor | None:
    """For conditional models, ``n`` labels cycling through ``classes`` (default 0..K-1; pass a
    dataset's kept classes so that no sample asks for a class the model never saw), which puts
    one class per row in a grid of len(classes) columns; None for unconditional models."""
    if not model.conditional:
        return None
    classes = torch.as_tensor(classes if classes is not None else range(model.config.data.num_classes))
    return classes[torch.arange(n) % len(classes)]


@torch.no_grad()
def draw_samples(
    model: GenerativeModel,
    n: int,
    seed: int | None = 0,
    cond: Tensor | None = None,
    batch_size: int = 1000,
    temperature: float | None = None,
) -> Tensor:
    """``n`` samples in model space on the CPU, drawn ``batch_size`` at a time from one generator
    seeded with ``seed``, so a seed (and batch size) always gives the same samples. Conditional
    models get ``cond`` (default: :func:`sample_labels`); models with ``has_temperature`` take a
    ``temperature`` (None: the model's own, T = 1)."""
    options = {} if temperature is None else {"temperature": check_temperature(model, temperature)}
    was_training = model.training
    model.eval()
    if cond is None:
        cond = sample_labels(model, n)
    generator = make_generator(seed)
    out = []
    for i in range(0, n, batch_size):
        c = None if cond is None else cond[i : i + batch_size].to(model.device)
        out.append(model.sample(min(batch_size, n - i), cond=c, generator=generator, **options).cpu())
    model.train(was_training)
    return torch.cat(out)


def check_temperature(model: GenerativeModel, temperature: float) -> float:
    """``temperature`` if ``model`` samples with one (its value is checked by ``model.sample``);
    else a ConfigError."""
    if not model.has_temperature:
        raise ConfigError(
            f"model '{model.name}' does not sample with a temperature; leave it out "
            "(flows, VAEs and autoregressive models take one)"
        )
    return temperature
