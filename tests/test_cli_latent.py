"""The latent-space commands on a real (tiny) VAE run and on untrained GAN runs: pictures land in
the run directory or at --out, and every bad input is a one-line error that writes nothing."""

from __future__ import annotations

import pytest

import dgm
from dgm.registry import config_dict
from dgm.runs import RunRecord, save_weights, write_record
from tests.apps.test_latent import tiny_gan
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


def saved_gan(run, name: str):
    """A :func:`tiny_gan` on digits saved as the run ``run``."""
    run.mkdir()
    model = tiny_gan(dgm.load_dataset("digits"), name)
    write_record(run, RunRecord(name, config_dict(model), {"spec": "digits", "transforms": []}))
    save_weights(run, model)
    return run


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """An untrained dcgan and cgan (4 feature maps, scaled generator weights) saved as runs."""
    root = tmp_path_factory.mktemp("gan")
    return {name: saved_gan(root / name, name) for name in ("dcgan", "cgan")}


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


def test_the_help_says_what_the_gan_versions_take():
    interpolate = " ".join(invoke(["interpolate", "--help"]).stdout.split())
    assert "for a GAN, the seed of the first latent" in interpolate and "--label L" in interpolate
    attribute = " ".join(invoke(["attribute", "--help"]).stdout.split())
    assert "For a GAN (no encoder): latents drawn, decoded and classified" in attribute


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
    assert_one_line_error(result, "model 'made' has no latent space (has_latent is False); latent tools need ")
    assert ", vae" in result.stderr and "dcgan" in result.stderr
    assert not pictures(made_run)


def test_gan_interpolation_between_seeds_and_attribute_from_classified_samples(gan_runs):
    dcgan, cgan = gan_runs["dcgan"], gan_runs["cgan"]
    written(
        invoke(["interpolate", str(dcgan), *"--from 3 --to 17 --steps 5".split()]), dcgan / "interpolation_3_17.png"
    )
    result = invoke(["attribute", str(dcgan), *"--from 4 --to 9 --alpha=-1,0,1 --examples 2 --samples 1000".split()])
    written(result, dcgan / "attribute_4_9.png")
    written(
        invoke(["interpolate", str(cgan), *"--from 0 --to 1 --steps 4 --label 7".split()]),
        cgan / "interpolation_0_1_label_7.png",
    )


@pytest.mark.parametrize(
    "run, args, needle",
    [
        ("dcgan", ["interpolate", "--from", "-1", "--to", "3"], "--from must be an integer in 0..4294967295 (the seed of a latent"),
        ("dcgan", ["interpolate", "--from", "0", "--to", "3", "--label", "2"], "'dcgan' was trained without conditional=true: drop --label"),
        ("cgan", ["interpolate", "--from", "0", "--to", "3"], "'cgan' has no encoder, so nothing gives its images a label: choose the class they are decoded with, --label L with L in 0..9"),
        ("cgan", ["interpolate", "--from", "0", "--to", "3", "--label", "10"], "label 10 is not a class of this cgan's data: use 0..9"),
        ("dcgan", ["attribute", "--from", "4", "--to", "1", "--samples", "1000"], "of 1000 generated samples to class 4 and 0 to class 1; an attribute vector needs at least 10 of each"),
        ("dcgan", ["attribute", "--from", "4", "--to", "9", "--samples", "0"], "--samples must be at least 1, got 0"),
        ("cgan", ["attribute", "--from", "4", "--to", "9"], "'cgan' takes its class from the label, not from z"),
        ("dcgan", ["latent-map"], "dgm latent-map (a map of the codes of data) needs an encoder, and model 'dcgan' has none (has_encoder is False): it maps latents to data, not data to latents; for this model use dgm interpolate, dgm attribute or dgm sample"),
        ("dcgan", ["reconstruct"], "dgm reconstruct needs an encoder, and model 'dcgan' has none"),
        ("dcgan", ["reconstruct", "--noise", "masking"], "for this model use dgm interpolate, dgm attribute or dgm sample"),
    ],
)  # fmt: skip
def test_gan_errors_are_one_line_and_name_the_fix(gan_runs, run, args, needle):
    before = pictures(gan_runs[run])
    assert_one_line_error(invoke([args[0], str(gan_runs[run]), *args[1:]]), needle)
    assert pictures(gan_runs[run]) == before


def test_options_of_one_kind_of_model_are_refused_for_the_other(vae_run):
    result = invoke(["attribute", str(vae_run), *"--from 3 --to 8 --samples 100".split()])
    assert_one_line_error(result, "a number of samples is for models without an encoder (a GAN)")
    assert_one_line_error(invoke(["interpolate", str(vae_run), *"--from 0 --to 1 --label 3".split()]), "drop --label")
