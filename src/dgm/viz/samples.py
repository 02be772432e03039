"""The samples picture of a run: an image grid, or a scatter for 2-D data."""

from __future__ import annotations

from pathlib import Path

import torch

from dgm.errors import DgmError
from dgm.models.base import GenerativeModel
from dgm.rng import make_generator
from dgm.viz.figures import plot_image_grid, plot_points_2d


def sample_labels(model: GenerativeModel, n: int) -> torch.Tensor | None:
    """Labels 0, 1, ..., K-1 repeated (one row per class in a grid), for conditional models."""
    if not model.conditional:
        return None
    return torch.arange(n) % model.config.data.num_classes


@torch.no_grad()
def draw_samples(model: GenerativeModel, n: int, seed: int | None = 0, cond=None) -> torch.Tensor:
    """``n`` samples in model space, reproducible for a given seed."""
    model.eval()
    if cond is None:
        cond = sample_labels(model, n)
    return model.sample(n, cond=cond, generator=make_generator(seed)).cpu()


def save_samples_figure(model: GenerativeModel, dataset, path, n: int | None = None, seed: int | None = 0) -> Path:
    """Draw ``n`` samples (default 64 images, or 2 000 points for 2-D data) and save them as a
    grid (images) or a scatter beside the data (2-D)."""
    if n is None:
        n = 64 if dataset.info.is_image else 2000
    samples = draw_samples(model, n, seed)
    shown = dataset.to_display(samples)
    title = f"{model.name} samples on {dataset.spec}"
    if shown.dim() == 4:
        nrow = model.config.data.num_classes if model.conditional else None
        return plot_image_grid(shown, path, title=title, nrow=nrow)
    if shown.dim() == 2 and shown.shape[1] == 2:
        reference = dataset.to_display(dataset.transformed("test", seed=0)[0][: len(shown)])
        return plot_points_2d(shown, path, title=title, reference=reference)
    raise DgmError(f"no picture for samples of shape {tuple(shown.shape)}; save them with --out FILE.npy")
