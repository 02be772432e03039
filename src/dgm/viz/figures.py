"""Figures (matplotlib with the Agg backend; nothing is shown on screen)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dgm.io import atomic_write  # noqa: E402


def save_figure(fig, path) -> Path:
    """Save ``fig`` atomically as PNG (or the format of ``path``'s suffix) and close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))
    plt.close(fig)
    return out


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images (N, C, H, W) with values in [0, 1] into one array (H', W') or (H', W', 3)."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = torch.ones(c, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for k in range(n):
        i, j = divmod(k, nrow)
        top, left = pad + i * (h + pad), pad + j * (w + pad)
        grid[:, top : top + h, left : left + w] = images[k]
    return grid[0].numpy() if c == 1 else grid.permute(1, 2, 0).numpy()


def plot_image_grid(images: torch.Tensor, path, title: str | None = None, nrow: int | None = None) -> Path:
    """Save a grid of images (N, C, H, W) in [0, 1]."""
    grid = image_grid(images, nrow)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
