"""Latent-space pictures of a trained autoencoder, VAE or GAN run.

- ``dgm latent-map``: the codes of a split coloured by label (PCA beyond two dimensions), and the
  decoded grid of a 2-d latent.
- ``dgm interpolate``: decoded linear and spherical paths between two examples, or for a GAN
  (no encoder) between the latents of two seeds.
- ``dgm attribute``: examples moved along the mean-code difference of two classes, or for a GAN
  its samples moved along the mean-z difference of the samples the digit classifier puts in each.
- ``dgm reconstruct``: examples and reconstructions; with ``--noise`` (by default for a ``dae``,
  its own noise) the denoising triples input, corrupted, output. One command, as both pictures
  show what the autoencoder returns for an input.

``latent-map`` and ``reconstruct`` need an encoder; for a GAN they say which commands work.

Each writes a picture into the run directory unless ``--out`` names another file, and prints
its path. The logic is in :mod:`dgm.apps.latent`, the pictures in :mod:`dgm.viz.latent`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import PICTURE_SUFFIXES, check_seed, command, fail
from dgm.errors import ConfigError, DgmError

Run = Annotated[Path, typer.Argument(metavar="RUN", help="Run directory of a model with a latent space.")]


def out_option(default: str):
    """The ``--out FILE`` option of a picture written to ``RUN/default`` unless given."""
    return Annotated[
        Path | None, typer.Option(metavar="FILE", help=f"Picture file: .png, .pdf or .svg (default RUN/{default}).")
    ]


Split = Annotated[str, typer.Option(metavar="SPLIT", help="Data split: test, val or train.")]
Seed = Annotated[
    int,
    typer.Option(
        metavar="S", help="Seed of the examples picked (of a GAN's samples), of noise and of stochastic transforms."
    ),
]
Device = Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:N or mps.")]


def picture_path(out: Path | None, run: Path, default: str) -> Path:
    """``out``, or ``run / default``; a ConfigError for a folder or an unknown suffix."""
    path = run / default if out is None else out
    if path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a folder; give a file name such as {path / default}")
    if path.suffix not in PICTURE_SUFFIXES:
        raise ConfigError(f"--out must end in .png, .pdf or .svg, got {path.name!r}")
    return path


def load_latent_run(run: Path, device: str):
    """The model of ``run`` (checked to have a latent space) and its dataset."""
    from dgm.apps.latent import require_latent
    from dgm.hardware import check_device
    from dgm.runs import load_dataset_of, load_model

    model = load_model(run, device=check_device(device))
    require_latent(model)
    return model, load_dataset_of(run)


def parse_alphas(text: str) -> list[float]:
    """'-2,-1,0,1,2' -> [-2.0, -1.0, 0.0, 1.0, 2.0]; a ConfigError for anything else."""
    try:
        alphas = [float(part) for part in text.split(",")]
    except ValueError:
        alphas = []
    if not alphas or not all(abs(a) < float("inf") for a in alphas):
        raise ConfigError(f"--alpha must be comma-separated finite numbers such as -2,-1,0,1,2, got {text!r}")
    return alphas


def check_count(value: int | None, option: str, least: int = 1) -> None:
    if value is not None and value < least:
        raise ConfigError(f"{option} must be at least {least}, got {value}")


@command("latent-map")
def latent_map(
    run: Run,
    split: Split = "test",
    n: Annotated[int | None, typer.Option("-n", metavar="N", help="Codes shown (default: the whole split).")] = None,
    grid: Annotated[
        int | None,
        typer.Option(
            metavar="G",
            help="Decoded grid of G x G points for a 2-d latent of images (0: none; default 10 for images "
            "up to 16 pixels high, else 15).",
        ),
    ] = None,
    label: Annotated[
        int | None, typer.Option(metavar="LABEL", help="Label the decoded grid of a conditional model is drawn for.")
    ] = None,
    out: out_option("latent_map.png") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Map the codes of a split, coloured by label: the latent itself when it is 2-d (beside a
    grid of decoded latents), else its top two principal components.

    Example: dgm latent-map runs/vae --split test --out vae-map.png
    """
    from dgm.apps.latent import (
        check_encoder,
        check_label,
        decoded_grid,
        latent_projection,
        require_labels,
        split_codes,
    )
    from dgm.viz.latent import plot_latent_map

    try:
        check_count(n, "-n")
        check_count(grid, "--grid", 0)
        check_seed(seed)
        path = picture_path(out, run, "latent_map.png")
        model, dataset = load_latent_run(run, device)
        check_encoder(model, "dgm latent-map (a map of the codes of data)")
        codes = split_codes(model, dataset, split, n=n, seed=seed)
        pictured = None
        if grid is None:
            grid = 10 if dataset.info.is_image and dataset.info.shape[1] <= 16 else 15
        if label is not None and not model.conditional:
            raise ConfigError(f"--label is for conditional models; '{model.name}' was trained without conditional=true")
        if model.latent_dim == 2 and dataset.info.is_image and grid > 0:
            if model.conditional:
                train_labels = require_labels(dataset, "train", "conditional models")
                label = int(train_labels.min()) if label is None else label
                check_label(label, train_labels, f"the train split of '{dataset.spec}'")
            pictured = decoded_grid(model, max(grid, 2), cond=label, codes=codes.z)
        title = f"{model.name} on {dataset.spec}: {split} split"
        if pictured is not None and model.conditional:
            title += f", grid decoded with label {label}"
        plot_latent_map(latent_projection(codes.z), codes.y, dataset, path, model.latent_dim, title, pictured)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"latent map written to {path}")


@command()
def interpolate(
    run: Run,
    from_: Annotated[
        int,
        typer.Option(
            "--from",
            metavar="I",
            help="Index of the first example in the split; for a GAN, the seed of the first latent.",
        ),
    ],
    to: Annotated[
        int,
        typer.Option(
            "--to", metavar="J", help="Index of the last example in the split; for a GAN, the seed of the last latent."
        ),
    ],
    steps: Annotated[int, typer.Option(metavar="K", help="Points on each path, both ends included.")] = 8,
    label: Annotated[
        int | None,
        typer.Option(
            metavar="L",
            help="Label every point is decoded with: needed by a conditional GAN; a conditional autoencoder "
            "otherwise decodes with the labels of I (t < 1/2) and J.",
        ),
    ] = None,
    split: Split = "test",
    out: out_option("interpolation_I_J.png, interpolation_I_J_label_L.png with --label") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Decode the linear and the spherical path between the codes of two examples, or for a GAN
    (no encoder) between the latents z ~ N(0, I) of two seeds, those of dgm sample RUN -n 1 --seed I
    and --seed J.

    Example: dgm interpolate runs/vae --from 3 --to 17 --steps 10

    Example: dgm interpolate runs/cgan --from 0 --to 1 --label 7
    """
    from dgm.apps.latent import check_index, check_latent_seed, interpolation
    from dgm.viz.latent import label_name, plot_interpolation, require_images

    try:
        check_count(steps, "--steps", 2)
        check_seed(seed)
        name = f"interpolation_{from_}_{to}" + ("" if label is None else f"_label_{label}")
        path = picture_path(out, run, f"{name}.png")
        model, dataset = load_latent_run(run, device)
        require_images(dataset, "an interpolation strip")
        if model.has_encoder:
            check_index(from_, dataset, split)
            check_index(to, dataset, split)
            title = f"{model.name} on {dataset.spec}: {split} examples {from_} → {to} (outer columns), decoded at t"
        else:
            check_latent_seed(from_, "--from")
            check_latent_seed(to, "--to")
            title = f"{model.name} on {dataset.spec}: latents of seeds {from_} → {to} (outer columns), decoded at t"
        decoded = interpolation(model, dataset, from_, to, steps=steps, split=split, seed=seed, label=label)
        if label is not None:
            title += f", label {label_name(dataset, label)}"
        plot_interpolation(decoded, dataset, path, from_, to, title)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"interpolation written to {path}")


@command()
def attribute(
    run: Run,
    from_: Annotated[
        int,
        typer.Option(
            "--from", metavar="A", help="Class the vector starts from (for a GAN: as the digit classifier sees it)."
        ),
    ],
    to: Annotated[int, typer.Option("--to", metavar="B", help="Class the vector points to.")],
    alpha: Annotated[
        str, typer.Option(metavar="LIST", help="Comma-separated multiples of the vector added to each code.")
    ] = "-2,-1,0,1,2",
    examples: Annotated[
        int, typer.Option(metavar="N", help="Examples of class A shown, one per row (for a GAN: its samples).")
    ] = 4,
    samples: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="For a GAN (no encoder): latents drawn, decoded and classified to estimate the vector (default 5000).",
        ),
    ] = None,
    split: Split = "test",
    out: out_option("attribute_A_B.png") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Move examples of class A along v = mean code of class B - mean code of class A (estimated
    on the train split) and decode z + alpha v for each alpha. For a GAN (no encoder), v = mean z
    of its samples the digit classifier assigns to B - of those it assigns to A, and the rows are
    samples it assigns to A (an unconditional GAN on 8x8 or 28x28 digits).

    Example: dgm attribute runs/vae --from 3 --to 8 --alpha=-1,0,1,2 --examples 5

    Example: dgm attribute runs/dcgan --from 4 --to 9 --samples 10000
    """
    from dgm.apps.latent import attribute_rows
    from dgm.viz.latent import plot_attribute, require_images

    try:
        alphas = parse_alphas(alpha)
        check_count(examples, "--examples")
        check_count(samples, "--samples")
        check_seed(seed)
        path = picture_path(out, run, f"attribute_{from_}_{to}.png")
        model, dataset = load_latent_run(run, device)
        require_images(dataset, "an attribute strip")
        moved = attribute_rows(
            model, dataset, from_, to, alphas, examples=examples, split=split, seed=seed, samples=samples
        )
        plot_attribute(moved, dataset, path, from_, to)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"attribute strip written to {path}")


@command()
def reconstruct(
    run: Run,
    n: Annotated[int, typer.Option("-n", metavar="N", help="Examples shown.")] = 10,
    noise: Annotated[
        str | None,
        typer.Option(
            metavar="KIND",
            help="Corrupt the inputs first: gaussian, masking, flip, or none (default: a dae's own noise, "
            "none for other models).",
        ),
    ] = None,
    level: Annotated[
        float | None,
        typer.Option(
            metavar="P",
            help="Noise level: std for gaussian (a fraction of the level range on discrete data), probability "
            "for masking and flip (default: a dae's own; 0.25, or 0.25 x the data's std for gaussian).",
        ),
    ] = None,
    split: Split = "test",
    out: out_option("reconstructions.png, or denoising.png with noise") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Show examples and their reconstructions; with noise, the denoising triples input,
    corrupted input and output.

    Example: dgm reconstruct runs/vae -n 12 --noise masking --level 0.3
    """
    from dgm.apps.latent import check_encoder, config_noise, denoising, reconstructions
    from dgm.models.latent.noise import NOISE_KINDS
    from dgm.viz.latent import plot_denoising, plot_reconstructions, require_images

    try:
        check_count(n, "-n")
        check_seed(seed)
        if noise not in (None, "none", *NOISE_KINDS):
            raise ConfigError(f"--noise must be gaussian, masking, flip or none, got {noise!r}")
        if noise == "none" and level is not None:
            raise ConfigError("--level needs noise; drop --noise none")
        model, dataset = load_latent_run(run, device)
        check_encoder(model, "dgm reconstruct")
        require_images(dataset, "a reconstruction strip")
        noisy = noise not in (None, "none") or level is not None or (noise is None and config_noise(model) is not None)
        path = picture_path(out, run, "denoising.png" if noisy else "reconstructions.png")
        if noisy:
            triples = denoising(model, dataset, n, kind=noise, level=level, split=split, seed=seed)
            plot_denoising(triples, dataset, path, f"{model.name} on {dataset.spec}: denoising {split} examples")
        else:
            x, x_hat = reconstructions(model, dataset, n, split=split, seed=seed)
            plot_reconstructions(x, x_hat, dataset, path, f"{model.name} on {dataset.spec}: {split} reconstructions")
    except DgmError as e:
        fail(str(e))
    typer.echo(f"{'denoising' if noisy else 'reconstructions'} written to {path}")
