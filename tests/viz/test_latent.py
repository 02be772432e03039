"""Latent-space pictures are written atomically as real PNGs of a sensible size, for 1-, 2- and
16-d latents, images and vectors; strips refuse vector data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import dgm
from dgm.apps.latent import (
    attribute_rows,
    decoded_grid,
    denoising,
    interpolation,
    latent_projection,
    reconstructions,
    split_codes,
)
from dgm.errors import DataError
from dgm.viz.latent import (
    plot_attribute,
    plot_denoising,
    plot_interpolation,
    plot_latent_map,
    plot_reconstructions,
    require_images,
)
from tests.apps.test_latent import linear_code, tiny_gan

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    return dgm.load_dataset("digits")


def png(path, min_bytes: int = 5_000) -> Image.Image:
    """``path`` checked to be a complete PNG with content and no temporary file beside it."""
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > min_bytes
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")]
    image = Image.open(path)
    image.load()
    return image


@pytest.mark.parametrize("k", [1, 2, 16])
def test_latent_map_of_any_latent_dimension(tmp_path, digits, k):
    model = linear_code(digits, k=k)
    codes = split_codes(model, digits)
    grid = decoded_grid(model, n=6, codes=codes.z) if k == 2 else None
    out = plot_latent_map(latent_projection(codes.z), codes.y, digits, tmp_path / "map.png", k, "title", grid)
    width, height = png(out, 20_000).size
    assert 300 < height < 1000
    assert (1000 < width < 2000) if k == 2 else (400 < width < 1000)  # the grid beside the scatter


def test_latent_map_of_unlabelled_vectors(tmp_path):
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    ds = dgm.load_dataset(f"npz:{tmp_path / 'd.npz'}")
    codes = split_codes(linear_code(ds, k=3), ds)
    assert codes.y is None
    png(plot_latent_map(latent_projection(codes.z), None, ds, tmp_path / "map.png", 3))
    with pytest.raises(DataError, match=r"needs image data; 'npz:.*' has vectors of shape \(5,\)"):
        require_images(ds, "an interpolation strip")
    with pytest.raises(DataError, match="needs image data"):
        plot_reconstructions(codes.x, codes.x, ds, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


def test_strips_are_written_with_one_column_per_step(tmp_path, digits):
    model = linear_code(digits, k=4)
    short = png(plot_interpolation(interpolation(model, digits, 0, 9, steps=4), digits, tmp_path / "a.png", 0, 9))
    long = png(plot_interpolation(interpolation(model, digits, 0, 9, steps=10), digits, tmp_path / "b.png", 0, 9))
    assert long.size[0] > short.size[0] + 200 and long.size[1] == pytest.approx(short.size[1], abs=5)
    moved = attribute_rows(model, digits, 1, 7, alphas=[-1, 0, 1, 2], examples=3)
    image = png(plot_attribute(moved, digits, tmp_path / "c.png", 1, 7))
    assert image.size[1] > 200 and image.size[0] > image.size[1]  # 3 rows, 5 columns


def test_reconstructions_wrap_long_rows_and_denoising_has_three_rows(tmp_path, digits):
    model = linear_code(digits, k=4)
    few = png(plot_reconstructions(*reconstructions(model, digits, n=8), digits, tmp_path / "r8.png"))
    many = png(plot_reconstructions(*reconstructions(model, digits, n=40), digits, tmp_path / "r40.png"))
    assert many.size[1] > 2.5 * few.size[1]  # 3 blocks of 16 columns
    assert many.size[0] < 2.5 * few.size[0]
    triples = png(plot_denoising(denoising(model, digits, n=8), digits, tmp_path / "d.png"))
    assert triples.size[1] > 1.3 * few.size[1]


def test_pictures_of_rgb_and_many_channel_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (60, 3, 12, 12))
    np.savez(tmp_path / "rgb.npz", x=x, y=np.arange(60) % 3)
    ds = dgm.load_dataset(f"npz:{tmp_path / 'rgb.npz'}")
    model = linear_code(ds, k=2)
    codes = split_codes(model, ds)
    grid = decoded_grid(model, n=5, codes=codes.z)
    png(plot_latent_map(latent_projection(codes.z), codes.y, ds, tmp_path / "m.png", 2, grid=grid))
    png(plot_reconstructions(*reconstructions(model, ds, n=4), ds, tmp_path / "r.png"))
    assert torch.is_tensor(grid.x)


def test_gan_strips_show_the_seeds_decoded_ends_and_the_classified_samples(tmp_path, digits, monkeypatch):
    import dgm.viz.latent as viz

    gan = tiny_gan(digits)
    path = interpolation(gan, digits, 3, 17, steps=4)
    png(plot_interpolation(path, digits, tmp_path / "i.png", 3, 17))
    moved = attribute_rows(gan, digits, 4, 9, alphas=[0, 1], examples=2, samples=1000)
    png(plot_attribute(moved, digits, tmp_path / "a.png", 4, 9), 3_000)
    drawn = []
    monkeypatch.setattr(viz, "plot_image_rows", lambda rows, out, title, cols, **kw: drawn.append((rows, title, cols)))
    plot_interpolation(path, digits, tmp_path / "j.png", 3, 17)
    rows, title, cols = drawn.pop()
    assert cols[0] == "seed 3" and cols[-1] == "seed 17" and "latents of seeds 3 and 17" in title
    for _, images in rows:  # the outer columns are the decoded ends, as the path's own ends
        assert torch.equal(images[0], images[1]) and torch.equal(images[-1], images[-2])
    plot_attribute(moved, digits, tmp_path / "b.png", 4, 9)
    rows, title, cols = drawn.pop()
    n_a, n_b = moved.counts
    assert cols == ["sample", "α=0", "α=1"] and f"classified 9 − of 4 ({n_b} and {n_a} samples)" in title
    assert all(torch.equal(images[0], images[1]) for _, images in rows)  # alpha = 0 is the sample
