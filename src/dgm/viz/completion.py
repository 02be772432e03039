"""The picture of image completions: per input, the original, what the model was given (the
missing part grey) and its completions (from :func:`dgm.apps.complete.complete`)."""

from __future__ import annotations

from pathlib import Path

import torch

from dgm.apps.complete import Completions
from dgm.viz.latent import plot_image_rows, require_images, shown
from dgm.viz.samples import channels_as_images

MISSING_GREY = 0.5  # the value shown where an element was not given


def plot_completions(completions: Completions, dataset, out, title: str = "") -> Path:
    """One row per input: original, given (missing part grey), then the K completions."""
    require_images(dataset, "a completion picture")
    x, keep, samples, _ = completions
    k = samples.shape[1]
    originals = shown(dataset, x)  # (B, C', H, W')
    mask = channels_as_images(keep.unsqueeze(0).float()).expand_as(originals)
    given = originals * mask + MISSING_GREY * (1 - mask)
    drawn = shown(dataset, samples.reshape(-1, *samples.shape[2:])).view(x.shape[0], k, *originals.shape[1:])
    rows = [(f"input {i}", torch.cat([originals[i : i + 1], given[i : i + 1], drawn[i]])) for i in range(x.shape[0])]
    columns = ["original", "given", *(str(j + 1) for j in range(k))]
    return plot_image_rows(rows, out, title=title, col_labels=columns, wrap=max(16, k + 2))
