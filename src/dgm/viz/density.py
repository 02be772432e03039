"""Density pictures for 2-D data: the true density beside the model's, and the model's samples.

>>> ds = load_dataset("toy2d:gmm8", transforms=["scale"])
>>> plot_density_comparison(model, ds, "density.png")     # target | model density | samples
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.errors import DataError
from dgm.eval.toy2d import data_log_density
from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples
from dgm.viz.figures import plt, save_figure

LOG_RANGE = 10.0  # nats of log density shown below the target's maximum when log=True


def density_grid(data: Tensor, grid: int, margin: float = 0.05) -> tuple[Tensor, Tensor, Tensor]:
    """Cell edges along x and y (grid + 1 each) of a box around ``data`` (N, 2), widened by
    ``margin`` of its size on every side, and the cell centres (grid * grid, 2) in "ij" order."""
    low, high = data.amin(0).double(), data.amax(0).double()
    pad = margin * (high - low).clamp(min=1e-6)
    edges = [
        torch.linspace(float(low[d] - pad[d]), float(high[d] + pad[d]), grid + 1, dtype=torch.float64) for d in (0, 1)
    ]
    cx, cy = ((e[:-1] + e[1:]) / 2 for e in edges)
    gx, gy = torch.meshgrid(cx, cy, indexing="ij")  # (grid, grid): [i, j] is (cx[i], cy[j])
    return edges[0], edges[1], torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def check_2d(dataset) -> None:
    """Refuse a dataset whose raw examples are not 2-D points, naming what to use instead."""
    if tuple(dataset.raw_info.shape) != (2,):
        raise DataError(
            f"density pictures are for 2-D data, got '{dataset.spec}' ({dataset.raw_info.describe()}); "
            "use e.g. toy2d:gmm8, or 'dgm plot' samples for other data"
        )


def density_cmap():
    """viridis with log 0 = -inf (a NaN after exp or as a log value) shown as its lowest colour."""
    viridis = plt.get_cmap("viridis")
    return viridis.with_extremes(bad=viridis(0.0))


def _true_log_density(dataset, data: Tensor, ex: Tensor, ey: Tensor, points: Tensor) -> tuple[Tensor, str]:
    """log p on the grid: the analytic target's, or the log of a histogram of ``data``."""
    target = dataset.target
    if target is not None and target.has_density:
        return target.log_prob(points), f"target density p(x) ({dataset.spec})"
    hist, _, _ = np.histogram2d(data[:, 0].numpy(), data[:, 1].numpy(), bins=[ex.numpy(), ey.numpy()], density=True)
    return torch.from_numpy(hist).log().reshape(-1), f"histogram of the test split ({dataset.spec})"


def plot_density_comparison(
    model: GenerativeModel,
    dataset,
    path,
    samples: Tensor | None = None,
    grid: int = 200,
    n: int = 2000,
    seed: int = 0,
    log: bool = False,
    batch_size: int = 1000,
) -> Path:
    """Save panels side by side: the true density, the model's density in raw units (transform
    log-det included; exp(ELBO), a lower bound, for bound models; no panel for models without a
    density), and a scatter of model samples, on a ``grid`` x ``grid`` box around the test split.

    The true density is the analytic target's (a histogram of the test split for moons, spirals
    and other 2-D data). Both heatmaps share one colour scale, set by the true density: p from 0
    to its maximum, or with ``log=True`` log p over the LOG_RANGE nats below its maximum; larger
    model values saturate. ``samples`` are model-space samples (as from
    :func:`dgm.sampling.draw_samples`; by default ``n`` drawn with ``seed``), shown in raw units
    through ``dataset.to_display``.
    """
    check_2d(dataset)
    data = dataset.split("test").x.double()
    ex, ey, points = density_grid(data, grid)
    true_log, true_title = _true_log_density(dataset, data, ex, ey, points)
    panels = [(true_title, true_log)]
    if model.density != "none":
        title = "model density q(x)" if model.density == "exact" else "model exp(ELBO) <= q(x)"
        panels.append((title, data_log_density(model, dataset, points.float(), batch_size)))
    if samples is None:
        samples = draw_samples(model, n, seed=seed, batch_size=batch_size)
    samples = dataset.to_display(torch.as_tensor(samples)).double()

    top = float(true_log[torch.isfinite(true_log)].max())
    vmin, vmax, label = (top - LOG_RANGE, top, "log density") if log else (0.0, float(np.exp(top)), "density")
    cmap = density_cmap()
    extent = (float(ex[0]), float(ex[-1]), float(ey[0]), float(ey[-1]))
    fig, axes = plt.subplots(
        1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1), 4.2), squeeze=False, layout="constrained"
    )
    for ax, (title, log_values) in zip(axes[0], panels, strict=False):
        values = log_values if log else log_values.exp()
        image = values.reshape(grid, grid).T.numpy()  # rows are y, columns x
        im = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes[0][: len(panels)]), shrink=0.8, extend="max", label=label)
    ax = axes[0][-1]
    ax.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=1, alpha=0.4, color="k")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_title(f"model samples (n = {len(samples)})", fontsize=9)
    fig.suptitle(f"{model.name or type(model).__name__} on {dataset.spec}", fontsize=10)
    return save_figure(fig, path)


def plot_density_table(rows: list[tuple[object, list[tuple[str, GenerativeModel]]]], path, grid: int = 150) -> Path:
    """Save a table of 2-D densities: one row per dataset, its true density first, then each
    ``(label, model)``'s density in raw units, on one colour scale per row set by the true
    density (as :func:`plot_density_comparison`). Labels go above the panels, e.g. a model's
    name and its KL. For comparing models trained on the same targets (docs/flows.md)."""
    columns = 1 + max(len(models) for _, models in rows)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(2.4 * columns, 2.4 * len(rows)), squeeze=False, layout="constrained"
    )
    cmap = density_cmap()
    for row, (dataset, models) in zip(axes, rows, strict=True):
        check_2d(dataset)
        data = dataset.split("test").x.double()
        ex, ey, points = density_grid(data, grid)
        true_log, _ = _true_log_density(dataset, data, ex, ey, points)
        panels = [(f"truth: {dataset.spec.split('?')[0]}", true_log)]
        panels += [(label, data_log_density(model, dataset, points.float())) for label, model in models]
        vmax = float(true_log[torch.isfinite(true_log)].max().exp())
        extent = (float(ex[0]), float(ex[-1]), float(ey[0]), float(ey[-1]))
        for ax, (title, log_values) in zip(row, panels, strict=False):
            image = log_values.exp().reshape(grid, grid).T.numpy()
            ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(panels) :]:
            ax.axis("off")
    return save_figure(fig, path)
