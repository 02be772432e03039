"""Pictures of diffusion: timesteps shown, forward frames that are the process's own draws, and a
recorded trajectory that visits the chosen steps in order without changing the samples."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.apps.denoising import (
    default_timesteps,
    forward_frames,
    nearest_visited,
    parse_timesteps,
    require_diffusion,
    require_pictured,
    trajectory,
)
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.diffusion.process import noised
from tests.models.diffusion.tiny import TINY_IMAGE, TINY_VECTOR, perturbed

DIGIT = DataInfo((1, 8, 8), "discrete", 17, num_classes=10)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: a second thread costs more than it saves


@pytest.fixture(scope="module")
def image_model():
    return perturbed(dgm.build("ddpm", data=DIGIT, **TINY_IMAGE))


def test_default_timesteps_scale_with_T():
    assert default_timesteps(1000) == [0, 50, 100, 250, 500, 999]
    assert default_timesteps(20) == [0, 1, 2, 5, 10, 19]
    assert default_timesteps(1) == [0]


def test_timesteps_are_parsed_sorted_and_checked_against_T():
    assert parse_timesteps("10,0,5,5", 20) == [0, 5, 10]
    for bad in ("", "0,x", "20", "-1", "1.5"):
        with pytest.raises(ConfigError, match=r"--t must be comma-separated integer timesteps in 0..19"):
            parse_timesteps(bad, 20)


def test_forward_frames_are_the_data_noised_with_one_draw_per_example(image_model):
    x = torch.randint(0, 17, (3, 1, 8, 8)).float()
    frames = forward_frames(image_model, x, [0, 7, 19], seed=4)
    x0 = x * (2 / 16) - 1
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4))
    assert torch.equal(frames.x, x) and torch.allclose(frames.x0, x0) and torch.equal(frames.noise, eps)
    assert frames.frames.shape == (3, 3, 1, 8, 8) and frames.timesteps == [0, 7, 19]
    for j, t in enumerate([0, 7, 19]):
        expected = noised(x0, eps, image_model.schedule.abar[t])
        assert torch.allclose(frames.frames[:, j], expected, atol=1e-6)
    assert torch.equal(frames.data, image_model.to_data(frames.frames.flatten(0, 1)).view_as(frames.frames))
    # noise grows with t: the last frame is far from the data, the first close to it
    error = (frames.frames - x0.unsqueeze(1)).pow(2).mean((0, 2, 3, 4))
    assert error[0] < 0.01 < error[1] < error[2]
    with pytest.raises(ConfigError, match=r"0..19"):
        forward_frames(image_model, x, [20])


def test_nearest_visited_steps_in_sampling_order():
    visited = [19, 16, 13, 10, 6, 3, 0]
    assert nearest_visited([0, 5, 19], visited) == [19, 6, 0]
    assert nearest_visited([8], visited) == [10]  # a tie goes to the larger step
    assert nearest_visited([1, 2, 3], visited) == [3, 0]


def test_the_trajectory_records_the_chosen_steps_in_order(image_model):
    path = trajectory(image_model, 2, timesteps=[0, 5, 19], sampler="ddim", steps=7, seed=3)
    assert path.visited == [19, 16, 13, 10, 6, 3, 0]
    assert path.timesteps == [19, 6, 0]
    assert path.x_t.shape == path.x0.shape == (2, 3, 1, 8, 8)
    x_T = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(3))
    assert torch.equal(path.x_t[:, 0], x_T)  # the run starts from the seed's x_T
    denoise = image_model.denoiser(None, 1.0)
    for j, t in enumerate(path.timesteps):  # x0 is the model's prediction at the recorded x_t
        assert torch.allclose(path.x0[:, j], denoise(path.x_t[:, j], t)[0], atol=1e-5)
    plain = image_model.sample(2, generator=torch.Generator().manual_seed(3), sampler="ddim", steps=7)
    assert torch.equal(path.samples, plain)  # recording changes nothing
    assert torch.equal(path.x0_data, image_model.to_data(path.x0.flatten(0, 1)).view_as(path.x0))


def test_the_default_trajectory_uses_the_default_timesteps(image_model):
    path = trajectory(image_model, 1, sampler="ddpm")
    assert path.visited == list(range(19, -1, -1))  # sample_steps 50 > T: every step
    assert path.timesteps == [19, 10, 5, 2, 1, 0]


def test_vectors_and_conditional_models(tmp_path):
    from dgm.viz.diffusion import plot_forward, plot_trajectory

    ds = dgm.load_dataset("toy2d:gmm8", transforms=["scale"])
    model = perturbed(dgm.build("ddpm", data=ds, **TINY_VECTOR))
    x, _ = ds.transformed("test")
    frames = forward_frames(model, x[:200], [0, 10, 19])
    path = trajectory(model, 50, timesteps=[19, 0], steps=5)
    assert frames.frames.shape == (200, 3, 2) and path.x_t.shape == (50, 2, 2)
    assert plot_forward(frames, ds, tmp_path / "f.png").is_file()
    assert plot_trajectory(path, ds, tmp_path / "t.svg").read_text().startswith("<?xml")
    labelled = perturbed(dgm.build("ddpm", data=DIGIT, conditional=True, **TINY_IMAGE))
    with pytest.raises(ConfigError, match="needs cond"):
        trajectory(labelled, 2, steps=3)
    assert trajectory(labelled, 2, steps=3, cond=torch.tensor([1, 2])).cond.tolist() == [1, 2]


def test_non_diffusion_models_and_other_data_are_refused():
    with pytest.raises(ConfigError, match=r"'made' is not a diffusion model; .* \(.*ddpm"):
        require_diffusion(dgm.build("made", data=DataInfo((1, 4, 4), "binary", 2), hidden=(8,)))
    with pytest.raises(DataError, match="images or 2-D points"):
        require_pictured(DataInfo((5,), "continuous"))


def test_the_image_pictures_have_a_row_per_example_and_a_column_per_step(image_model, tmp_path, monkeypatch):
    import dgm.viz.diffusion as viz

    ds = dgm.load_dataset("digits")
    seen = []
    real = viz.plot_image_rows

    def spy(rows, out, title="", col_labels=None, wrap=16):
        seen.append((rows, col_labels))
        return real(rows, out, title=title, col_labels=col_labels, wrap=wrap)

    monkeypatch.setattr(viz, "plot_image_rows", spy)
    x, _ = ds.transformed("test")
    viz.plot_forward(forward_frames(image_model, x[:3], [0, 10]), ds, tmp_path / "f.png")
    viz.plot_trajectory(trajectory(image_model, 2, [19, 0], steps=4), ds, tmp_path / "t.png")
    (forward, forward_cols), (band, band_cols) = seen
    assert forward_cols == ["data", "t=0", "t=10"] and [name for name, _ in forward] == ["#0", "#1", "#2"]
    assert all(images.shape == (3, 1, 8, 8) for _, images in forward)
    assert torch.allclose(forward[1][1][0], ds.to_display(x[1:2])[0])  # the first column is the data
    assert band_cols == ["t=19", "t=0"] and [name for name, _ in band] == ["x_t #0", "x_t #1", "", "x̂_0 #0", "x̂_0 #1"]
    assert (tmp_path / "f.png").is_file() and (tmp_path / "t.png").is_file()
