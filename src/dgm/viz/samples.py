"""The samples picture of a run: an image grid, a density picture for 2-D data, for vectors of
any other dimension a pairs plot or histograms against the data, and for text and audio the
samples themselves (``samples.txt``, ``samples.wav``) beside a picture of them."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from dgm.data.info import DataInfo
from dgm.data.sequence_io import write_text_samples, write_wav
from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples, sample_labels
from dgm.viz.density import plot_density_comparison
from dgm.viz.figures import plot_image_grid
from dgm.viz.sequence import plot_sequence_samples
from dgm.viz.vectors import plot_vector_samples

IMAGE_CHANNELS = (1, 3)  # grey and RGB are shown as they are; other channel counts side by side
SEQUENCE_SAMPLES = 16  # text or audio samples drawn for a run (each one is a whole window)


def save_samples_figure(
    model: GenerativeModel,
    dataset,
    path,
    n: int | None = None,
    seed: int | None = 0,
    temperature: float | None = None,
    options: dict | None = None,
) -> Path:
    """Draw ``n`` samples (default 64 images, or 2 000 vectors) at ``temperature`` (models with
    ``has_temperature``; None is the model's own) and sampling ``options`` (a diffusion model's
    sampler and steps, say: :func:`dgm.sampling.check_sample_options`) and save their picture: a grid
    for images, the true and model density beside the samples for 2-D data, and for vectors of
    any other dimension a pairs plot or per-dimension histograms over the test split
    (:func:`dgm.viz.vectors.plot_vector_samples`).

    Text and audio samples (default 16) are also written as what they are, beside ``path``: the
    text under ``path`` with suffix ``.txt`` (``samples.txt``), the audio with suffix ``.wav``
    (``samples.wav``); the picture at ``path`` sets the text in type or shows the waveforms."""
    info = dataset.info
    if n is None:
        n = 64 if info.is_image else SEQUENCE_SAMPLES if info.is_sequence else 2000
    cond = sample_labels(model, n, dataset.classes)
    samples = draw_samples(model, n, seed, cond=cond, temperature=temperature, options=options)
    title = f"{model.name} samples on {dataset.spec}" + ("" if temperature is None else f", T = {temperature:g}")
    title += "".join(f", {key} {value}" for key, value in (options or {}).items() if value is not None)
    if info.is_sequence:
        write_sequence_samples(Path(path), samples, info, cond)
        return plot_sequence_samples(samples, info, path, title=title)
    shown = dataset.to_display(samples)
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


def write_sequence_samples(path: Path, samples: Tensor, info: DataInfo, cond: Tensor | None = None) -> Path:
    """Write text samples (n, T) to ``path`` with suffix ``.txt``, or audio samples to ``path`` with
    suffix ``.wav``; returns the file written."""
    if info.vocab is not None:
        return write_text_samples(path.with_suffix(".txt"), samples, info.vocab, labels=cond)
    return write_wav(path.with_suffix(".wav"), samples, int(info.sample_rate))
