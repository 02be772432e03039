"""Inpainting with a diffusion model: fill in a hidden region of images so that it agrees with
the pixels around it (RePaint, Lugmayr et al. 2022; the sampler is
:func:`dgm.models.diffusion.samplers.repaint`).

A *mask* names the pixels to fill (hidden in every channel); :func:`keep_mask` turns it into the
keep mask the model takes (1 = known pixel):

- ``center``: the central rectangle of half the height and half the width;
- ``left-half``: the left half of the columns;
- ``random``: each pixel hidden independently with probability 1/2, drawn from a generator
  seeded with the seed (one mask for every example);
- a picture file (``FILE.png``) of exactly the data's height and width, whose non-zero (white)
  pixels are the ones to fill.

A mask that hides nothing or everything is refused: there would be nothing to fill, or nothing
to agree with (that is plain sampling: ``dgm sample``).

>>> from dgm.data.info import DataInfo
>>> keep = keep_mask("center", DataInfo((1, 4, 4), "discrete", 17))
>>> (~keep[0]).int().tolist()
[[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from dgm.apps.repeats import draws_per_example
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel
from dgm.rng import make_generator, rand

MASKS = ("center", "left-half", "random")
RANDOM_HIDDEN = 0.5  # probability that the random mask hides a pixel


def _require_image_data(info: DataInfo) -> tuple[int, int, int]:
    if not info.is_image:
        raise DataError(f"inpainting fills in a region of images; this run's data is {info.describe()}")
    c, h, w = info.shape
    return c, h, w


def hidden_pixels(spec: str, info: DataInfo, seed: int | None = 0) -> Tensor:
    """The boolean (H, W) map of the pixels that mask ``spec`` hides (see the module docstring);
    a ConfigError for an unknown name, a DataError for a picture of the wrong size."""
    _, h, w = _require_image_data(info)
    hidden = torch.zeros(h, w, dtype=torch.bool)
    if spec == "center":
        top, left = h // 4, w // 4
        hidden[top : top + max(h // 2, 1), left : left + max(w // 2, 1)] = True
    elif spec == "left-half":
        hidden[:, : max(w // 2, 1)] = True
    elif spec == "random":
        hidden = rand((h, w), make_generator(seed or 0)) < RANDOM_HIDDEN
    else:
        hidden = _picture_mask(Path(spec), h, w)
    return hidden


def _picture_mask(path: Path, h: int, w: int) -> Tensor:
    """The non-zero pixels of a picture of size (h, w), as a boolean (h, w) map."""
    import numpy as np

    from dgm.data.folder import _open

    if not path.is_file():
        raise ConfigError(
            f"--mask must be {', '.join(MASKS)} or a picture file (FILE.png, {w}x{h} pixels, white where to fill), "
            f"got {str(path)!r}"
        )
    with _open(path) as image:
        if image.size != (w, h):
            raise DataError(
                f"--mask {path.name} is {image.size[0]}x{image.size[1]} pixels; this run's images are {w}x{h} "
                "(width x height): draw the mask at that size"
            )
        pixels = np.asarray(image.convert("L"))
    return torch.from_numpy(pixels > 0)


def keep_mask(spec: str, info: DataInfo, seed: int | None = 0) -> Tensor:
    """The boolean keep mask (*info.shape) of mask ``spec``: False on the hidden pixels of
    :func:`hidden_pixels` in every channel. A ConfigError when it hides nothing or everything."""
    c, h, w = _require_image_data(info)
    hidden = hidden_pixels(spec, info, seed)
    name = Path(spec).name if spec not in MASKS else spec
    if not hidden.any():
        raise ConfigError(f"--mask {name} hides no pixel of these {w}x{h} images: there is nothing to fill")
    if hidden.all():
        raise ConfigError(
            f"--mask {name} hides every pixel: there is nothing to agree with; to draw whole images use dgm sample"
        )
    return (~hidden).unsqueeze(0).expand(c, h, w).clone()


def mask_name(spec: str) -> str:
    """A short name of mask ``spec`` for file names: the name itself, or the picture's stem."""
    return spec if spec in MASKS else Path(spec).stem


def inpainting_models() -> list[str]:
    """The registered models that can inpaint (they have an ``inpaint`` method)."""
    from dgm.registry import get, list_models  # late: the registry imports every model

    return [row["name"] for row in list_models() if callable(getattr(get(row["name"]), "inpaint", None))]


def require_inpainting(model: GenerativeModel) -> None:
    """A ConfigError unless ``model`` can inpaint, naming the models that can."""
    if not callable(getattr(model, "inpaint", None)):
        raise ConfigError(
            f"model '{model.name}' cannot inpaint; inpainting needs a diffusion model ({', '.join(inpainting_models())})"
        )


class Inpainting(NamedTuple):
    """Originals ``x`` (B, *shape) in model space, the ``keep`` mask (*shape, True = known),
    ``samples`` (B, K, *shape) (K completions of each original, equal to it where kept) and the
    labels ``cond`` (B,) they were drawn with (None for unconditional models)."""

    x: Tensor
    keep: Tensor
    samples: Tensor
    cond: Tensor | None


@torch.no_grad()
def inpaint(
    model: GenerativeModel,
    x: Tensor,
    keep: Tensor,
    k: int = 4,
    cond: Tensor | None = None,
    seed: int | None = 0,
    steps: int | None = None,
    resample: int = 5,
    guidance: float | None = None,
    batch_size: int = 64,
) -> Inpainting:
    """``k`` completions of each image of ``x`` (B, *shape, model space) where ``keep`` (*shape)
    is False, drawn with ``model.inpaint`` (``steps`` respaced steps of ``resample`` rounds; the
    model's defaults for None) in batches from one generator seeded with ``seed`` (a seed and
    batch size always give the same completions)."""
    require_inpainting(model)
    keep = torch.as_tensor(keep, dtype=torch.bool)
    mask = keep.to(model.device, model.dtype)

    def draw(xb, cb, generator):
        return model.inpaint(xb, mask, cond=cb, generator=generator, steps=steps, resample=resample, guidance=guidance)

    samples, labels = draws_per_example(model, x, k, cond, seed, batch_size, draw)
    x = torch.as_tensor(x, dtype=torch.float32)
    # the model keeps the known pixels in diffusion space; this removes the round-off of mapping back
    samples = torch.where(keep, x.unsqueeze(1), samples)
    return Inpainting(x, keep, samples, labels)


def pick_examples(dataset, n: int, seed: int = 0, split: str = "test") -> tuple[Tensor, Tensor | None, Tensor]:
    """``n`` examples of ``split`` picked by ``seed`` in model space (stochastic transforms draw
    from ``seed``), their labels (or None) and their positions in the split."""
    from dgm.apps.latent import pick

    if n < 1:
        raise ConfigError(f"--examples must be at least 1, got {n}")
    data = dataset.split(split)
    index = pick(data.n, n, seed)
    x, _ = dataset.apply_transforms(data.x[index], torch.Generator().manual_seed(seed))
    return x, None if data.y is None else data.y[index], index


__all__ = [
    "MASKS",
    "Inpainting",
    "hidden_pixels",
    "inpaint",
    "inpainting_models",
    "keep_mask",
    "mask_name",
    "pick_examples",
    "require_inpainting",
]
