"""Pictures of a latent space: the map of the codes (with the decoded grid of a 2-d latent),
interpolation strips, attribute strips, reconstructions and denoising triples.

The inputs come from :mod:`dgm.apps.latent` in model space; images are shown through
``dataset.to_display``. The latent map works for any data (it only scatters codes); the strips
show decoded images, so they need image data and raise a DataError for vectors
(:func:`require_images`), which have no picture to put in a strip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.apps.latent import AttributeRows, Denoising, Grid, Interpolation, Projection, grid_extent
from dgm.errors import DataError
from dgm.viz.figures import image_grid, plt, save_figure
from dgm.viz.samples import channels_as_images

MAX_LEGEND_CLASSES = 20  # more labels than this get a colour bar instead of a legend
PAD = 1  # pixels between images


def require_images(dataset, what: str) -> None:
    """A DataError unless ``dataset`` holds images: strips of decoded vectors show nothing."""
    if not dataset.info.is_image:
        raise DataError(
            f"{what} shows decoded images and needs image data; '{dataset.spec}' has vectors of shape "
            f"{tuple(dataset.info.shape)} (the latent map works for vectors: dgm latent-map)"
        )


def shown(dataset, x: Tensor) -> Tensor:
    """Model-space images (N, *shape) as displayable (N, C', H, W') in [0, 1]."""
    return channels_as_images(dataset.to_display(x))


def label_name(dataset, label: int) -> str:
    """The class name of ``label`` when the data names its classes and it is not the number."""
    names = dataset.class_names
    if 0 <= label < len(names) and names[label] != str(label):
        return f"{label} ({names[label]})"
    return str(label)


# ----- strips of images ------------------------------------------------------------------------


def _blocks(rows: list[tuple[str, Tensor]], wrap: int) -> list[list[tuple[str, Tensor]]]:
    """Rows of more than ``wrap`` images cut into blocks of ``wrap`` columns; a short final
    block is padded with blank (white) images."""
    m = rows[0][1].shape[0]
    if m <= wrap:
        return [rows]
    blank = torch.ones_like(rows[0][1][:1])
    blocks = []
    for start in range(0, m, wrap):
        block = []
        for name, images in rows:
            part = images[start : start + wrap]
            block.append((name, torch.cat([part, blank.expand(wrap - part.shape[0], *blank.shape[1:])])))
        blocks.append(block)
    return blocks


def plot_image_rows(
    rows: Sequence[tuple[str, Tensor]],
    path,
    title: str = "",
    col_labels: Sequence[str] | None = None,
    wrap: int = 16,
) -> Path:
    """Save rows of images as one picture: ``rows`` are (label, images (M, C, H, W) in [0, 1])
    with the same M, labelled on the left; ``col_labels`` (M,) go above the columns. Rows longer
    than ``wrap`` are cut into blocks of ``wrap`` columns (without column labels), stacked with a
    gap of half an image between them."""
    rows = list(rows)
    m = rows[0][1].shape[0]
    if any(images.shape != rows[0][1].shape for _, images in rows):
        raise ValueError("every row must hold images of the same shape and number")
    blocks = _blocks(rows, wrap)
    if len(blocks) > 1:
        col_labels, m = None, wrap
    h, w = rows[0][1].shape[-2:]
    tiles, centres, names, top = [], [], [], 0
    for b, block in enumerate(blocks):
        if b:
            gap = image_grid(torch.ones_like(block[0][1][:m]), nrow=m, pad=PAD)[: h // 2]  # white
            tiles.append(gap)
            top += gap.shape[0]
        tiles.append(image_grid(torch.cat([images for _, images in block]), nrow=m, pad=PAD))
        centres += [top + PAD + i * (h + PAD) + h / 2 - 0.5 for i in range(len(block))]
        names += [name for name, _ in block]
        top += tiles[-1].shape[0]
    grid = np.concatenate(tiles, axis=0)
    inch = (0.55 if h <= 16 else 0.8) / (h + PAD)  # inches per pixel: 8x8 digits get 0.55-inch cells
    fig, ax = plt.subplots(figsize=(grid.shape[1] * inch, grid.shape[0] * inch))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(centres, names)
    if col_labels is not None:
        ax.set_xticks([PAD + j * (w + PAD) + w / 2 - 0.5 for j in range(m)], list(col_labels))
        ax.xaxis.tick_top()
    else:
        ax.set_xticks([])
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9, pad=18 if col_labels is not None else 6)
    return save_figure(fig, path)


def plot_interpolation(path: Interpolation, dataset, out, i: int, j: int, title: str = "") -> Path:
    """Two rows, linear and spherical interpolation, between example ``i`` (first column) and
    example ``j`` (last column), decoded at each t in between; for a model without an encoder
    (``path.seeds``) the outer columns are the decoded latents of seeds ``i`` and ``j``."""
    require_images(dataset, "an interpolation strip")
    ends = shown(dataset, torch.stack([path.x_from, path.x_to]))
    rows = []
    for name, decoded in (("linear", path.linear), ("spherical", path.spherical)):
        rows.append((name, torch.cat([ends[:1], shown(dataset, decoded), ends[1:]])))
    mark = "seed " if path.seeds else "#"
    cols = [f"{mark}{i}", *(f"{t:.2g}" for t in path.alphas.tolist()), f"{mark}{j}"]
    if not title:
        title = (
            f"interpolation between the latents of seeds {i} and {j}"
            if path.seeds
            else f"interpolation between test examples {i} and {j}"
        )
    return plot_image_rows(rows, out, title, cols)


def plot_attribute(moved: AttributeRows, dataset, out, a: int, b: int, title: str = "") -> Path:
    """A row per example: the example, then its code moved by alpha times the a -> b attribute
    vector and decoded, one column per alpha. For generated examples (``moved.counts``, a model
    without an encoder) the first column is the sample and the title gives the class counts."""
    require_images(dataset, "an attribute strip")
    e, n_alpha = moved.rows.shape[:2]
    originals = shown(dataset, moved.x)
    decoded = shown(dataset, moved.rows.reshape(e * n_alpha, *moved.rows.shape[2:]))
    decoded = decoded.reshape(e, n_alpha, *decoded.shape[1:])
    rows = [(f"#{int(k)}", torch.cat([originals[r : r + 1], decoded[r]])) for r, k in enumerate(moved.index)]
    cols = ["sample" if moved.counts else "data", *(f"α={t:g}" for t in moved.alphas.tolist())]
    if not title and moved.counts:
        n_a, n_b = moved.counts
        title = (
            f"z + α v, v = mean z of samples classified {b} − of {a} ({n_b} and {n_a} samples); "
            f"|v| = {moved.norm:.2g} (latents' spread {moved.spread:.2g})"
        )
    elif not title:
        title = (
            f"z + α v, v = mean code of {label_name(dataset, b)} − of {label_name(dataset, a)}; "
            f"|v| = {moved.norm:.2g} (codes' spread {moved.spread:.2g})"
        )
    return plot_image_rows(rows, out, title, cols, wrap=max(16, n_alpha + 1))


def plot_reconstructions(x: Tensor, x_hat: Tensor, dataset, out, title: str = "") -> Path:
    """Two rows: examples and their reconstructions."""
    require_images(dataset, "a reconstruction strip")
    rows = [("data", shown(dataset, x)), ("reconstruction", shown(dataset, x_hat))]
    return plot_image_rows(rows, out, title or "reconstructions: decode(mean of q(z | x))")


def plot_denoising(triples: Denoising, dataset, out, title: str = "") -> Path:
    """Three rows: examples, their corrupted copies and the model's output from the corrupted."""
    require_images(dataset, "a denoising strip")
    if triples.kind != "gaussian":
        noise = f"{triples.kind} p={triples.level:g}"
    elif dataset.info.support == "continuous":
        noise = f"gaussian σ={triples.level:g}"
    else:
        noise = f"gaussian σ={triples.level:g} x range"
    rows = [
        ("data", shown(dataset, triples.x)),
        (f"corrupted\n({noise})", shown(dataset, triples.corrupted)),
        ("output", shown(dataset, triples.output)),
    ]
    return plot_image_rows(rows, out, title or "denoising: reconstruct(corrupt(x))")


# ----- the latent map --------------------------------------------------------------------------


def _colour_codes(ax, fig, points: np.ndarray, labels: np.ndarray | None, dataset) -> None:
    """Scatter (N, 2) points coloured by label: a legend for a few classes, a colour bar else."""
    size = 6 if len(points) > 1000 else 12
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7, color="tab:blue", linewidths=0)
        return
    classes = np.unique(labels)
    if len(classes) > MAX_LEGEND_CLASSES:
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, s=size, cmap="viridis", alpha=0.8, linewidths=0)
        fig.colorbar(sc, ax=ax, label="label", fraction=0.046, pad=0.02)
        return
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k, label in enumerate(classes):
        mine, name = points[labels == label], label_name(dataset, int(label))
        ax.scatter(mine[:, 0], mine[:, 1], s=size, alpha=0.8, color=cmap(k), linewidths=0, label=name)
    ax.legend(
        title="label", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title_fontsize=8,
        markerscale=2, frameon=False, handletextpad=0.2,
    )  # fmt: skip


def _histograms(ax, values: np.ndarray, labels: np.ndarray | None, dataset) -> None:
    """A 1-d latent: a histogram of the codes per label."""
    edges = np.histogram_bin_edges(values, bins=40)
    groups = [(None, values)] if labels is None else [(int(c), values[labels == c]) for c in np.unique(labels)]
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    for k, (label, group) in enumerate(groups):
        name = None if label is None else label_name(dataset, label)
        ax.hist(group, bins=edges, histtype="step", color=cmap(k % cmap.N), label=name)
    if labels is not None:
        ax.legend(title="label", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_ylabel("examples")


def _grid_panel(ax, grid: Grid, dataset, n: int) -> None:
    """The decoded grid as one image, axes labelled with the latent values of a few columns."""
    images = shown(dataset, grid.x)
    h, w = images.shape[-2:]
    tiles = image_grid(images, nrow=n, pad=PAD)
    ax.imshow(tiles, cmap="gray" if tiles.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ticks = sorted({0, n // 2, n - 1}) if n % 2 else [0, n - 1]  # the middle column when there is one
    centre = [PAD + j * (w + PAD) + w / 2 - 0.5 for j in ticks]
    ax.set_xticks(centre, [f"{float(grid.coords[j, 0]):.2g}" for j in ticks])
    ax.set_yticks(centre if h == w else [PAD + j * (h + PAD) + h / 2 - 0.5 for j in ticks],
                  [f"{float(grid.coords[n - 1 - j, 1]):.2g}" for j in ticks])  # fmt: skip
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.tick_params(labelsize=7, length=2)
    low, high = 50 * (1 - grid.span), 50 * (1 + grid.span)
    where = "quantiles of the prior N(0, 1)" if grid.prior else "quantiles of the codes"
    ax.set_title(f"decoded {n}x{n} grid at {low:.3g}%-{high:.3g}% {where}", fontsize=9)


def plot_latent_map(
    projection: Projection,
    labels: Tensor | None,
    dataset,
    out,
    k: int,
    title: str = "",
    grid: Grid | None = None,
) -> Path:
    """The codes of a split, coloured by label, and beside them the decoded ``grid`` (a 2-d
    latent of image data). ``k`` is the latent dimension; the scatter's title says what it
    shows ('2-d latent', 'PCA of 16-d latent, 63% of variance'), a dashed box marks the grid."""
    points = projection.points.detach().cpu().numpy()
    y = None if labels is None else labels.cpu().numpy()
    panels = 2 if grid is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 4.8), squeeze=False, layout="constrained")
    ax = axes[0, 0]
    if points.shape[1] == 1:
        _histograms(ax, points[:, 0], y, dataset)
        ax.set_xlabel("$z_1$")
    else:
        _colour_codes(ax, fig, points, y, dataset)
        pca = projection.components is not None
        ax.set_xlabel("PC 1" if pca else "$z_1$")
        ax.set_ylabel("PC 2" if pca else "$z_2$")
        if grid is not None and not pca:
            x0, x1, y0, y1 = grid_extent(grid.coords)
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8, color="0.3"))
    ax.set_title(f"{projection.describe(k)}, {len(points)} codes", fontsize=9)
    ax.tick_params(labelsize=7)
    if grid is not None:
        _grid_panel(axes[0, 1], grid, dataset, grid.coords.shape[0])
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out)
