"""Inpainting: the named and drawn masks, refusals of masks and models, completions that keep the
known pixels exactly and fill the hidden ones, and the picture's layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dgm
from dgm.apps.inpaint import hidden_pixels, inpaint, keep_mask, mask_name, pick_examples, require_inpainting
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from tests.models.diffusion.tiny import TINY_IMAGE, perturbed

DIGIT = DataInfo((1, 8, 8), "discrete", 17, num_classes=10)
RGB = DataInfo((3, 4, 6), "discrete", 256)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: a second thread costs more than it saves


def save_png(path, pixels: np.ndarray):
    from PIL import Image

    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_center_hides_the_central_square_in_every_channel():
    keep = keep_mask("center", DIGIT)
    assert keep.shape == (1, 8, 8) and keep.dtype == torch.bool
    assert not keep[:, 2:6, 2:6].any() and int((~keep).sum()) == 16
    rgb = keep_mask("center", RGB)  # a 4 x 6 image: rows 1-2, columns 1-3
    expected = torch.ones(4, 6, dtype=torch.bool)
    expected[1:3, 1:4] = False
    assert torch.equal(rgb, expected.expand(3, 4, 6))


def test_left_half_hides_the_left_columns():
    keep = keep_mask("left-half", RGB)
    assert not keep[..., :3].any() and keep[..., 3:].all()


def test_random_mask_is_seeded_and_hides_about_half():
    info = DataInfo((1, 28, 28), "binary", 2)
    a, b, c = (hidden_pixels("random", info, seed) for seed in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.4 < a.float().mean() < 0.6
    keep = keep_mask("random", info, 1)
    assert torch.equal(keep[0], ~a)


def test_a_picture_mask_hides_its_non_zero_pixels(tmp_path):
    pixels = np.zeros((8, 8))
    pixels[5:, 1:3] = 255
    pixels[0, 7] = 1  # any non-zero value is hidden
    keep = keep_mask(str(save_png(tmp_path / "m.png", pixels)), DIGIT)
    assert torch.equal(keep[0], torch.from_numpy(pixels == 0))
    assert mask_name(str(tmp_path / "m.png")) == "m" and mask_name("left-half") == "left-half"


def test_a_picture_of_another_size_is_refused_naming_both_sizes(tmp_path):
    path = save_png(tmp_path / "big.png", np.full((10, 12), 255))
    with pytest.raises(DataError, match=r"big.png is 12x10 pixels; this run's images are 8x8"):
        keep_mask(str(path), DIGIT)


def test_masks_that_hide_nothing_or_everything_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="center, left-half, random or a picture file"):
        keep_mask("middle", DIGIT)
    with pytest.raises(ConfigError, match="hides no pixel"):
        keep_mask(str(save_png(tmp_path / "black.png", np.zeros((8, 8)))), DIGIT)
    with pytest.raises(ConfigError, match="hides every pixel"):
        keep_mask(str(save_png(tmp_path / "white.png", np.full((8, 8), 255))), DIGIT)
    with pytest.raises(ConfigError, match="hides every pixel"):
        keep_mask("left-half", DataInfo((1, 3, 1), "binary", 2))  # one column: its "half" is all of it
    with pytest.raises(DataError, match="images"):
        keep_mask("center", DataInfo((2,), "continuous"))


def test_a_model_without_inpaint_is_refused_naming_ddpm():
    with pytest.raises(ConfigError, match=r"cannot inpaint; inpainting needs a diffusion model \(.*ddpm"):
        require_inpainting(dgm.build("made", data=DataInfo((1, 4, 4), "binary", 2), hidden=(8,)))


def test_inpainting_keeps_the_known_pixels_and_fills_the_hidden_ones():
    model = perturbed(dgm.build("ddpm", data=DIGIT, conditional=True, **TINY_IMAGE))
    ds = dgm.load_dataset("digits")
    x, labels, index = pick_examples(ds, 3, seed=0)
    assert x.shape == (3, 1, 8, 8) and labels.shape == (3,) and torch.equal(labels, ds.split("test").y[index])
    keep = keep_mask("center", DIGIT)
    # the model itself keeps the known pixels exactly (discrete data: back to the same levels)
    g = torch.Generator().manual_seed(0)
    direct = model.inpaint(x, keep.float(), cond=labels, generator=g, steps=5, resample=2)
    assert torch.equal(direct[:, keep], x[:, keep])
    done = inpaint(model, x, keep, k=4, cond=labels, seed=1, steps=5, resample=2, batch_size=5)
    assert done.samples.shape == (3, 4, 1, 8, 8) and torch.equal(done.x, x) and torch.equal(done.cond, labels)
    kept = done.samples[:, :, keep]  # (3, 4, known pixels)
    assert torch.equal(kept, x[:, keep].unsqueeze(1).expand_as(kept))
    filled = done.samples[:, :, ~keep]  # (3, 4, hidden pixels): K different fillings in the data's levels
    assert not torch.equal(filled[:, 0], filled[:, 1])
    assert torch.equal(filled, filled.round()) and filled.min() >= 0 and filled.max() <= 16
    again = inpaint(model, x, keep, k=4, cond=labels, seed=1, steps=5, resample=2, batch_size=5)
    assert torch.equal(again.samples, done.samples)  # the same seed and batch size give the same completions


def test_inpainting_option_errors():
    model = perturbed(dgm.build("ddpm", data=DIGIT, **TINY_IMAGE))
    x = torch.zeros(2, 1, 8, 8)
    keep = keep_mask("center", DIGIT)
    with pytest.raises(ConfigError, match="-n"):
        inpaint(model, x, keep, k=0)
    with pytest.raises(DataError, match="shape"):
        inpaint(model, torch.zeros(2, 1, 4, 4), keep)
    with pytest.raises(ConfigError, match="steps"):
        inpaint(model, x, keep, k=1, steps=21)


def test_the_picture_has_a_row_per_example_and_the_hidden_pixels_coloured(tmp_path, monkeypatch):
    import dgm.viz.inpainting as viz

    ds = dgm.load_dataset("digits")
    model = perturbed(dgm.build("ddpm", data=DIGIT, **TINY_IMAGE))
    x, _, _ = pick_examples(ds, 2, seed=0)
    keep = keep_mask("left-half", DIGIT)
    done = inpaint(model, x, keep, k=3, steps=3, resample=1)
    seen = {}
    real = viz.plot_image_rows

    def spy(rows, out, title="", col_labels=None, wrap=16):
        seen.update(rows=rows, columns=col_labels)
        return real(rows, out, title=title, col_labels=col_labels, wrap=wrap)

    monkeypatch.setattr(viz, "plot_image_rows", spy)
    out = viz.plot_inpainting(done, ds, tmp_path / "inpaint.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert seen["columns"] == ["data", "masked", "1", "2", "3"]
    assert len(seen["rows"]) == 2 and all(images.shape == (5, 3, 8, 8) for _, images in seen["rows"])
    masked = seen["rows"][0][1][1]  # (3, 8, 8)
    colour = torch.tensor(viz.HIDDEN_COLOUR).view(3, 1)
    assert torch.allclose(masked[:, :, :4].reshape(3, -1), colour.expand(3, 32))
    assert torch.equal(masked[:, :, 4:], seen["rows"][0][1][0][:, :, 4:])  # known pixels as in the data
