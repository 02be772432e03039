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
    options: dict | None = None,
) -> Tensor:
    """``n`` samples in model space on the CPU, drawn ``batch_size`` at a time from one generator
    seeded with ``seed``, so a seed (and batch size) always gives the same samples. Conditional
    models get ``cond`` (default: :func:`sample_labels`); models with ``has_temperature`` take a
    ``temperature`` (None: the model's own, T = 1); ``options`` are further keyword options of the
    model's ``sample`` (:func:`check_sample_options`; None values are left out)."""
    options = check_sample_options(model, options)
    if temperature is not None:
        options["temperature"] = check_temperature(model, temperature)
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


def check_sample_options(model: GenerativeModel, options: dict | None) -> dict:
    """The options (without None values) if ``model`` declares them in ``sample_options``; else a
    ConfigError naming the option and the models that take it."""
    given = {key: value for key, value in (options or {}).items() if value is not None}
    unknown = [key for key in given if key not in model.sample_options]
    if unknown:
        from dgm.registry import get, list_models  # late: the registry imports every model

        takers = [row["name"] for row in list_models() if unknown[0] in get(row["name"]).sample_options]
        option = "--" + unknown[0].replace("_", "-")
        raise ConfigError(
            f"model '{model.name}' does not sample with {option}; leave it out"
            + (f" (models that take it: {', '.join(takers)})" if takers else "")
        )
    return given
