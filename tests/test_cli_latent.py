"""The latent-space commands on a real (tiny) VAE run: pictures land in the run directory or at
--out, and every bad input is a one-line error that writes nothing."""

from __future__ import annotations

import pytest

import dgm
from dgm.registry import config_dict
from dgm.runs import RunRecord, save_weights, write_record
from tests.conftest import assert_one_line_error, invoke, run_cli

PNG = b"\x89PNG\r\n\x1a\n"
COMMANDS = ("latent-map", "interpolate", "attribute", "reconstruct")


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A VAE with a 2-d latent trained for 20 steps on digits (about 10 s)."""
    run = tmp_path_factory.mktemp("latent") / "vae"
    run_cli(
        "train", "vae", "--data", "digits", "--steps", "20", "--batch-size", "32", "--accelerator", "cpu",
        "--set", "latent_dim=2", "--set", "hidden=32", "--out", str(run),
    )  # fmt: skip
    return run


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """An untrained MADE saved as a run: a model without a latent space."""
    run = tmp_path_factory.mktemp("latent") / "made"
    run.mkdir()
    ds = dgm.load_dataset("digits", transforms=["binarize"])
    model = dgm.build("made", data=ds, hidden=(16,))
    write_record(run, RunRecord("made", config_dict(model), {"spec": "digits", "transforms": ["binarize"]}))
    save_weights(run, model)
    return run


def pictures(run) -> set[str]:
    return {p.name for p in run.iterdir() if p.suffix == ".png"} - {"samples.png"}


def written(result, path) -> None:
    """The command succeeded, printed ``path`` and wrote a PNG there."""
    assert result.exit_code == 0, result.output
    assert str(path) in result.stdout
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000


@pytest.mark.parametrize("command", COMMANDS)
def test_every_latent_command_has_help_with_an_example(command):
    result = invoke([command, "--help"])
    assert result.exit_code == 0 and "Example: dgm " + command in result.stdout
    assert "--seed" in result.stdout and "--out" in result.stdout


def test_latent_map_writes_into_the_run_by_default(vae_run):
    written(invoke(["latent-map", str(vae_run), "-n", "200"]), vae_run / "latent_map.png")


def test_interpolate_attribute_and_reconstruct(vae_run, tmp_path):
    run, out = str(vae_run), tmp_path / "attr.png"
    written(invoke(["interpolate", run, *"--from 0 --to 7 --steps 5".split()]), vae_run / "interpolation_0_7.png")
    written(invoke(["attribute", run, *"--from 3 --to 8 --alpha -1,0,1 --examples 2 --out".split(), str(out)]), out)
    written(invoke(["reconstruct", run, "-n", "6"]), vae_run / "reconstructions.png")
    result = invoke(["reconstruct", run, *"-n 6 --noise masking --level 0.5".split()])
    written(result, vae_run / "denoising.png")
    assert "denoising" in result.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["interpolate", "RUN", "--from", "0", "--to", "447"], "example 447 is not in the test split of 'digits' (447 examples); use 0..446"),
        (["interpolate", "RUN", "--from", "0", "--to", "4", "--steps", "1"], "--steps must be at least 2, got 1"),
        (["attribute", "RUN", "--from", "3", "--to", "12"], "has label 12; labels present: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
        (["attribute", "RUN", "--from", "3", "--to", "8", "--alpha", "1,two"], "--alpha must be comma-separated"),
        (["latent-map", "RUN", "--out", "RUN"], "is a folder; give a file name such as"),
        (["latent-map", "RUN", "--label", "3"], "--label is for conditional models"),
        (["reconstruct", "RUN", "--noise", "salt"], "--noise must be gaussian, masking, flip or none"),
        (["reconstruct", "RUN", "--noise", "flip"], "flip noise is for binary data"),
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error_that_writes_nothing(vae_run, args, needle):
    before = pictures(vae_run)
    assert_one_line_error(invoke([str(vae_run) if a == "RUN" else a for a in args]), needle)
    assert pictures(vae_run) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_model_without_latent_space_is_refused(made_run, command):
    extra = {"interpolate": ["--from", "0", "--to", "1"], "attribute": ["--from", "0", "--to", "1"]}
    result = invoke([command, str(made_run), *extra.get(command, [])])
    assert_one_line_error(result, "model 'made' has no latent space (has_latent is False); latent tools need ae")
    assert not pictures(made_run)
