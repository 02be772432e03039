"""Pictures of a diffusion model at work (from :mod:`dgm.apps.denoising`):

- :func:`plot_forward`: test examples noised to chosen timesteps t, one row per example and one
  column per t after the data itself;
- :func:`plot_trajectory`: a sampler run, two bands of rows (a white row between them): x_t and
  the predicted x_0 of each sample at the chosen steps, in the order the sampler visits them.

Images are shown in the model's data space (``model.to_data``: x_t clamped to [-1, 1], the
levels rounded) through ``dataset.to_display``; for 2-D points each panel is a scatter plot of
the point cloud at one t in a square box holding 99% of it: one box for every panel of the
forward process (to show the cloud spreading), one box per panel of a trajectory (where x_T
would dwarf the samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.apps.denoising import Forward, Trajectory, require_pictured
from dgm.viz.figures import plt, save_figure
from dgm.viz.latent import plot_image_rows, shown

POINT_SIZE = 3


def plot_forward(forward: Forward, dataset, out, title: str = "") -> Path:
    """The forward process: for images a row per example (the data, then x_t at each t); for
    2-D points one scatter panel per t after the data's."""
    require_pictured(dataset.info)
    columns = ["data", *(f"t={t}" for t in forward.timesteps)]
    title = title or "forward noising: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, one ε per example"
    every = torch.cat([forward.x.unsqueeze(1), forward.data], 1)  # (B, 1 + S, *shape)
    if not dataset.info.is_image:
        return _scatter_bands([("", every.transpose(0, 1))], dataset, out, columns, title)
    rows = [(f"#{i}", shown(dataset, every[i])) for i in range(every.shape[0])]
    return plot_image_rows(rows, out, title=title, col_labels=columns, wrap=max(16, len(columns)))


def plot_trajectory(path: Trajectory, dataset, out, title: str = "") -> Path:
    """A sampler run: x_t (upper band) and the predicted x_0 (lower band) at each recorded step,
    one row per sample for images, one row of scatter panels per band for 2-D points."""
    require_pictured(dataset.info)
    columns = [f"t={t}" for t in path.timesteps]
    title = title or "denoising: x_t (top) and the predicted x_0 (bottom) at the steps shown"
    if not dataset.info.is_image:
        bands = [("x_t", path.x_t_data.transpose(0, 1)), ("predicted x_0", path.x0_data.transpose(0, 1))]
        return _scatter_bands(bands, dataset, out, columns, title, shared=False)  # x_T would dwarf the samples
    rows = [(f"x_t #{i}", shown(dataset, path.x_t_data[i])) for i in range(path.x_t.shape[0])]
    rows.append(("", torch.ones_like(rows[0][1])))  # a white row between the bands
    rows += [(f"x̂_0 #{i}", shown(dataset, path.x0_data[i])) for i in range(path.x0.shape[0])]
    return plot_image_rows(rows, out, title=title, col_labels=columns, wrap=max(16, len(columns)))


def square_limits(clouds: Sequence[np.ndarray], coverage: float = 0.99) -> tuple[float, float, float, float]:
    """One square box (x_low, x_high, y_low, y_high) holding the central ``coverage`` of every
    cloud (N, 2) on both axes, with a margin: the few wild x_0 predictions of the noisiest steps
    (x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), abar near 0) do not shrink every cloud to a dot."""
    tail = (1 - coverage) / 2
    low = np.min([np.quantile(c, tail, axis=0) for c in clouds], axis=0)
    high = np.max([np.quantile(c, 1 - tail, axis=0) for c in clouds], axis=0)
    centre, half = (low + high) / 2, 0.55 * float(np.max(high - low)) or 1.0
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def _scatter_bands(
    bands: Sequence[tuple[str, Tensor]], dataset, out, columns: Sequence[str], title: str, shared: bool = True
) -> Path:
    """Rows of scatter panels: each band is (name, points (S, N, 2) in the model's data space),
    one panel per column, shown in raw units in a square box (:func:`square_limits`): one box for
    every panel when ``shared``, else one per panel."""
    s = len(columns)
    clouds = [[dataset.to_display(points[j]).numpy() for j in range(s)] for _, points in bands]  # raw units
    box = square_limits([c for row in clouds for c in row])
    fig, axes = plt.subplots(len(bands), s, figsize=(2.2 * s, 2.3 * len(bands)), squeeze=False, layout="constrained")
    for r, (name, _) in enumerate(bands):
        for j in range(s):
            xy, ax = clouds[r][j], axes[r, j]
            x0, x1, y0, y1 = box if shared else square_limits([xy])
            ax.scatter(xy[:, 0], xy[:, 1], s=POINT_SIZE, alpha=0.5, linewidths=0, color="tab:blue")
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6, length=2)
            if r == 0:
                ax.set_title(columns[j], fontsize=8)
            if shared and j:
                ax.set_yticklabels([])
            if shared and r < len(bands) - 1:
                ax.set_xticklabels([])
        if name:
            axes[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, out)
