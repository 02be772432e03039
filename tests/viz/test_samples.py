"""The samples picture of a run exists for every kind of valid data: vectors of any dimension,
2-D points and images of any channel count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import dgm
from dgm.viz import vectors
from dgm.viz.samples import channels_as_images, save_samples_figure

PNG = b"\x89PNG\r\n\x1a\n"


def _vectors(dim: int, n: int = 60) -> np.ndarray:
    """Correlated, shifted continuous vectors (n, dim)."""
    rng = np.random.default_rng(dim)
    z = rng.normal(size=(n, dim))
    return 3.0 + z @ rng.normal(size=(dim, dim)) * 0.5


def _csv_dataset(tmp_path, dim: int):
    x = _vectors(dim)
    header = ",".join(f"c{j}" for j in range(dim))
    rows = "\n".join(",".join(f"{v:.5f}" for v in row) for row in x)
    (tmp_path / "d.csv").write_text(f"{header}\n{rows}\n")
    return dgm.load_dataset(f"csv:{tmp_path / 'd.csv'}")


def _npz_dataset(tmp_path, x: np.ndarray):
    np.savez(tmp_path / "d.npz", x=x)
    return dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}")


def _picture(tmp_path, ds, n: int = 300) -> Image.Image:
    """The samples picture of the independent model on ``ds``, checked to be a real PNG."""
    model = dgm.build("independent", data=ds)
    out = save_samples_figure(model, ds, tmp_path / "samples.png", n=n)
    data = out.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000  # more than an empty canvas
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".samples.png")]  # written atomically
    return Image.open(out)


@pytest.mark.parametrize(("kind", "dim"), [("npz", 1), ("csv", 1), ("csv", 3), ("npz", 3), ("csv", 12), ("npz", 12)])
def test_vector_data_of_any_dimension_gets_a_picture(tmp_path, kind, dim):
    ds = _csv_dataset(tmp_path, dim) if kind == "csv" else _npz_dataset(tmp_path, _vectors(dim).astype(np.float32))
    assert ds.info.shape == (dim,)
    image = _picture(tmp_path, ds)
    assert min(image.size) > 200


def test_discrete_vectors_and_non_finite_samples_get_a_picture(tmp_path):
    ds = _npz_dataset(tmp_path, np.random.default_rng(0).integers(0, 5, (50, 3)))
    assert ds.info.support == "discrete"
    _picture(tmp_path, ds)
    samples = torch.randn(100, 3)
    samples[:7, 1] = float("nan")
    samples[7, 0] = float("inf")
    out = vectors.plot_vector_samples(samples, ds.split("test").x, tmp_path / "v.png", discrete=True)
    assert out.read_bytes()[:8] == PNG


def _panels(monkeypatch, samples, data) -> tuple[list[str], str]:
    """Titles of the visible panels and the figure title of plot_vector_samples' figure."""
    seen = {}

    def keep(fig, path):
        seen["fig"] = fig
        return path

    monkeypatch.setattr(vectors, "save_figure", keep)
    vectors.plot_vector_samples(samples, data, "unused.png", title="t")
    fig = seen["fig"]
    shown = [ax for ax in fig.axes if ax.axison]
    titles, suptitle = [ax.get_title() or ax.get_xlabel() for ax in shown], fig._suptitle.get_text()
    vectors.plt.close(fig)
    return titles, suptitle


@pytest.mark.parametrize(("dim", "panels"), [(1, 1), (3, 6), (6, 21), (7, 7), (12, 12), (20, 16)])
def test_pairs_plot_up_to_six_dimensions_then_histograms_of_the_first(monkeypatch, dim, panels):
    x = torch.randn(50, dim)
    titles, suptitle = _panels(monkeypatch, x, x + 1.0)
    assert len(titles) == panels  # D(D+1)/2 panels of a pairs plot, else one per dimension shown
    if dim > vectors.PAIRS_MAX_DIM:
        assert titles[:3] == ["x0", "x1", "x2"]
    assert ("first 16 of 20 dimensions" in suptitle) == (dim == 20)


def test_bin_edges_give_one_bin_per_level_of_discrete_data_and_show_stray_samples():
    data = np.array([0.0, 2.0, 4.0])
    assert np.allclose(vectors.bin_edges(np.array([1.0]), data, discrete=True), np.arange(-0.5, 5.0))
    assert vectors.bin_edges(np.array([7.0]), data, discrete=True)[-1] == 7.5  # samples beyond the data show
    edges = vectors.bin_edges(np.array([]), np.array([1.0, 1.0]), discrete=False)  # constant data: a unit range
    assert len(edges) == 11 and edges[0] < 1.0 < edges[-1]  # at least 10 bins
    outliers = np.concatenate([np.zeros(999), [1e9]])  # one wild sample does not stretch the range
    assert vectors.bin_edges(outliers, np.array([0.0, 1.0]), discrete=False)[-1] < 2.0


def test_images_with_two_channels_are_shown_side_by_side(tmp_path):
    images = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32).reshape(2, 2, 3, 4)
    wide = channels_as_images(images)
    assert wide.shape == (2, 1, 3, 8)
    assert torch.equal(wide[1, 0, :, 4:], images[1, 1]) and torch.equal(wide[1, 0, :, :4], images[1, 0])
    assert channels_as_images(images[:, :1]) is not None and channels_as_images(images[:, :1]).shape == (2, 1, 3, 4)
    ds = _npz_dataset(tmp_path, np.random.default_rng(0).integers(0, 2, (30, 2, 5, 5)))
    assert ds.info.shape == (2, 5, 5)
    out = save_samples_figure(dgm.build("independent", data=ds), ds, tmp_path / "s.png", n=16)
    assert out.read_bytes()[:8] == PNG
