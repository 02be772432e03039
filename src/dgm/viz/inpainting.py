"""The picture of inpainting (from :func:`dgm.apps.inpaint.inpaint`): per example, the original,
the masked input (the hidden pixels in a colour no grey image has) and its completions."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from dgm.apps.inpaint import Inpainting
from dgm.viz.latent import label_name, plot_image_rows, require_images, shown
from dgm.viz.samples import channels_as_images

HIDDEN_COLOUR = (0.85, 0.2, 0.75)  # magenta: the pixels the model was asked to fill
HIDDEN_COLOUR_NAME = "magenta"


def as_rgb(images: Tensor) -> Tensor:
    """Displayable images (N, 1 or 3, H, W) as RGB (N, 3, H, W)."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def masked(images: Tensor, hidden: Tensor) -> Tensor:
    """RGB images (N, 3, H, W) with the pixels where ``hidden`` (H, W) is True painted in
    :data:`HIDDEN_COLOUR`."""
    colour = torch.tensor(HIDDEN_COLOUR, dtype=images.dtype).view(1, 3, 1, 1)
    return torch.where(hidden.view(1, 1, *hidden.shape), colour, images)


def plot_inpainting(done: Inpainting, dataset, out, title: str = "") -> Path:
    """One row per example: the data, the masked input, then its K completions."""
    require_images(dataset, "an inpainting picture")
    x, keep, samples, cond = done
    b, k = samples.shape[:2]
    originals = as_rgb(shown(dataset, x))  # (B, 3, H, W')
    hidden = channels_as_images(~keep.unsqueeze(0)).any(1)[0]  # (H, W'), as the images are laid out
    drawn = as_rgb(shown(dataset, samples.reshape(b * k, *samples.shape[2:]))).view(b, k, *originals.shape[1:])
    given = masked(originals, hidden)
    rows = []
    for i in range(b):
        name = f"example {i}" if cond is None else f"label {label_name(dataset, int(cond[i]))}"
        rows.append((name, torch.cat([originals[i : i + 1], given[i : i + 1], drawn[i]])))
    columns = ["data", "masked", *(str(j + 1) for j in range(k))]
    title = title or f"inpainting: the {HIDDEN_COLOUR_NAME} pixels filled in, {k} times each"
    return plot_image_rows(rows, out, title=title, col_labels=columns, wrap=max(16, k + 2))
