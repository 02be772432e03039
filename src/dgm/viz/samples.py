"""The samples picture of a run: an image grid, or a scatter for 2-D data."""

from __future__ import annotations

from pathlib import Path

from dgm.errors import DgmError
from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples, sample_labels
from dgm.viz.density import plot_density_comparison
from dgm.viz.figures import plot_image_grid


def save_samples_figure(model: GenerativeModel, dataset, path, n: int | None = None, seed: int | None = 0) -> Path:
    """Draw ``n`` samples (default 64 images, or 2 000 points for 2-D data) and save them as a
    grid (images), or for 2-D data beside the true and the model density."""
    if n is None:
        n = 64 if dataset.info.is_image else 2000
    samples = draw_samples(model, n, seed, cond=sample_labels(model, n, dataset.classes))
    shown = dataset.to_display(samples)
    title = f"{model.name} samples on {dataset.spec}"
    if shown.dim() == 4:
        nrow = len(dataset.classes or range(model.config.data.num_classes)) if model.conditional else None
        return plot_image_grid(shown, path, title=title, nrow=nrow)
    if shown.dim() == 2 and shown.shape[1] == 2:
        return plot_density_comparison(model, dataset, path, samples=samples)
    raise DgmError(f"no picture for samples of shape {tuple(shown.shape)}; save them with --out FILE.npy")
