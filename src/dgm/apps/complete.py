"""Completion with an autoregressive model: given the first part of an example (the top half of
a digit, the start of a text or an audio clip), draw the rest.

A *keep mask* says which elements are given. Named masks (:func:`keep_mask`):

- images: ``top-half`` (the top rows), ``top:R`` (the first R rows), ``left-half``;
- sequences and vectors: ``first-half``, ``first:N`` (the first N elements).

When the kept elements come first in the model's ordering (``top-half`` and ``first:N`` for
models in raster order) a completion is an exact draw from p(rest | kept). Otherwise (``left-half``,
or MADE's random orderings) each element is drawn given the elements before it, kept or drawn,
and kept elements later in the order do not inform earlier draws: :func:`is_prefix` tells.

>>> from dgm.data.info import DataInfo
>>> keep_mask("top:1", DataInfo((1, 3, 2), "binary", 2)).int().tolist()
[[[1, 1], [0, 0], [0, 0]]]
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dgm.apps.repeats import draws_per_example
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel

IMAGE_KEEPS = ("top-half", "top:R", "left-half")
SEQUENCE_KEEPS = ("first-half", "first:N")


def default_keep(info: DataInfo) -> str:
    """``top-half`` for images, ``first-half`` for sequences and vectors."""
    return "top-half" if info.is_image else "first-half"


def _count(text: str, spec: str, limit: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value < limit:
        raise ConfigError(f"--keep {spec}: the number of {what} must be an integer in 1..{limit - 1}, got {text!r}")
    return value


def keep_mask(spec: str, info: DataInfo) -> Tensor:
    """The boolean mask (*info.shape) of the elements that ``spec`` keeps (see the module docstring)."""
    shape = tuple(info.shape)
    keep = torch.zeros(shape, dtype=torch.bool)
    name, _, arg = spec.partition(":")
    if info.is_image:
        _, h, w = shape
        if spec == "top-half":
            keep[:, : h // 2] = True
        elif spec == "left-half":
            keep[:, :, : w // 2] = True
        elif name == "top" and arg:
            keep[:, : _count(arg, spec, h, "rows")] = True
        else:
            raise ConfigError(f"--keep must be one of {', '.join(IMAGE_KEEPS)} for images, got {spec!r}")
    else:
        flat = keep.view(-1)
        if spec == "first-half":
            flat[: flat.numel() // 2] = True
        elif name == "first" and arg:
            flat[: _count(arg, spec, flat.numel(), "elements")] = True
        else:
            raise ConfigError(f"--keep must be one of {', '.join(SEQUENCE_KEEPS)} for this data, got {spec!r}")
    if not keep.any():
        raise ConfigError(f"--keep {spec} keeps nothing of examples of shape {shape}")
    return keep


def is_prefix(keep: Tensor, info: DataInfo) -> bool:
    """True when the kept elements are the first ones in raster order (all channels of a pixel
    together), so that a raster-order model completes them exactly."""
    per_element = keep.any(0).reshape(-1) if info.is_image else keep.reshape(-1)
    if info.is_image and not bool((keep == keep[:1]).all()):
        return False  # some channels of a pixel kept, others not
    count = int(per_element.sum())
    return bool(per_element[:count].all())


def require_autoregressive(model: GenerativeModel) -> None:
    """A ConfigError unless ``model`` can complete examples (the autoregressive family)."""
    if not callable(getattr(model, "complete", None)):
        from dgm.registry import list_models  # late: the registry imports every model

        names = [row["name"] for row in list_models() if row["family"] == "autoregressive"]
        raise ConfigError(
            f"model '{model.name}' cannot complete examples; completion needs an autoregressive model "
            f"({', '.join(names)})"
        )


class Completions(NamedTuple):
    """Inputs ``x`` (B, *shape) in model space, the ``keep`` mask (*shape), ``samples``
    (B, K, *shape) (K completions of each input) and whether the completions are exact draws
    from p(rest | kept) (``exact``)."""

    x: Tensor
    keep: Tensor
    samples: Tensor
    exact: bool


@torch.no_grad()
def complete(
    model: GenerativeModel,
    x: Tensor,
    keep: Tensor,
    k: int = 4,
    cond: Tensor | None = None,
    seed: int | None = 0,
    temperature: float = 1.0,
    batch_size: int = 256,
) -> Completions:
    """``k`` completions of each example of ``x`` (B, *shape, model space) keeping ``keep``
    (a mask of shape data.shape), drawn in batches from one generator seeded with ``seed``."""
    require_autoregressive(model)

    def draw(xb, cb, generator):
        return model.complete(xb, keep, cond=cb, generator=generator, temperature=temperature)

    samples, _ = draws_per_example(model, x, k, cond, seed, batch_size, draw)
    info = model.config.data
    exact = is_prefix(keep, info) and getattr(model, "raster_order", True)
    return Completions(torch.as_tensor(x, dtype=torch.float32), keep, samples, exact)


def prompt_levels(text: str, vocab: str) -> Tensor:
    """The levels (len(text),) of the characters of ``text`` in the vocabulary ``vocab``; a
    DataError naming the characters it lacks."""
    missing = sorted(set(text) - set(vocab))
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise DataError(f"the prompt has characters the model's vocabulary lacks: {shown}; remove or replace them")
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.float32)


def prefix_input(levels: Tensor, info: DataInfo) -> tuple[Tensor, Tensor]:
    """A sequence prompt (L,) as one input (1, T) padded with zeros and the mask keeping its
    L elements; a DataError when it is empty or has more than T - 1 elements."""
    length = int(info.shape[0])
    n = int(levels.numel())
    if not 1 <= n < length:
        raise DataError(
            f"a prompt must have 1..{length - 1} elements for this model (it draws {length} in all), got {n}"
        )
    x = torch.zeros(1, length)
    x[0, :n] = levels
    keep = torch.zeros(length, dtype=torch.bool)
    keep[:n] = True
    return x, keep
