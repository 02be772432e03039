"""``dgm inpaint`` and ``dgm plot`` on saved (untrained, randomly perturbed) ddpm runs: pictures in
the run by default, and a one-line error with exit code 2 for every bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import dgm
from dgm.registry import config_dict
from dgm.runs import RunRecord, save_weights, write_record
from tests.conftest import assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"
TINY_IMAGE = {"steps": 20, "channels": 8, "mults": (1, 2), "heads": 1, "sample_steps": 5}

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: a second thread costs more than it saves


def save_run(run, name: str, spec: str, transforms: list[str], **config):
    """A run directory of an untrained ``name`` model whose weights are randomly perturbed."""
    run.mkdir()
    ds = dgm.load_dataset(spec, transforms=transforms)
    model = dgm.build(name, data=ds, **config)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    write_record(run, RunRecord(name, config_dict(model), {"spec": spec, "transforms": transforms}))
    save_weights(run, model)
    return run


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return save_run(tmp_path_factory.mktemp("diffusion") / "ddpm", "ddpm", "digits", [], **TINY_IMAGE)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    return save_run(root / "ddpm-cond", "ddpm", "digits", [], conditional=True, **TINY_IMAGE)


@pytest.fixture(scope="module")
def points_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    return save_run(root / "toy", "ddpm", "toy2d:gmm8", ["scale"], steps=20, hidden=16, layers=1, time_dim=8)


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    return save_run(root / "made", "made", "digits", ["binarize"], hidden=(8,))


def test_ddpm_is_registered():
    assert "ddpm" in [row["name"] for row in dgm.list_models()]


def test_inpaint_writes_the_picture_into_the_run(image_run):
    result = invoke(["inpaint", str(image_run), "-n", "2", "--examples", "3", "--resample", "2"])
    assert result.exit_code == 0, result.output
    path = image_run / "inpaint-center.png"
    assert str(path) in result.stdout and path.read_bytes()[:8] == PNG


def test_inpaint_with_a_random_or_drawn_mask(image_run, tmp_path):
    from PIL import Image

    result = invoke(["inpaint", str(image_run), "--mask", "random", "--examples", "1", "-n", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (image_run / "inpaint-random.png").read_bytes()[:8] == PNG
    pixels = np.zeros((8, 8), dtype=np.uint8)
    pixels[:, 5:] = 255
    Image.fromarray(pixels).save(tmp_path / "right.png")
    out = tmp_path / "drawn.svg"
    args = ["--mask", str(tmp_path / "right.png"), "--examples", "2", "-n", "1", "--steps", "3", "--out", str(out)]
    result = invoke(["inpaint", str(image_run), *args])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<?xml")


def test_a_conditional_run_inpaints_and_samples_with_labels(labelled_run, tmp_path):
    out = tmp_path / "cond.png"
    args = ["--examples", "2", "-n", "1", "--resample", "1", "--guidance", "2", "--out", str(out)]
    result = invoke(["inpaint", str(labelled_run), *args])
    assert result.exit_code == 0, result.output
    result = invoke(["inpaint", str(labelled_run), "--cond", "3", "--examples", "1", "-n", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert_one_line_error(invoke(["inpaint", str(labelled_run), "--cond", "10"]), "0..9")
    args = ["--what", "trajectory", "--guidance", "2", "-n", "2", "--steps", "3", "--out", str(tmp_path / "t.png")]
    result = invoke(["plot", str(labelled_run), *args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mask", "middle"], "--mask must be center, left-half, random or a picture file"),
        (["-n", "0"], "-n must be at least 1"),
        (["--examples", "0"], "--examples must be at least 1"),
        (["--steps", "21"], "--steps must be an integer in 1..20"),
        (["--resample", "0"], "--resample must be at least 1"),
        (["--guidance", "2"], "conditional=true"),
        (["--cond", "1"], "not conditional"),
        (["--out", "x.txt"], "--out must end in .png"),
        (["--split", "nope"], "unknown split"),
        (["--seed", "-1"], "--seed must be"),
    ],
)
def test_bad_inpaint_options_are_one_line_errors(image_run, args, needle):
    before = set(image_run.iterdir())
    assert_one_line_error(invoke(["inpaint", str(image_run), *args]), needle)
    assert set(image_run.iterdir()) == before


def test_a_mask_picture_of_the_wrong_size_is_refused(image_run, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((28, 28), 255, dtype=np.uint8)).save(tmp_path / "big.png")
    assert_one_line_error(
        invoke(["inpaint", str(image_run), "--mask", str(tmp_path / "big.png")]),
        "28x28 pixels; this run's images are 8x8",
    )
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "none.png")
    assert_one_line_error(invoke(["inpaint", str(image_run), "--mask", str(tmp_path / "none.png")]), "hides no pixel")


def test_runs_that_cannot_inpaint_or_be_plotted_name_ddpm(other_run, points_run):
    assert_one_line_error(invoke(["inpaint", str(other_run)]), "inpainting needs a diffusion model (ddpm")
    assert_one_line_error(invoke(["plot", str(other_run), "--what", "forward"]), "diffusion models only (ddpm")
    assert_one_line_error(invoke(["inpaint", str(points_run)]), "inpainting fills in a region of images")


@pytest.mark.parametrize("what", ["forward", "trajectory"])
def test_plot_writes_the_picture_into_the_run(image_run, what):
    result = invoke(["plot", str(image_run), "--what", what, "-n", "2"])
    assert result.exit_code == 0, result.output
    path = image_run / f"{what}.png"
    assert str(path) in result.stdout and path.read_bytes()[:8] == PNG


def test_plot_options_and_point_clouds(image_run, points_run, tmp_path):
    args = [
        "--what",
        "trajectory",
        "--sampler",
        "ddpm",
        "--steps",
        "4",
        "--t",
        "0,19",
        "--out",
        str(tmp_path / "t.png"),
    ]
    result = invoke(["plot", str(image_run), *args])
    assert result.exit_code == 0, result.output
    for what in ("forward", "trajectory"):
        result = invoke(["plot", str(points_run), "--what", what, "-n", "100", "--t", "0,5,19"])
        assert result.exit_code == 0, result.output
        assert (points_run / f"{what}.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--what", "noise"], "--what must be training, forward or trajectory, got 'noise'"),
        (["--what", "forward", "--t", "0,abc"], "--t must be comma-separated integer timesteps in 0..19"),
        (["--what", "forward", "--t", "20"], "0..19 (this run's T = 20)"),
        (["--what", "forward", "--sampler", "ddim", "--eta", "1"], "--sampler, --eta: sampling options are for"),
        (["--what", "trajectory", "--eta", "0.5", "--sampler", "ddpm"], "--eta is DDIM's"),
        (["--what", "trajectory", "--guidance", "3"], "conditional=true"),
        (["--what", "trajectory", "--sampler", "euler"], "--sampler must be one of ddpm, ddim"),
        (["--what", "trajectory", "--steps", "0"], "--steps must be at least 1"),
        (["--what", "trajectory", "-n", "0"], "-n must be at least 1"),
        (["--what", "forward", "--out", "plot.jpg"], "--out must end in .png"),
    ],
)
def test_bad_plot_options_are_one_line_errors(image_run, args, needle):
    before = set(image_run.iterdir())
    assert_one_line_error(invoke(["plot", str(image_run), *args]), needle)
    assert set(image_run.iterdir()) == before


@pytest.mark.parametrize("name", ["inpaint", "plot"])
def test_help_has_an_example_and_no_type_tags(name):
    result = invoke([name, "--help"])
    assert result.exit_code == 0 and "Example: dgm " + name in result.stdout
    assert not re.search(r"<(str|bool|int|float|path)>", result.stdout), result.stdout
