"""The density picture: target and model densities on one colour scale, beside model samples."""

from __future__ import annotations

import numpy as np
import pytest

import dgm
from dgm.errors import DataError
from dgm.viz.density import density_grid, plot_density_comparison, plot_density_table
from tests.eval.test_toy2d import AffineGaussianMixture, SampleOnly, affine_of

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gmm8_scaled():
    return dgm.load_dataset("toy2d:gmm8?n=500&n_val=20&n_test=500", transforms=["scale"])


def test_density_grid_covers_the_data_with_cell_centres():
    data = dgm.load_dataset("toy2d:gmm8?n=500&n_val=20&n_test=500").split("test").x.double()
    ex, ey, points = density_grid(data, 10)
    assert points.shape == (100, 2) and len(ex) == len(ey) == 11
    assert ex[0] < data[:, 0].min() and ex[-1] > data[:, 0].max()
    assert float(points[1, 1] - points[0, 1]) == pytest.approx(float(ey[1] - ey[0]))  # "ij": y varies fastest


@pytest.mark.parametrize("log", [False, True])
def test_plot_for_an_exact_model_in_transformed_units(tmp_path, gmm8_scaled, log):
    target = gmm8_scaled.target
    shift, factor = affine_of(gmm8_scaled)
    model = AffineGaussianMixture(target.modes, target.std, shift, factor)
    out = plot_density_comparison(model, gmm8_scaled, tmp_path / "density.png", grid=40, n=300, log=log)
    assert out.read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["density.png"]  # atomic: no temporary left behind


def test_plot_for_a_sample_only_model_and_a_target_without_density(tmp_path):
    moons = dgm.load_dataset("toy2d:moons?n=500&n_val=20&n_test=500")
    samples = np.random.default_rng(0).normal(size=(200, 2))
    out = plot_density_comparison(
        SampleOnly([[0.0, 0.0]], 1.0), moons, tmp_path / "moons.png", samples=samples, grid=30
    )
    assert out.read_bytes()[:8] == PNG


def test_plot_refuses_data_that_is_not_2d(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    with pytest.raises(DataError, match="2-D data"):
        plot_density_comparison(
            SampleOnly([[0.0, 0.0]], 1.0), dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}"), tmp_path / "x.png"
        )


def test_density_table_has_a_row_per_target_and_refuses_other_data(tmp_path, gmm8_scaled):
    target = gmm8_scaled.target
    exact = AffineGaussianMixture(target.modes, target.std, *affine_of(gmm8_scaled))
    rings = dgm.load_dataset("toy2d:rings?n=200&n_val=20&n_test=200")
    out = plot_density_table(
        [(gmm8_scaled, [("exact", exact), ("again", exact)]), (rings, [])], tmp_path / "t.png", grid=20
    )
    assert out.read_bytes()[:8] == PNG
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 3), np.float32))
    with pytest.raises(DataError, match="2-D data"):
        plot_density_table([(dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}"), [])], tmp_path / "x.png")
