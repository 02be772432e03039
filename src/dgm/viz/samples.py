"""The samples picture of a run: an image grid, a density picture for 2-D data, or for vectors
of any other dimension a pairs plot or histograms against the data."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples, sample_labels
from dgm.viz.density import plot_density_comparison
from dgm.viz.figures import plot_image_grid
from dgm.viz.vectors import plot_vector_samples

IMAGE_CHANNELS = (1, 3)  # grey and RGB are shown as they are; other channel counts side by side


def save_samples_figure(
    model: GenerativeModel,
    dataset,
    path,
    n: int | None = None,
    seed: int | None = 0,
    temperature: float | None = None,
) -> Path:
    """Draw ``n`` samples (default 64 images, or 2 000 vectors) at ``temperature`` (models with
    ``has_temperature``; None is the model's own) and save their picture: a grid
    for images, the true and model density beside the samples for 2-D data, and for vectors of
    any other dimension a pairs plot or per-dimension histograms over the test split
    (:func:`dgm.viz.vectors.plot_vector_samples`)."""
    if n is None:
        n = 64 if dataset.info.is_image else 2000
    samples = draw_samples(model, n, seed, cond=sample_labels(model, n, dataset.classes), temperature=temperature)
    shown = dataset.to_display(samples)
    title = f"{model.name} samples on {dataset.spec}" + ("" if temperature is None else f", T = {temperature:g}")
    if shown.dim() == 4:
        nrow = len(dataset.classes or range(model.config.data.num_classes)) if model.conditional else None
        return plot_image_grid(channels_as_images(shown), path, title=title, nrow=nrow)
    if tuple(shown.shape[1:]) == (2,):
        return plot_density_comparison(model, dataset, path, samples=samples)
    discrete = dataset.raw_info.support != "continuous"
    return plot_vector_samples(shown, dataset.split("test").x, path, title=title, discrete=discrete)


def channels_as_images(images: Tensor) -> Tensor:
    """Images (N, C, H, W) as they are for C in IMAGE_CHANNELS, else each example's channels
    side by side as one grey image (N, 1, H, C * W)."""
    n, c, h, w = images.shape
    if c in IMAGE_CHANNELS:
        return images
    return images.permute(0, 2, 1, 3).reshape(n, 1, h, c * w)  # (N, H, C, W) -> (N, 1, H, C * W)
