"""Pictures of vector samples (N, D) against the data, for any D.

- D = 1: the histogram of the samples over that of the data;
- D <= PAIRS_MAX_DIM: a pairs plot, histograms on the diagonal and scatter plots of every pair
  of dimensions below it, data over model samples;
- larger D: one histogram per dimension for the first HIST_MAX_DIMS dimensions.

>>> plot_vector_samples(samples, test_x, "samples.png", title="made on csv:points.csv")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.viz.figures import plt, save_figure

PAIRS_MAX_DIM = 6  # a pairs plot up to 6 x 6 panels; beyond, one histogram per dimension
HIST_MAX_DIMS = 16  # histograms of the first 16 dimensions of larger data
BINS = 40  # most histogram bins of continuous values (fewer for small data: 2 sqrt(N), at least 10)
DATA_STYLE = {"color": "0.35", "label": "data (test split)"}
MODEL_STYLE = {"color": "tab:orange", "label": "model samples"}


def plot_vector_samples(samples: Tensor, data: Tensor, path, title: str = "", discrete: bool = False) -> Path:
    """Save the picture of vector ``samples`` (N, D) over ``data`` (M, D), both in raw units: a
    pairs plot for D <= PAIRS_MAX_DIM, else histograms of the first dimensions (see the module
    docstring). ``discrete`` data gets one histogram bin per integer value. Samples with a
    NaN or infinite value are left out, and the title counts them."""
    samples, data = _as_array(samples), _as_array(data)
    finite = np.isfinite(samples).all(axis=1)
    if not finite.all():
        title += f" ({int((~finite).sum())} non-finite samples not shown)"
    samples = samples[finite]
    dim = data.shape[1]
    if dim <= PAIRS_MAX_DIM:
        fig = _pairs_figure(samples, data, discrete)
    else:
        fig = _histograms_figure(samples, data, discrete, min(dim, HIST_MAX_DIMS))
        if dim > HIST_MAX_DIMS:
            title += f" (first {HIST_MAX_DIMS} of {dim} dimensions)"
    fig.suptitle(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=style["color"]) for style in (DATA_STYLE, MODEL_STYLE)]
    labels = [DATA_STYLE["label"], MODEL_STYLE["label"]]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=2, frameon=False)
    return save_figure(fig, path)  # its tight bounding box takes in the legend below the panels


def _as_array(x) -> np.ndarray:
    """Values as a float64 array (N, D)."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    return x.reshape(x.shape[0], -1).numpy()


def value_range(samples: np.ndarray, data: np.ndarray, discrete: bool) -> tuple[float, float]:
    """The shown range of one dimension: the data's and the central 99 % of the samples' (so
    that samples far from the data show, but not their outliers), widened by 5 % on each side
    (by half a level for discrete data, and to a width of 1 when all values are equal)."""
    low, high = float(data.min()), float(data.max())
    if len(samples):
        q_low, q_high = np.quantile(samples, [0.005, 0.995])
        low, high = min(low, float(q_low)), max(high, float(q_high))
    if discrete:
        return np.floor(low) - 0.5, np.ceil(high) + 0.5
    pad = 0.05 * (high - low) if high > low else 0.5
    return low - pad, high + pad


def bin_edges(samples: np.ndarray, data: np.ndarray, discrete: bool) -> np.ndarray:
    """Histogram edges of one dimension: one bin per integer for discrete data of at most
    2 * BINS values, else 2 sqrt(N) bins for N data values (10 to BINS) over :func:`value_range`."""
    low, high = value_range(samples, data, discrete)
    if discrete and high - low <= 2 * BINS:
        return np.arange(low, high + 1.0)
    bins = int(np.clip(round(2 * np.sqrt(len(data))), 10, BINS))
    return np.linspace(low, high, bins + 1)


def density_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram of ``values`` over ``edges`` normalised to a density over the shown range
    (zeros when no value falls in it)."""
    counts, _ = np.histogram(values, edges)
    return counts / max(int(counts.sum()), 1) / np.diff(edges)


def _histogram(ax, samples: np.ndarray, data: np.ndarray, discrete: bool) -> None:
    """Density histograms of one dimension: model samples outlined over the filled data."""
    edges = bin_edges(samples, data, discrete)
    ax.stairs(density_histogram(data, edges), edges, fill=True, alpha=0.45, color=DATA_STYLE["color"])
    ax.stairs(density_histogram(samples, edges), edges, linewidth=1.4, color=MODEL_STYLE["color"])
    ax.set_xlim(edges[0], edges[-1])
    ax.set_yticks([])


def _scatter(ax, samples: np.ndarray, data: np.ndarray, discrete: bool) -> None:
    """Scatter of two dimensions (columns 0 and 1): the data drawn over the model samples, which
    are usually many more."""
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, linewidths=0, color=MODEL_STYLE["color"])
    ax.scatter(data[:, 0], data[:, 1], s=3, alpha=0.6, linewidths=0, color=DATA_STYLE["color"])
    ax.set_xlim(*value_range(samples[:, 0], data[:, 0], discrete))
    ax.set_ylim(*value_range(samples[:, 1], data[:, 1], discrete))


def _panels(rows: int, cols: int, width: float, height: float, hspace: float, wspace: float):
    """A figure of rows x cols axes with fixed margins in inches: room for the title above and
    the tick labels below (no layout engine: constrained layout triples the drawing time)."""
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(top=1 - 0.6 / height, bottom=0.5 / height, hspace=hspace, wspace=wspace)
    return fig, axes


def _pairs_figure(samples: np.ndarray, data: np.ndarray, discrete: bool):
    """D x D panels: histogram of dimension i at (i, i), scatter of (x_j, x_i) at (i, j < i)."""
    dim = data.shape[1]
    fig, axes = _panels(dim, dim, width=2.0 * dim + 1.0, height=2.0 * dim + 0.8, hspace=0.3, wspace=0.3)
    for i in range(dim):
        for j in range(dim):
            ax = axes[i][j]
            if j > i:
                ax.axis("off")
            elif j == i:
                _histogram(ax, samples[:, i], data[:, i], discrete)
            else:
                _scatter(ax, samples[:, [j, i]], data[:, [j, i]], discrete)
            ax.tick_params(labelsize=7)
        axes[dim - 1][i].set_xlabel(f"x{i}", fontsize=8)
        if i > 0:
            axes[i][0].set_ylabel(f"x{i}", fontsize=8)
    return fig


def _histograms_figure(samples: np.ndarray, data: np.ndarray, discrete: bool, shown: int):
    """One histogram panel for each of the first ``shown`` dimensions, four per row."""
    cols = min(shown, 4)
    rows = -(-shown // cols)
    fig, axes = _panels(rows, cols, width=2.6 * cols + 0.5, height=2.0 * rows + 0.8, hspace=0.45, wspace=0.15)
    for k, ax in enumerate(axes.flat):
        if k >= shown:
            ax.axis("off")
            continue
        _histogram(ax, samples[:, k], data[:, k], discrete)
        ax.set_title(f"x{k}", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig
